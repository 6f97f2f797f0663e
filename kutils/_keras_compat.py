"""Every place where kutils reaches into Keras internals, behind small version-checked functions.

Keras moves its private modules between releases. Keeping each private access here, with
a check of the Keras version and of the attributes relied on, means an upgrade of Keras
breaks one file, with a message that says what changed, instead of failing somewhere
inside a training run.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import random
import threading
from collections.abc import Callable
from typing import Any

# The Keras releases whose internals the functions below were written against and tested on.
SUPPORTED_KERAS = ((3, 0), (3, 99))


class KerasInternalsChanged(ImportError):
    """Raised when the installed Keras does not have the internals kutils relies on."""


def keras_version() -> tuple[int, int]:
    """The installed Keras version as (major, minor); imports Keras."""
    import keras

    major, minor = (int(part) for part in keras.__version__.split(".")[:2])
    return major, minor


def check_keras_version(feature: str) -> None:
    """Raise KerasInternalsChanged when the installed Keras is outside SUPPORTED_KERAS."""
    version = keras_version()
    low, high = SUPPORTED_KERAS
    if not low <= version <= high:
        msg = (
            f"kutils {feature} supports Keras {low[0]}.{low[1]} to {high[0]}.{high[1]}, "
            f"but Keras {version[0]}.{version[1]} is installed. Install a supported Keras "
            "(pip install 'keras>=3,<4') or a kutils release that supports yours."
        )
        raise KerasInternalsChanged(msg)


# ---------------------------------------------------------------------------------------
# String identifiers that name custom objects
# ---------------------------------------------------------------------------------------

# Keras modules whose ``get(identifier)`` turns strings such as ``'relu'`` into objects.
# In Keras 2 these consulted the custom-object registry; in Keras 3 they look only at
# their own built-in table, so ``Dense(4, activation='my_activation')`` fails even inside
# a custom-object scope.
_IDENTIFIER_MODULES = (
    "activations",
    "constraints",
    "initializers",
    "losses",
    "metrics",
    "optimizers",
    "regularizers",
)
_lookup_lock = threading.Lock()
_lookup_installed = False


def install_custom_object_lookups() -> None:
    """Let Keras 3 ``get(name)`` functions find custom objects by name, as Keras 2 did.

    Each ``keras.src.<module>.get`` is wrapped once per process. A string that names an
    object in the custom-object registry (or an active Keras custom-object scope) resolves
    to that object, which then goes through Keras's own ``get`` as if passed directly;
    every other identifier goes to Keras unchanged. Classes are instantiated with no
    arguments first, as Keras 2 did for regularizers, constraints, initializers, losses,
    metrics and optimizers (an activation class is passed on as it is).
    """
    global _lookup_installed
    if _lookup_installed:
        return
    with _lookup_lock:
        if _lookup_installed:
            return
        check_keras_version("custom-object string look-ups")
        import keras

        for name in _IDENTIFIER_MODULES:
            module = importlib.import_module(f"keras.src.{name}")
            original = getattr(module, "get", None)
            if not callable(original):
                msg = (
                    f"keras.src.{name}.get is missing in Keras {keras.__version__}; kutils "
                    "cannot make string identifiers find custom objects."
                )
                raise KerasInternalsChanged(msg)
            if not getattr(original, "_kutils_wraps", False):
                wrapped = _custom_lookup(
                    original,
                    keras.saving.get_registered_object,
                    instantiate_classes=name != "activations",
                )
                setattr(module, "get", wrapped)  # noqa: B010
        _lookup_installed = True


def _custom_lookup(
    original: Callable[..., Any], find: Callable[[str], Any], *, instantiate_classes: bool
) -> Callable[..., Any]:
    @functools.wraps(original)
    def get(identifier: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(identifier, str):
            found = find(identifier)
            if found is not None:
                if instantiate_classes and inspect.isclass(found):
                    found = found()
                return original(found, *args, **kwargs)
        return original(identifier, *args, **kwargs)

    get._kutils_wraps = True  # type: ignore[attr-defined]
    return get


# ---------------------------------------------------------------------------------------
# Sequence: Keras 2 epoch semantics, parallel loading and errors in fit/evaluate/predict
# ---------------------------------------------------------------------------------------

# Keras 3.15 feeds a PyDataset to fit/evaluate/predict through PyDatasetAdapter, wrapped by
# EpochIterator. Three things there differ from Keras 2 and cannot be changed from the
# PyDataset side: EpochIterator.reset() calls on_epoch_end() before the first epoch (and
# before every evaluate), the number of batches is read once per fit, and with TensorFlow
# an exception in __getitem__ reaches the caller as tf.errors.UnknownError. kutils gives
# kutils.Sequence objects an adapter of their own (a PyDatasetAdapter subclass) and wraps
# two EpochIterator methods; every other dataset goes through Keras unchanged.
_sequence_lock = threading.Lock()
_sequence_installed = False


def install_sequence_support(
    sequence_class: Any, check_options: Callable[[Any, Any, Any], None]
) -> None:
    """Route ``sequence_class`` instances through kutils's adapter in Keras 3's trainers.

    Installed once per process: ``keras.src.trainers.data_adapters.get_data_adapter``
    gives instances of ``sequence_class`` a ``LegacySequenceAdapter``, and
    ``EpochIterator.__iter__`` / ``catch_stop_iteration`` re-read the length each epoch,
    re-raise the original exception of ``__getitem__`` and stop workers on the way out.
    """
    global _sequence_installed
    if _sequence_installed:
        return
    with _sequence_lock:
        if _sequence_installed:
            return
        check_keras_version("Sequence support")
        import keras

        data_adapters = importlib.import_module("keras.src.trainers.data_adapters")
        epoch_iterator = importlib.import_module("keras.src.trainers.epoch_iterator")
        py_dataset_adapter = importlib.import_module(
            "keras.src.trainers.data_adapters.py_dataset_adapter"
        )
        adapter_utils = importlib.import_module(
            "keras.src.trainers.data_adapters.data_adapter_utils"
        )
        needed = [
            (data_adapters, "get_data_adapter"),
            (data_adapters, "raise_unsupported_arg"),
            (epoch_iterator, "EpochIterator"),
            (py_dataset_adapter, "PyDatasetAdapter"),
            (adapter_utils, "get_tensor_spec"),
            (adapter_utils, "NUM_BATCHES_FOR_TENSOR_SPEC"),
        ]
        iterator_class = getattr(epoch_iterator, "EpochIterator", None)
        base_adapter = getattr(py_dataset_adapter, "PyDatasetAdapter", None)
        missing = [
            f"{module.__name__}.{name}" for module, name in needed if not hasattr(module, name)
        ]
        missing += [
            f"EpochIterator.{name}"
            for name in ("__iter__", "catch_stop_iteration")
            if iterator_class is not None and not hasattr(iterator_class, name)
        ]
        missing += [
            f"PyDatasetAdapter.{name}"
            for name in ("_standardize_batch", "on_epoch_begin", "on_epoch_end", "get_tf_dataset")
            if base_adapter is not None and not hasattr(base_adapter, name)
        ]
        if missing:
            msg = (
                f"Keras {keras.__version__} lacks {', '.join(missing)}; kutils.Sequence "
                "cannot drive fit/evaluate/predict with this Keras."
            )
            raise KerasInternalsChanged(msg)

        adapter_class = _make_sequence_adapter(base_adapter, adapter_utils, check_options)
        original_get = data_adapters.get_data_adapter
        raise_unsupported = data_adapters.raise_unsupported_arg

        @functools.wraps(original_get)
        def get_data_adapter(
            x: Any, y: Any = None, sample_weight: Any = None, *args: Any, **kwargs: Any
        ) -> Any:
            if isinstance(x, sequence_class) and x.num_batches is not None:
                if y is not None:
                    raise_unsupported("y", "the targets", "PyDataset")
                if sample_weight is not None:
                    raise_unsupported("sample_weights", "the sample weights", "PyDataset")
                bound = inspect.signature(original_get).bind(x, y, sample_weight, *args, **kwargs)
                bound.apply_defaults()
                return adapter_class(
                    x,
                    class_weight=bound.arguments.get("class_weight"),
                    shuffle=bound.arguments.get("shuffle", False),
                )
            return original_get(x, y, sample_weight, *args, **kwargs)

        setattr(data_adapters, "get_data_adapter", get_data_adapter)  # noqa: B010
        _wrap_epoch_iterator(iterator_class, adapter_class)
        _sequence_installed = True


def _wrap_epoch_iterator(iterator_class: Any, adapter_class: Any) -> None:
    original_iter = iterator_class.__iter__
    original_catch = iterator_class.catch_stop_iteration

    @functools.wraps(original_iter)
    def __iter__(self: Any) -> Any:
        # Keras reads the number of batches once, in reset(); Keras 2 read it every epoch.
        if isinstance(self.data_adapter, adapter_class) and not self.steps_per_epoch:
            self._num_batches = self.data_adapter.num_batches
        return original_iter(self)

    @functools.wraps(original_catch)
    @contextlib.contextmanager
    def catch_stop_iteration(self: Any) -> Any:
        adapter = self.data_adapter
        if not isinstance(adapter, adapter_class):
            with original_catch(self):
                yield
            return
        failed = True
        try:
            with original_catch(self):
                yield
            failed = False
        except Exception:
            original = adapter.pop_error()
            if original is None:
                raise
            # The error TensorFlow made of it adds nothing: show the original only.
            original.__suppress_context__ = True
            raise original  # noqa: B904
        finally:
            adapter.close(final=failed)

    iterator_class.__iter__ = __iter__
    iterator_class.catch_stop_iteration = catch_stop_iteration


def _make_sequence_adapter(
    base: Any, adapter_utils: Any, check_options: Callable[[Any, Any, Any], None]
) -> Any:
    from kutils._loader import OrderedLoader

    class LegacySequenceAdapter(base):
        """PyDatasetAdapter with Keras 2 epoch semantics and kutils's own workers."""

        def __init__(self, x: Any, class_weight: Any = None, shuffle: bool = False) -> None:
            # PyDatasetAdapter.__init__ would build Keras's own enqueuer; kutils loads
            # batches with kutils._loader instead, so set the same fields here.
            self.py_dataset = x
            self.class_weight = class_weight
            self.shuffle = shuffle
            self.enqueuer = None
            self._output_signature = None
            self._within_epoch = False
            workers, multiprocessing, queue_size = (
                x.workers,
                x.use_multiprocessing,
                x.max_queue_size,
            )
            check_options(workers, multiprocessing, queue_size)
            self._parallel = workers > 1 or (workers > 0 and bool(multiprocessing))
            self._options: dict[str, Any] = {
                "workers": int(workers),
                "use_multiprocessing": bool(multiprocessing),
                "max_queue_size": int(queue_size),
            }
            self._lock = threading.Lock()
            self._loaders: set[Any] = set()
            self._error: BaseException | None = None
            self._finished = False

        def _get_iterator(self) -> Any:
            indices = list(range(self.py_dataset.num_batches))
            if self.shuffle:
                random.shuffle(indices)
            position = 0
            try:
                # A loader stopped at an epoch end is replaced when Keras resumes this
                # iterator (with steps_per_epoch, one iterator spans several epochs).
                while position < len(indices):
                    loader = self._open_loader(indices[position:])
                    batches = (
                        iter(loader)
                        if loader is not None
                        else (self.py_dataset[i] for i in indices[position:])
                    )
                    try:
                        for batch in batches:
                            position += 1
                            yield self._standardize_batch(batch)
                    finally:
                        if loader is not None:
                            self._close_loader(loader)
                    if loader is None or self._finished:
                        return
            except Exception as error:
                self._error = error
                raise

        def _open_loader(self, indices: list[int]) -> Any:
            if not self._parallel:
                return None
            with self._lock:
                if self._finished:
                    msg = "This Sequence's workers were stopped after fit raised; start fit again."
                    raise RuntimeError(msg)
                loader = OrderedLoader(self.py_dataset, indices, **self._options)
                self._loaders.add(loader)
                return loader

        def _close_loader(self, loader: Any) -> None:
            with self._lock:
                self._loaders.discard(loader)
            loader.close()

        def close(self, final: bool = False) -> None:
            """Stop every worker of this adapter; ``final`` forbids starting new ones."""
            with self._lock:
                if final:
                    self._finished = True
                loaders, self._loaders = list(self._loaders), set()
            for loader in loaders:
                loader.close()

        def pop_error(self) -> BaseException | None:
            error, self._error = self._error, None
            return error

        def _standardize_batch(self, batch: Any) -> Any:
            # tf.data wants tuples where Keras 2 batches often hold lists ([x1, x2], y).
            return super()._standardize_batch(_lists_to_tuples(batch))

        def get_tf_dataset(self) -> Any:
            import tensorflow as tf

            num_batches = self.py_dataset.num_batches
            if self._output_signature is None:
                count = min(adapter_utils.NUM_BATCHES_FOR_TENSOR_SPEC, num_batches)
                batches = [self._standardize_batch(self.py_dataset[i]) for i in range(count)]
                if not batches:
                    msg = f"The Sequence has length 0. Received: len(sequence)={num_batches}"
                    raise ValueError(msg)
                self._output_signature = adapter_utils.get_tensor_spec(batches)
            dataset = tf.data.Dataset.from_generator(
                self._get_iterator, output_signature=self._output_signature
            )
            if self._parallel:
                # The workers prefetch; tf.data prefetching on top would pull batches
                # of the next epoch before on_epoch_end has run.
                options = tf.data.Options()
                options.autotune.enabled = False
                options.threading.private_threadpool_size = 1
                return dataset.with_options(options)
            return dataset.prefetch(tf.data.AUTOTUNE)

        def on_epoch_end(self) -> None:
            # Keras 3 also calls this from EpochIterator.reset(), before any epoch has
            # begun; Keras 2 called on_epoch_end only after an epoch, so skip that call.
            self.close()
            if self._within_epoch:
                self.py_dataset.on_epoch_end()
            self._within_epoch = False

    return LegacySequenceAdapter


def _lists_to_tuples(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_lists_to_tuples(item) for item in value)
    if isinstance(value, dict):
        return {key: _lists_to_tuples(item) for key, item in value.items()}
    return value

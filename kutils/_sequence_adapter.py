"""How Keras 3's fit/evaluate/predict read a kutils ``Sequence`` (the Sequence family).

Keras feeds a PyDataset through ``PyDatasetAdapter``, wrapped by ``EpochIterator``.
Three things there differ from Keras 2 and cannot be changed from the PyDataset side:
``EpochIterator.reset()`` calls ``on_epoch_end()`` before the first epoch (and before
every evaluate), the number of batches is read once per fit, and with TensorFlow an
exception in ``__getitem__`` reaches the caller as ``tf.errors.UnknownError``. So a
kutils Sequence gets an adapter of its own, a ``PyDatasetAdapter`` subclass that loads
batches with ``kutils._loader`` (threads or processes), shuffles the batch order with
Python's ``random`` and keeps the Keras 2 epoch semantics. It reaches Keras through the
router of ``kutils/_sequence_hooks.py`` (``route`` below, registered by
``kutils/sequence.py``), which also holds the epoch and callback hooks it asks for.
"""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Callable
from typing import Any

from kutils import _keras_compat
from kutils._row_sources import lists_to_tuples

FEATURE = "Sequence in fit/evaluate/predict"


def make_route(
    sequence_class: type, check_options: Callable[[Any, Any, Any], None]
) -> Callable[..., Any]:
    """The data-adapter route of the Sequence family: kutils Sequences of known length."""

    def route(
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        shuffle: Any = False,
        class_weight: Any = None,
        steps_per_epoch: Any = None,
        **_: Any,
    ) -> Any:
        if not isinstance(x, sequence_class) or getattr(x, "num_batches", None) is None:
            return None
        _keras_compat.check_keras_version(FEATURE)
        if y is not None:
            _keras_compat.raise_unsupported_arg("y", "the targets", "PyDataset")
        if sample_weight is not None:
            _keras_compat.raise_unsupported_arg("sample_weights", "the sample weights", "PyDataset")
        adapter_class = legacy_sequence_adapter_class(check_options)
        return adapter_class(
            x, class_weight=class_weight, shuffle=shuffle, steps_per_epoch=steps_per_epoch
        )

    return route


@functools.cache
def legacy_sequence_adapter_class(check_options: Callable[[Any, Any, Any], None]) -> Any:
    """The adapter class, made once from the installed Keras's ``PyDatasetAdapter``."""
    base = _keras_compat.py_dataset_adapter_class()
    return type(
        "LegacySequenceAdapter",
        (_LegacySequenceAdapter, base),
        {"_check_options": staticmethod(check_options)},
    )


class _LegacySequenceAdapter:
    """Keras 2 epoch semantics and kutils's own workers, over Keras's ``PyDatasetAdapter``.

    Mixed into the installed Keras's ``PyDatasetAdapter`` by
    ``legacy_sequence_adapter_class`` (Keras's class is known only at run time).
    """

    # The EpochIterator hooks of kutils/_sequence_hooks.py act on these adapters.
    _kutils_rereads_length = True
    # The Sequence family's check of workers/use_multiprocessing/max_queue_size.
    _check_options: Callable[[Any, Any, Any], None]
    _kutils_owns_errors = True

    def __init__(
        self,
        x: Any,
        class_weight: Any = None,
        shuffle: bool = False,
        steps_per_epoch: Any = None,
    ) -> None:
        from kutils._loader import default_start_method

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
        self._check_options(workers, multiprocessing, queue_size)
        self._parallel = workers > 1 or (workers > 0 and bool(multiprocessing))
        self._options: dict[str, Any] = {
            "workers": int(workers),
            "use_multiprocessing": bool(multiprocessing),
            "max_queue_size": int(queue_size),
            # fork on Linux, as Keras 2 did (unguarded scripts work); spawn elsewhere
            # or when the sequence asks for it (start_method = "spawn").
            "start_method": getattr(x, "start_method", None) or default_start_method(),
        }
        self._lock = threading.Lock()
        # One loader (one pool of workers) for the whole fit/evaluate/predict call,
        # one pass of it per epoch; stopped by end_call() or close(final=True).
        self._loader: Any = None
        self._error: BaseException | None = None
        self._finished = False
        # With steps_per_epoch (validation_steps), an unshuffled stream goes on where
        # the last pass stopped, as Keras 2's one validation stream did; nothing is
        # read ahead without workers, so no batch is read that is not used.
        self._steps = steps_per_epoch
        self._stream_next = 0

    def _get_iterator(self) -> Any:
        count = self.py_dataset.num_batches
        indices = list(range(count))
        if self.shuffle:
            random.shuffle(indices)
        elif self._steps and count:
            start = self._stream_next % count
            indices = indices[start:] + indices[:start]
        position = 0
        try:
            # A pass ended at an epoch end is followed by a new one when Keras
            # resumes this iterator (with steps_per_epoch, one iterator spans epochs).
            while position < len(indices):
                loader = self._use_loader()
                batches = (
                    loader.run(indices[position:])
                    if loader is not None
                    else (self.py_dataset[i] for i in indices[position:])
                )
                for batch in batches:
                    self._stream_next = indices[position] + 1
                    position += 1
                    yield self._standardize_batch(batch)
                if loader is None or self._finished:
                    return
        except Exception as error:
            self._error = error
            raise

    def _use_loader(self) -> Any:
        from kutils._loader import OrderedLoader

        if not self._parallel:
            return None
        with self._lock:
            if self._finished:
                msg = "This Sequence's workers were stopped after fit raised; start fit again."
                raise RuntimeError(msg)
            if self._loader is None or self._loader.closed:
                self._loader = OrderedLoader(self.py_dataset, [], **self._options)
            return self._loader

    def close(self, final: bool = False) -> None:
        """End the pass in progress; ``final`` also stops the workers for good."""
        with self._lock:
            if final:
                self._finished = True
            loader = self._loader
            if final:
                self._loader = None
        if loader is not None:
            if final:
                loader.close()
            else:
                loader.end_pass()

    def end_call(self) -> None:
        """The fit/evaluate/predict call is over: stop the workers (may start again)."""
        with self._lock:
            loader, self._loader = self._loader, None
        if loader is not None:
            loader.close()

    def pop_error(self) -> BaseException | None:
        error, self._error = self._error, None
        return error

    def _standardize_batch(self, batch: Any) -> Any:
        # tf.data wants tuples where Keras 2 batches often hold lists ([x1, x2], y).
        return super()._standardize_batch(lists_to_tuples(batch))  # type: ignore[misc]

    def get_tf_dataset(self) -> Any:
        import tensorflow as tf

        num_batches = self.py_dataset.num_batches
        if self._output_signature is None:
            count = min(_keras_compat.batches_for_tensor_spec(), num_batches)
            batches = [self._standardize_batch(self.py_dataset[i]) for i in range(count)]
            if not batches:
                msg = f"The Sequence has length 0. Received: len(sequence)={num_batches}"
                raise ValueError(msg)
            self._output_signature = _keras_compat.tensor_spec_of_batches(batches)
        dataset = tf.data.Dataset.from_generator(
            self._get_iterator, output_signature=self._output_signature
        )
        if self._parallel or self._steps:
            # The workers prefetch; tf.data prefetching on top would pull batches
            # of the next epoch before on_epoch_end has run. With steps_per_epoch
            # (validation_steps) and no workers, each batch is read when it is used,
            # never one past (autotune off: it would inject a prefetch).
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

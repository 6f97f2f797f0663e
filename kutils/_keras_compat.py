"""Every place where kutils reaches into Keras internals, behind small version-checked functions.

Keras moves its private modules between releases. Keeping each private access here, with
a check of the Keras version and of the attributes relied on, means an upgrade of Keras
breaks one file, with a message that says what changed, instead of failing somewhere
inside a training run.
"""

from __future__ import annotations

import functools
import importlib
import inspect
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
# HDF5Matrix data streamed by fit / evaluate / predict
# ---------------------------------------------------------------------------------------

# Keras 3 picks the data adapter of every fit, evaluate and predict call in one function,
# ``keras.src.trainers.data_adapters.get_data_adapter``, called (as a module attribute) by
# ``keras.src.trainers.epoch_iterator.EpochIterator``. It turns any array-like into one
# in-memory numpy array. kutils wraps that function: when the data holds HDF5Matrix
# objects, it returns a PyDatasetAdapter over a kutils.HDF5Dataset instead, which reads
# each batch from disk; every other call goes to Keras unchanged.
_GET_DATA_ADAPTER_PARAMS = (
    "x",
    "y",
    "sample_weight",
    "batch_size",
    "steps_per_epoch",
    "shuffle",
    "class_weight",
)
_hdf5_lock = threading.Lock()
_hdf5_installed = False


def install_hdf5_streaming() -> None:
    """Let ``model.fit(x_h5, y_h5, batch_size=..., shuffle=...)`` stream from disk.

    Wraps ``keras.src.trainers.data_adapters.get_data_adapter`` once per process. Raises
    KerasInternalsChanged (touching nothing) when Keras is outside SUPPORTED_KERAS or the
    function, its parameters or ``PyDatasetAdapter`` are not what kutils was written for.
    """
    global _hdf5_installed
    if _hdf5_installed:
        return
    with _hdf5_lock:
        if _hdf5_installed:
            return
        check_keras_version("streamed HDF5Matrix training")
        import keras

        adapters = importlib.import_module("keras.src.trainers.data_adapters")
        iterator_module = importlib.import_module("keras.src.trainers.epoch_iterator")
        original = getattr(adapters, "get_data_adapter", None)
        adapter_class = getattr(adapters, "PyDatasetAdapter", None)
        problem = None
        if not callable(original) or adapter_class is None:
            problem = "get_data_adapter or PyDatasetAdapter is missing"
        elif getattr(iterator_module, "data_adapters", None) is not adapters:
            problem = "EpochIterator no longer looks the data adapter up in data_adapters"
        elif not getattr(original, "_kutils_wraps", False):
            names = tuple(inspect.signature(original).parameters)
            if names != _GET_DATA_ADAPTER_PARAMS:
                problem = f"get_data_adapter takes {names}, not {_GET_DATA_ADAPTER_PARAMS}"
        if problem is not None:
            msg = (
                f"keras.src.trainers.data_adapters changed in Keras {keras.__version__} "
                f"({problem}); kutils cannot make fit stream HDF5Matrix data."
            )
            raise KerasInternalsChanged(msg)
        if callable(original) and not getattr(original, "_kutils_wraps", False):
            setattr(adapters, "get_data_adapter", _streaming_adapter(original, adapter_class))  # noqa: B010
        _hdf5_installed = True


def _streaming_adapter(original: Callable[..., Any], adapter_class: Any) -> Callable[..., Any]:
    from kutils.hdf5_dataset import legacy_fit_dataset

    @functools.wraps(original)
    def get_data_adapter(
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        batch_size: Any = None,
        steps_per_epoch: Any = None,
        shuffle: Any = False,
        class_weight: Any = None,
    ) -> Any:
        dataset = legacy_fit_dataset(x, y, sample_weight, batch_size, shuffle)
        if dataset is None:
            return original(
                x,
                y=y,
                sample_weight=sample_weight,
                batch_size=batch_size,
                steps_per_epoch=steps_per_epoch,
                shuffle=shuffle,
                class_weight=class_weight,
            )
        # The dataset orders its own batches, so Keras must not shuffle them again.
        return adapter_class(dataset, class_weight=class_weight, shuffle=False)

    get_data_adapter._kutils_wraps = True  # type: ignore[attr-defined]
    return get_data_adapter

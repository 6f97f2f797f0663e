"""kutils: the Keras 2 ``keras.utils`` API on TensorFlow 2.16+ with Keras 3.

Change ``from keras.utils import X`` to ``from kutils import X`` in a script written for
Keras 2.2 or 2.3 and it runs on Keras 3.

``import kutils`` is cheap: TensorFlow, Keras, h5py and pydot are imported only when a
name that needs them is first used. Each public name lives in the module of its family
(see ``_EXPORTS`` below) and is loaded from there on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kutils import _legacy
from kutils._version import __version__

# Public name -> the kutils module that defines it. A name joins this table, ``__all__``
# and the TYPE_CHECKING imports when its implementation lands.
_EXPORTS: dict[str, str] = {
    "CustomObjectScope": "kutils.custom_objects",
    "HDF5Dataset": "kutils.hdf5_dataset",
    "HDF5Matrix": "kutils.hdf5_matrix",
    "Sequence": "kutils.sequence",
    "custom_object_scope": "kutils.custom_objects",
    "get_file": "kutils.downloads",
    "get_custom_objects": "kutils.custom_objects",
    "data_parallel": "kutils.parallel",
    "multi_gpu_model": "kutils.multi_gpu",
    "to_categorical": "kutils.categorical",
    "normalize": "kutils.categorical",
    "print_summary": "kutils.summary",
    "model_to_dot": "kutils.plotting",
    "plot_model": "kutils.plotting",
    "Progbar": "kutils.progbar",
    "SequenceEnqueuer": "kutils.enqueuers",
    "OrderedEnqueuer": "kutils.enqueuers",
    "GeneratorEnqueuer": "kutils.enqueuers",
    "serialize_keras_object": "kutils.serialization",
    "deserialize_keras_object": "kutils.serialization",
    "get_source_inputs": "kutils._layer_functions",
    "convert_all_kernels_in_model": "kutils._layer_functions",
    "fit_generator": "kutils.generators",
    "evaluate_generator": "kutils.generators",
    "predict_generator": "kutils.generators",
    "add_loss": "kutils.model_losses",
    "predict": "kutils.predictions",
    "predict_classes": "kutils.predictions",
    "predict_proba": "kutils.predictions",
    "reset_states": "kutils.stateful",
    "train_on_batch": "kutils.class_weights",
    "fit": "kutils.class_weights_fit",
    "compile": "kutils.trainable",
    "load_model": "kutils.saved_models",
    "load_weights": "kutils.saved_models",
    "model_from_json": "kutils.saved_models",
    "model_from_yaml": "kutils.saved_models",
    "save_weights": "kutils.saved_models",
}

# Keras 2's module paths (``keras.utils.np_utils``...): ``import kutils.np_utils`` works
# as usual, and so does ``kutils.np_utils`` after a plain ``import kutils``. Their names
# and where each lives: the one table of ``kutils/_legacy.py``.
_LEGACY_MODULES = tuple(_legacy.LEGACY_MODULES)
# Public modules reached as ``kutils.X`` after ``import kutils`` (what migrate writes).
_PUBLIC_MODULES = ("backend",)

# Modules that import TensorFlow when imported. Without a usable TensorFlow their public
# names are handed out as stand-ins that raise kutils' clear error when called, so that
# `from kutils import *` works on Keras's other backends.
_NEEDS_TENSORFLOW_TO_IMPORT = frozenset({"kutils.parallel"})

__all__ = [
    "CustomObjectScope",
    "GeneratorEnqueuer",
    "HDF5Dataset",
    "HDF5Matrix",
    "OrderedEnqueuer",
    "Progbar",
    "Sequence",
    "SequenceEnqueuer",
    "__version__",
    "add_loss",
    # "compile" is importable by name but left out of `from kutils import *`, which
    # would otherwise hide Python's builtin compile() in the importing module.
    "convert_all_kernels_in_model",
    "custom_object_scope",
    "data_parallel",
    "deserialize_keras_object",
    "evaluate_generator",
    "fit",
    "fit_generator",
    "get_custom_objects",
    "get_file",
    "get_source_inputs",
    "load_model",
    "load_weights",
    "model_from_json",
    "model_from_yaml",
    "model_to_dot",
    "multi_gpu_model",
    "normalize",
    "plot_model",
    "predict",
    "predict_classes",
    "predict_generator",
    "predict_proba",
    "print_summary",
    "reset_states",
    "save_weights",
    "serialize_keras_object",
    "to_categorical",
    "train_on_batch",
]

if TYPE_CHECKING:
    from kutils._layer_functions import convert_all_kernels_in_model, get_source_inputs
    from kutils.categorical import normalize, to_categorical
    from kutils.class_weights import train_on_batch
    from kutils.class_weights_fit import fit
    from kutils.custom_objects import (
        CustomObjectScope,
        custom_object_scope,
        get_custom_objects,
    )
    from kutils.downloads import get_file
    from kutils.enqueuers import GeneratorEnqueuer, OrderedEnqueuer, SequenceEnqueuer
    from kutils.generators import evaluate_generator, fit_generator, predict_generator
    from kutils.hdf5_dataset import HDF5Dataset
    from kutils.hdf5_matrix import HDF5Matrix
    from kutils.model_losses import add_loss
    from kutils.multi_gpu import multi_gpu_model
    from kutils.parallel import data_parallel
    from kutils.plotting import model_to_dot, plot_model
    from kutils.predictions import predict, predict_classes, predict_proba
    from kutils.progbar import Progbar
    from kutils.saved_models import (
        load_model,
        load_weights,
        model_from_json,
        model_from_yaml,
        save_weights,
    )
    from kutils.sequence import Sequence
    from kutils.serialization import deserialize_keras_object, serialize_keras_object
    from kutils.stateful import reset_states
    from kutils.summary import print_summary
    from kutils.trainable import compile as compile


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        if name in _LEGACY_MODULES or name in _PUBLIC_MODULES:
            return importlib.import_module(f"kutils.{name}")
        raise AttributeError(f"module 'kutils' has no attribute {name!r}")
    if module_name in _NEEDS_TENSORFLOW_TO_IMPORT:
        from kutils import _requirements

        if _requirements.tensorflow_problem() is not None:
            return _requirements.unavailable(f"kutils.{name}", module_name, name)
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_LEGACY_MODULES) | set(_PUBLIC_MODULES))

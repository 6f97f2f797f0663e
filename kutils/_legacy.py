"""The Keras 2 module paths (``kutils.np_utils`` and the seven others), from one table.

``LEGACY_MODULES`` lists each legacy module, its public names and the kutils module
where each name lives. A legacy module is only its docstring, its type-checking imports
and ``_legacy.shim(__name__, globals())``, which gives it ``__all__``, a module
``__getattr__`` and ``__dir__`` from the table. A name is imported on first use, from
the module that defines it, so ``import kutils.np_utils`` is as cheap as ``import kutils``
and every legacy path yields the very object the top level exports.

A new legacy name is one entry here (and, for type checkers, one line in the legacy
module's ``TYPE_CHECKING`` block); its test is the table of tests/test_legacy_modules.py.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

_MULTI_GPU = {"multi_gpu_model": "kutils.multi_gpu"}

# legacy module -> {public name -> the kutils module that defines it}
LEGACY_MODULES: dict[str, dict[str, str]] = {
    "np_utils": {
        "normalize": "kutils.categorical",
        "to_categorical": "kutils.categorical",
    },
    "io_utils": {
        "HDF5Matrix": "kutils.hdf5_matrix",
        "ask_to_proceed_with_overwrite": "kutils._io_functions",
        "load_from_binary_h5py": "kutils._io_functions",
        "save_to_binary_h5py": "kutils._io_functions",
    },
    "data_utils": {
        "GeneratorEnqueuer": "kutils.enqueuers",
        "OrderedEnqueuer": "kutils.enqueuers",
        "Sequence": "kutils.sequence",
        "SequenceEnqueuer": "kutils.enqueuers",
        "get_file": "kutils.downloads",
        "iter_sequence_infinite": "kutils.enqueuers",
        "validate_file": "kutils.downloads",
    },
    "generic_utils": {
        "CustomObjectScope": "kutils.custom_objects",
        "Progbar": "kutils.progbar",
        "custom_object_scope": "kutils.custom_objects",
        "deserialize_keras_object": "kutils.serialization",
        "func_dump": "kutils._generic_functions",
        "func_load": "kutils._generic_functions",
        "get_custom_objects": "kutils.custom_objects",
        "has_arg": "kutils._generic_functions",
        "serialize_keras_object": "kutils.serialization",
        "to_list": "kutils._generic_functions",
        "unpack_singleton": "kutils._generic_functions",
    },
    "vis_utils": {
        "model_to_dot": "kutils.plotting",
        "plot_model": "kutils.plotting",
    },
    "layer_utils": {
        "convert_all_kernels_in_model": "kutils._layer_functions",
        "count_params": "kutils._layer_functions",
        "get_source_inputs": "kutils._layer_functions",
        "print_summary": "kutils.summary",
    },
    "multi_gpu_utils": _MULTI_GPU,
    "training_utils": _MULTI_GPU,
}


def shim(module: str, namespace: dict[str, Any]) -> None:
    """Make ``module`` (a legacy module's ``__name__``) serve its names from the table."""
    table = LEGACY_MODULES[module.rpartition(".")[2]]
    public = sorted(table)
    namespace["__all__"] = public
    namespace["__getattr__"] = _getattr(module, table, namespace)
    namespace["__dir__"] = lambda: sorted(set(namespace) | set(public))


def _getattr(module: str, table: dict[str, str], namespace: dict[str, Any]) -> Callable[..., Any]:
    def __getattr__(name: str) -> Any:
        source = table.get(name)
        if source is None:
            msg = f"module {module!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(importlib.import_module(source), name)
        namespace[name] = value  # later look-ups skip __getattr__
        return value

    return __getattr__

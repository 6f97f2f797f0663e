"""Keras 2's ``keras.utils.layer_utils``: summaries and layer-graph helpers.

A Keras 2 line ``from keras.utils.layer_utils import X`` becomes ``from kutils.layer_utils import X``.
Each name is loaded on first use from the kutils module that defines it (the very object
``kutils.X`` is, where the top level exports ``X``): importing this module imports no
TensorFlow or Keras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kutils import _legacy

_EXPORTS: dict[str, str] = {
    "convert_all_kernels_in_model": "kutils.layer_helpers",
    "count_params": "kutils.layer_helpers",
    "get_source_inputs": "kutils.layer_helpers",
    "print_summary": "kutils.summary",
}

__all__ = [
    "convert_all_kernels_in_model",
    "count_params",
    "get_source_inputs",
    "print_summary",
]

if TYPE_CHECKING:
    from kutils.layer_helpers import convert_all_kernels_in_model, count_params, get_source_inputs
    from kutils.summary import print_summary


def __getattr__(name: str) -> Any:
    return _legacy.resolve(__name__, _EXPORTS, name, globals())


def __dir__() -> list[str]:
    return _legacy.names(globals(), __all__)

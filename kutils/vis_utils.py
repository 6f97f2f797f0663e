"""Keras 2's ``keras.utils.vis_utils``: model graphs with pydot and Graphviz.

A Keras 2 line ``from keras.utils.vis_utils import X`` becomes ``from kutils.vis_utils import X``.
Each name is loaded on first use from the kutils module that defines it (the very object
``kutils.X`` is, where the top level exports ``X``): importing this module imports no
TensorFlow or Keras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kutils import _legacy

_EXPORTS: dict[str, str] = {
    "model_to_dot": "kutils.plotting",
    "plot_model": "kutils.plotting",
}

__all__ = [
    "model_to_dot",
    "plot_model",
]

if TYPE_CHECKING:
    from kutils.plotting import model_to_dot, plot_model


def __getattr__(name: str) -> Any:
    return _legacy.resolve(__name__, _EXPORTS, name, globals())


def __dir__() -> list[str]:
    return _legacy.names(globals(), __all__)

"""Keras 2's ``keras.utils.np_utils``: one-hot labels and normalization.

A Keras 2 line ``from keras.utils.np_utils import X`` becomes ``from kutils.np_utils import X``.
Each name is loaded on first use from the kutils module that defines it (the very object
``kutils.X`` is, where the top level exports ``X``): importing this module imports no
TensorFlow or Keras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kutils import _legacy

_EXPORTS: dict[str, str] = {
    "normalize": "kutils.categorical",
    "to_categorical": "kutils.categorical",
}

__all__ = [
    "normalize",
    "to_categorical",
]

if TYPE_CHECKING:
    from kutils.categorical import normalize, to_categorical


def __getattr__(name: str) -> Any:
    return _legacy.resolve(__name__, _EXPORTS, name, globals())


def __dir__() -> list[str]:
    return _legacy.names(globals(), __all__)

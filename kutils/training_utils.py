"""Keras 2.0/2.1's ``keras.utils.training_utils``, the first home of ``multi_gpu_model``.

A Keras 2 line ``from keras.utils.training_utils import X`` becomes ``from kutils.training_utils import X``.
Each name is loaded on first use from the kutils module that defines it (the very object
``kutils.X`` is, where the top level exports ``X``): importing this module imports no
TensorFlow or Keras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kutils import _legacy

_EXPORTS: dict[str, str] = {
    "multi_gpu_model": "kutils.multi_gpu",
}

__all__ = [
    "multi_gpu_model",
]

if TYPE_CHECKING:
    from kutils.multi_gpu import multi_gpu_model


def __getattr__(name: str) -> Any:
    return _legacy.resolve(__name__, _EXPORTS, name, globals())


def __dir__() -> list[str]:
    return _legacy.names(globals(), __all__)

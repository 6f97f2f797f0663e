"""Keras 2.0/2.1's ``keras.utils.training_utils``, the first home of ``multi_gpu_model``.

A Keras 2 line ``from keras.utils.training_utils import X`` becomes ``from kutils.training_utils import X``.
Its names and where each lives: the table of ``kutils/_legacy.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kutils import _legacy

if TYPE_CHECKING:
    from kutils.multi_gpu import multi_gpu_model as multi_gpu_model

_legacy.shim(__name__, globals())

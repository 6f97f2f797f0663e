"""Keras 2's ``keras.utils.np_utils``: one-hot labels and normalization.

A Keras 2 line ``from keras.utils.np_utils import X`` becomes ``from kutils.np_utils import X``.
Its names and where each lives: the table of ``kutils/_legacy.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kutils import _legacy

if TYPE_CHECKING:
    from kutils.categorical import normalize as normalize
    from kutils.categorical import to_categorical as to_categorical

_legacy.shim(__name__, globals())

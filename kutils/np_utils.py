"""Keras 2's ``keras.utils.np_utils``: one-hot labels and normalization.

A Keras 2 line ``from keras.utils.np_utils import X`` becomes ``from kutils.np_utils import X``.
Each name is loaded on first use from the kutils module that defines it (the very object
``kutils.X`` is, where the top level exports ``X``): importing this module imports no
TensorFlow or Keras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kutils import _legacy

if TYPE_CHECKING:
    from kutils.categorical import normalize as normalize
    from kutils.categorical import to_categorical as to_categorical

_legacy.shim(__name__, globals())

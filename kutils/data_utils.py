"""Keras 2's ``keras.utils.data_utils``: downloads, ``Sequence`` and the enqueuers.

A Keras 2 line ``from keras.utils.data_utils import X`` becomes ``from kutils.data_utils import X``.
Each name is loaded on first use from the kutils module that defines it (the very object
``kutils.X`` is, where the top level exports ``X``): importing this module imports no
TensorFlow or Keras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kutils import _legacy

if TYPE_CHECKING:
    from kutils.downloads import get_file as get_file
    from kutils.downloads import validate_file as validate_file
    from kutils.enqueuers import GeneratorEnqueuer as GeneratorEnqueuer
    from kutils.enqueuers import OrderedEnqueuer as OrderedEnqueuer
    from kutils.enqueuers import SequenceEnqueuer as SequenceEnqueuer
    from kutils.enqueuers import iter_sequence_infinite as iter_sequence_infinite
    from kutils.sequence import Sequence as Sequence

_legacy.shim(__name__, globals())

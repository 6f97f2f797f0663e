"""Keras 2's ``keras.utils.data_utils``: downloads, ``Sequence`` and the enqueuers.

A Keras 2 line ``from keras.utils.data_utils import X`` becomes ``from kutils.data_utils import X``.
Its names and where each lives: the table of ``kutils/_legacy.py``.
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

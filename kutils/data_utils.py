"""Keras 2's ``keras.utils.data_utils``: downloads, ``Sequence`` and the enqueuers.

A Keras 2 line ``from keras.utils.data_utils import X`` becomes ``from kutils.data_utils import X``.
Each name is loaded on first use from the kutils module that defines it (the very object
``kutils.X`` is, where the top level exports ``X``): importing this module imports no
TensorFlow or Keras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kutils import _legacy

_EXPORTS: dict[str, str] = {
    "GeneratorEnqueuer": "kutils.enqueuers",
    "OrderedEnqueuer": "kutils.enqueuers",
    "Sequence": "kutils.sequence",
    "SequenceEnqueuer": "kutils.enqueuers",
    "get_file": "kutils.downloads",
    "iter_sequence_infinite": "kutils.enqueuers",
    "validate_file": "kutils.downloads",
}

__all__ = [
    "GeneratorEnqueuer",
    "OrderedEnqueuer",
    "Sequence",
    "SequenceEnqueuer",
    "get_file",
    "iter_sequence_infinite",
    "validate_file",
]

if TYPE_CHECKING:
    from kutils.downloads import get_file, validate_file
    from kutils.enqueuers import (
        GeneratorEnqueuer,
        OrderedEnqueuer,
        SequenceEnqueuer,
        iter_sequence_infinite,
    )
    from kutils.sequence import Sequence


def __getattr__(name: str) -> Any:
    return _legacy.resolve(__name__, _EXPORTS, name, globals())


def __dir__() -> list[str]:
    return _legacy.names(globals(), __all__)

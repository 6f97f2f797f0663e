"""Keras 2's ``keras.utils.io_utils``: ``HDF5Matrix`` and the overwrite prompt.

A Keras 2 line ``from keras.utils.io_utils import X`` becomes ``from kutils.io_utils import X``.
``HDF5Matrix`` is loaded on first use (it is the object ``kutils.HDF5Matrix`` is), so
importing this module imports no TensorFlow, Keras or h5py. Keras 2's ``H5Dict`` (alias
``h5dict``) was the HDF5 glue of Keras 2's own model saving; Keras 3 saves models its own
way, and kutils does not offer it (see docs/legacy_modules.md).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from kutils import _legacy

_EXPORTS: dict[str, str] = {"HDF5Matrix": "kutils.hdf5_matrix"}

__all__ = [
    "HDF5Matrix",
    "ask_to_proceed_with_overwrite",
    "load_from_binary_h5py",
    "save_to_binary_h5py",
]

if TYPE_CHECKING:
    from kutils.hdf5_matrix import HDF5Matrix


def __getattr__(name: str) -> Any:
    return _legacy.resolve(__name__, _EXPORTS, name, globals())


def __dir__() -> list[str]:
    return _legacy.names(globals(), __all__)


def ask_to_proceed_with_overwrite(filepath: str) -> bool:
    """Ask the user on the terminal whether ``filepath`` may be overwritten (Keras 2).

    Args:
        filepath: the path named in the question.

    Returns:
        ``True`` if the user answered ``y``, ``False`` for ``n``; other answers ask again.
    """
    overwrite = input(f"[WARNING] {filepath} already exists - overwrite? [y/n]").strip().lower()
    while overwrite not in ("y", "n"):
        overwrite = input('Enter "y" (overwrite) or "n" (cancel).').strip().lower()
    if overwrite == "n":
        return False
    print("[TIP] Next time specify overwrite=True!")
    return True


def save_to_binary_h5py(save_function: Callable[[Any], Any], stream: IO[bytes]) -> Any:
    """Run ``save_function`` on an in-memory HDF5 file and write the file to ``stream``.

    Args:
        save_function: called with an ``h5py.File`` that lives in memory only.
        stream: a writable binary file object; receives the HDF5 file image.

    Returns:
        What ``save_function`` returned.
    """
    import h5py

    with h5py.File(f"in-memory-{id(stream)}.h5", "w", driver="core", backing_store=False) as h5:
        result = save_function(h5)
        h5.flush()
        stream.write(h5.id.get_file_image())
    return result


def load_from_binary_h5py(load_function: Callable[[Any], Any], stream: IO[bytes]) -> Any:
    """Open the HDF5 file image read from ``stream`` in memory and call ``load_function``.

    Args:
        load_function: called with a read-only ``h5py.File``.
        stream: a readable binary file object holding an HDF5 file.

    Returns:
        What ``load_function`` returned.
    """
    import h5py

    with h5py.File(io.BytesIO(stream.read()), "r") as h5:
        return load_function(h5)

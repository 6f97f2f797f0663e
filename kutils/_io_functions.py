"""The functions of Keras 2's ``io_utils`` that kutils defines: the overwrite prompt and
HDF5 file images in memory. ``kutils.io_utils`` offers them (``kutils/_legacy.py``)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO, Any

__all__ = ["ask_to_proceed_with_overwrite", "load_from_binary_h5py", "save_to_binary_h5py"]


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

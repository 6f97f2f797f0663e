"""The files ``HDF5Matrix`` reads: one read-only handle per file per process.

Every matrix on a file in a process shares one open ``h5py.File``, counted by its
users and closed when the last one lets go. A handle remembers the identity of the file
it opened (device, inode, size, modification time), so that a file replaced at its path
is opened anew instead of read through the stale handle, and a copy of a matrix in
another process can tell that its file was replaced. Opening checks the path and names
the datasets of the file when the one asked for is missing.
"""

from __future__ import annotations

import errno
import os
import threading
from typing import TYPE_CHECKING

from kutils._hdf5_reads import open_read_only

if TYPE_CHECKING:
    import h5py

__all__ = ["Handle", "Identity", "acquire", "release"]

# What tells one file from another put at the same path: device, inode, size, mtime.
Identity = tuple[int, int, int, int]


class Handle:
    """An open read-only ``h5py.File`` and how many matrices use it, in one process.

    ``identity`` tells the file that was opened from another one put at the same path
    later (by ``os.replace``, or by deleting and recreating it).
    """

    def __init__(self, abspath: str, file: h5py.File, pid: int) -> None:
        self.abspath = abspath
        self.file = file
        self.pid = pid
        self.users = 0
        self.identity = _opened_identity(file, abspath)
        self._datasets: dict[str, h5py.Dataset] = {}

    def dataset(self, name: str) -> h5py.Dataset:
        found = self._datasets.get(name)
        if found is None:
            found = self._datasets[name] = _find_dataset(self.file, name)
        return found


_handles: dict[tuple[str, int], Handle] = {}
_handles_lock = threading.Lock()


def acquire(abspath: str, given_path: str, pid: int) -> Handle:
    with _handles_lock:
        handle = _handles.get((abspath, pid))
        if handle is None or handle.identity != _path_identity(abspath):
            # The file at the path now is another one than the shared handle's (or there
            # is none): open it. Matrices on the old handle keep it until they let go.
            handle = Handle(abspath, _open_read_only(abspath, given_path), pid)
            _handles[(abspath, pid)] = handle
        handle.users += 1
        return handle


def release(handle: Handle) -> None:
    with _handles_lock:
        handle.users -= 1
        if handle.users <= 0:
            if _handles.get((handle.abspath, handle.pid)) is handle:
                del _handles[(handle.abspath, handle.pid)]
            handle.file.close()


def _identity(status: os.stat_result) -> Identity:
    # Device and inode name the file; size and modification time catch a file rewritten
    # in place (HDF5 would otherwise hand back its cached view of the old contents).
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def _path_identity(abspath: str) -> Identity | None:
    try:
        return _identity(os.stat(abspath))
    except OSError:
        return None


def _opened_identity(file: h5py.File, abspath: str) -> Identity | None:
    """The identity of the file HDF5 opened (its descriptor, not the path, when known)."""
    try:
        fd = file.id.get_vfd_handle()
    except Exception:  # a driver without a file descriptor
        return _path_identity(abspath)
    if not isinstance(fd, int):
        return _path_identity(abspath)
    return _identity(os.fstat(fd))


def _open_read_only(abspath: str, given_path: str) -> h5py.File:
    try:
        import h5py
    except ImportError as error:  # pragma: no cover - h5py is a dependency
        raise ImportError("The use of HDF5Matrix requires HDF5 and h5py installed.") from error

    if not os.path.exists(abspath):
        msg = (
            f"No such HDF5 file: {given_path!r}. Check the path. Received: datapath={given_path!r}"
        )
        raise FileNotFoundError(errno.ENOENT, msg, given_path)
    if os.path.isdir(abspath):
        msg = f"datapath must be an HDF5 file, not a folder. Received: datapath={given_path!r}"
        raise IsADirectoryError(errno.EISDIR, msg, given_path)
    if not h5py.is_hdf5(abspath):
        msg = f"{given_path!r} is not an HDF5 file. Received: datapath={given_path!r}"
        raise OSError(msg)
    return open_read_only(abspath)


def _find_dataset(file: h5py.File, name: str) -> h5py.Dataset:
    import h5py

    item = file.get(name)
    if isinstance(item, h5py.Dataset):
        return item
    available = _dataset_names(file)
    listing = ", ".join(repr(n) for n in available) or "none"
    if item is None:
        msg = (
            f"No dataset {name!r} in {file.filename!r}. Datasets in the file: {listing}. "
            f"Received: dataset={name!r}"
        )
        raise KeyError(msg)
    msg = (
        f"{name!r} in {file.filename!r} is a {type(item).__name__}, not a dataset. Pass the "
        f"name of a dataset; datasets in the file: {listing}. Received: dataset={name!r}"
    )
    raise TypeError(msg)


def _dataset_names(file: h5py.File) -> list[str]:
    import h5py

    names: list[str] = []

    def visit(name: str, item: object) -> None:
        if isinstance(item, h5py.Dataset):
            names.append(name)

    file.visititems(visit)
    return names

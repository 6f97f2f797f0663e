"""Getting a download to the disk while it is still arriving, and then for good.

``get_file`` moves a download into place only once its bytes are on the disk. Left to
the kernel, most of a large file is still in memory when the transfer ends, and the
``fsync`` that follows writes all of it while the caller waits. ``Writeback`` has a thread
start the disk writes of every 8 MiB written while the file grows, so that the final
``fsync`` has little left to do: with ``sync_file_range(SYNC_FILE_RANGE_WRITE)`` on Linux
(it queues the writes and returns: no cache flush, no wait for the disk), elsewhere with
``fdatasync``. On a loaded 2-core machine, calling it from the thread that receives held
the transfer up in some runs, while the disk was busy with other work.

When the size of the download is known, ``Writeback.expect`` first reserves its blocks
with ``fallocate(FALLOC_FL_KEEP_SIZE)`` on Linux. Without it, ext4 reserves and accounts
every 4 KiB block one by one as each ``write`` dirties it ("delayed allocation"). On
the 2-core machine the benchmarks run on (docs/performance.md), writing 300 MiB in
1 MiB writes took 32 to 41 ms of CPU with the blocks reserved and 69 to 72 ms without.
The file's size still grows only with the bytes written, so a short transfer still
shows as one.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import queue
import sys
import threading
from collections.abc import Callable

# Errors that say the call is not supported for this file or system, not that the disk
# failed: writeback is then left to the kernel and the final fsync.
_UNSUPPORTED = frozenset({errno.EINVAL, errno.ESPIPE, errno.ENOSYS, errno.EOPNOTSUPP})
_SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h
_FALLOC_FL_KEEP_SIZE = 1  # linux/falloc.h


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], None] | None:
    """The C library's ``sync_file_range``, raising OSError; None where there is none."""
    native = getattr(os, "sync_file_range", None)  # not in Python's os as of 3.13
    if native is not None and sys.platform.startswith("linux"):
        return native
    return _libc_call("sync_file_range", "int64", "int64", "uint")


@functools.cache
def _fallocate() -> Callable[[int, int, int, int], None] | None:
    """The C library's ``fallocate(fd, mode, offset, len)``; None where there is none."""
    return _libc_call("fallocate", "int", "int64", "int64")


def _libc_call(name: str, *types: str) -> Callable[[int, int, int, int], None] | None:
    """A Linux C library function of ``(fd, *types)`` returning 0 or -1, raising OSError."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):  # a C library without it (old musl, say)
        return None
    ctypes_types = {"int": ctypes.c_int, "int64": ctypes.c_int64, "uint": ctypes.c_uint}
    function.argtypes = [ctypes.c_int, *(ctypes_types[t] for t in types)]
    function.restype = ctypes.c_int

    def call(fd: int, a: int, b: int, c: int) -> None:
        if function(fd, a, b, c) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    return call


class Writeback:
    """Start the disk writes of a file that is being appended to, ``step`` bytes at a time.

    Call ``wrote(size)`` after each write with the file's new size (a smaller size means
    the file was emptied and written again), ``finish(size)`` once the last byte is
    written, and ``stop()`` when done. The calls are made by a thread, so that a busy
    disk never holds up the transfer; after ``finish`` the thread also calls ``fsync``
    on the file, while the caller waits for the hashing to end. The first failure of
    the disk is kept in ``error``: a failed flush can clear the error a later ``fsync``
    would otherwise report, so the caller must check it after ``stop()``.
    """

    def __init__(self, fd: int, step: int = 8 << 20) -> None:
        self._fd = fd
        self._step = step
        self._queued = 0
        self._finished = False
        self.synced = False
        self.error: OSError | None = None
        self._sizes: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="kutils-writeback", daemon=True)
        self._thread.start()

    def expect(self, total: int) -> None:
        """Reserve the disk blocks of a file that will hold ``total`` bytes (a hint).

        Called by the thread that writes, before the first byte: the writes then fill
        blocks that exist instead of reserving one per page. Only a size under half the
        free space is reserved, so that a server announcing more than the disk holds
        cannot fill it for everyone while the transfer runs. Any failure (a filesystem
        without ``fallocate``, a quota) leaves the file as it was; the writes then report
        a real shortage of space themselves, as they did without it.
        """
        native = _fallocate()
        if native is None or total <= 0:
            return
        with contextlib.suppress(OSError):
            disk = os.fstatvfs(self._fd)
            if total < disk.f_bavail * disk.f_frsize // 2:
                native(self._fd, _FALLOC_FL_KEEP_SIZE, 0, total)

    def wrote(self, size: int) -> None:
        if size < self._queued or size - self._queued >= self._step:
            self._queued = size
            self._sizes.put(size)

    def finish(self, size: int) -> None:
        """Every byte is written: start the writes of the rest, then fsync the file.

        Call from the thread that wrote, after its last write; ``stop()`` waits for it,
        and ``synced`` then tells whether the fsync succeeded.
        """
        self._finished = True
        self._sizes.put(size)
        self._sizes.put(None)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._sizes.put(None)
            self._thread.join()

    def _run(self) -> None:
        native = _sync_file_range()
        started = 0
        while (size := self._sizes.get()) is not None:
            if size < started:  # emptied and written again
                started = 0
            if size <= started or self.error is not None:
                continue
            try:
                if native is not None:
                    native(self._fd, started, size - started, _SYNC_FILE_RANGE_WRITE)
                else:
                    getattr(os, "fdatasync", os.fsync)(self._fd)
            except OSError as exc:
                if native is not None and exc.errno in _UNSUPPORTED:
                    native = None  # fdatasync from the next step on
                else:
                    self.error = exc
            started = size
        if self._finished and self.error is None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self.error = exc
            else:
                self.synced = True


def sync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable; not every system can open a folder: best effort."""
    try:
        fd = os.open(folder or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

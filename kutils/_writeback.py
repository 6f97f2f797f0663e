"""Getting a download to the disk while it is still arriving, and then for good.

``get_file`` moves a download into place only once its bytes are on the disk. Left to
the kernel, most of a large file is still in memory when the transfer ends, and the
``fsync`` that follows writes all of it while the caller waits. ``Writeback`` starts the
disk writes of each written range as the file grows, so that the final ``fsync`` has
little left to do: with ``sync_file_range(SYNC_FILE_RANGE_WRITE)`` on Linux (it only
queues the writes and returns, no cache flush, no waiting), elsewhere with a thread that
calls ``fdatasync`` every few tens of MiB.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
import threading
from collections.abc import Callable

# Errors that say the call is not supported for this file or system, not that the disk
# failed: writeback is then left to the kernel and the final fsync.
_UNSUPPORTED = frozenset({errno.EINVAL, errno.ESPIPE, errno.ENOSYS, errno.EOPNOTSUPP})
_SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], None] | None:
    """The C library's ``sync_file_range``, raising OSError; None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    native = getattr(os, "sync_file_range", None)  # not in Python's os as of 3.13
    if native is not None:
        return native
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # a C library without it (old musl, say)
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int

    def call(fd: int, offset: int, nbytes: int, flags: int) -> None:
        if function(fd, offset, nbytes, flags) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    return call


class Writeback:
    """Start the disk writes of a file that is being appended to, ``step`` bytes at a time.

    Call ``wrote(size)`` after each write with the file's new size (a smaller size means
    the file was emptied and written again), and ``stop()`` when done. The first failure
    of the disk is kept in ``error``: a failed flush can clear the error the final
    ``fsync`` would otherwise report, so the caller must check it.
    """

    def __init__(self, fd: int, step: int = 8 << 20) -> None:
        self._fd = fd
        self._step = step
        self._started = 0
        self.error: OSError | None = None
        self._native = _sync_file_range()
        self._thread: _SyncThread | None = None
        if self._native is None:
            self._thread = _SyncThread(fd, step=4 * step)

    def wrote(self, size: int) -> None:
        if self._native is None:
            return
        if size < self._started:  # emptied and written again
            self._started = 0
        if size - self._started < self._step or self.error is not None:
            return
        try:
            self._native(self._fd, self._started, size - self._started, _SYNC_FILE_RANGE_WRITE)
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                self._native = None
            else:
                self.error = exc
        self._started = size

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self.error = self.error or self._thread.error


class _SyncThread:
    """Where there is no sync_file_range: ``fdatasync`` from a thread as the file grows."""

    def __init__(self, fd: int, step: int, period: float = 0.2) -> None:
        self._fd = fd
        self._step = step
        self._period = period
        self._done = threading.Event()
        self.error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="kutils-sync", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sync = getattr(os, "fdatasync", os.fsync)
        flushed = 0
        while not self._done.wait(self._period):
            try:
                size = os.fstat(self._fd).st_size
                if size - flushed >= self._step:
                    sync(self._fd)
                    flushed = size
            except OSError as exc:
                self.error = exc
                return

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


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

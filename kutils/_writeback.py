"""Getting a download to the disk while it is still arriving, and then for good.

``get_file`` moves a download into place only once its bytes are on the disk. Left to
the kernel, most of a large file is still in memory when the transfer ends, and the
``fsync`` that follows writes all of it while the caller waits. ``Writeback`` has a thread
start the disk writes of every 8 MiB written while the file grows, so that the final
``fsync`` has little left to do: with ``sync_file_range(SYNC_FILE_RANGE_WRITE)`` on Linux
(it queues the writes and returns: no cache flush, no wait for the disk), elsewhere with
``fdatasync``. On a loaded 2-core machine, calling it from the thread that receives held
the transfer up in some runs, while the disk was busy with other work.
"""

from __future__ import annotations

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
    the file was emptied and written again), and ``stop()`` when done. The calls are made
    by a thread, so that a busy disk never holds up the transfer. The first failure of
    the disk is kept in ``error``: a failed flush can clear the error the final ``fsync``
    would otherwise report, so the caller must check it.
    """

    def __init__(self, fd: int, step: int = 8 << 20) -> None:
        self._fd = fd
        self._step = step
        self._queued = 0
        self.error: OSError | None = None
        self._sizes: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="kutils-writeback", daemon=True)
        self._thread.start()

    def wrote(self, size: int) -> None:
        if size < self._queued or size - self._queued >= self._step:
            self._queued = size
            self._sizes.put(size)

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

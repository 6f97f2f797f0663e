"""``HashingWriter``: the file a download streams into, hashed on a second thread.

The transfer (``kutils/_transfer.py``) reads the body straight from the socket into a
few reused buffers that this writer hands out; each buffer is written to the file and
then hashed on a worker thread, so hashing overlaps the network and the disk instead of
being a second pass over the file (hashlib releases the GIL for large buffers).
Failures of the file (a full disk, a quota, a size limit) are raised as ``WriteError``.
"""

from __future__ import annotations

import errno
import hashlib
import queue
import threading
from collections.abc import Callable
from typing import Any

CHUNK_SIZE = 1 << 20
_BUFFERS = 8


class WriteError(OSError):
    """Writing downloaded bytes to the file failed: a full disk, a quota, a size limit.

    Raised by ``HashingWriter`` so that ``get_file`` can tell a failure of the disk from
    a failure of the origin; ``errno`` and ``strerror`` are the system's.
    """


class HashingWriter:
    """Write chunks to ``file`` while a worker thread hashes the same buffers.

    The reader fills a free buffer (``buffer()``), hands it over with ``commit``; the
    buffer is written here and queued for hashing, and returns to the free list once
    hashed. ``restart`` empties the file and the hash when a server ignores a Range
    request and sends the whole body again. ``on_write`` is called with the file's size
    after each write (``get_file`` starts the disk writes of the new bytes there), and
    ``on_total`` with the size the server announced, before the first byte of a body.
    """

    def __init__(
        self,
        file: Any,
        algorithm: str | None,
        *,
        chunk_size: int = CHUNK_SIZE,
        on_write: Callable[[int], None] | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> None:
        self._file = file
        self._algorithm = algorithm
        self._on_write = on_write
        self._on_total = on_total
        self.size = 0
        self._chunk_size = chunk_size
        # Buffers are made when the free ones run out, up to _BUFFERS: when the hashing
        # keeps up, two or three go round, stay in the CPU caches, and the 8 MiB of
        # zeroed memory is not paid for before the first byte.
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._made = 0
        self._full: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
        self._hasher: Any = None
        self._thread: threading.Thread | None = None
        self._start_hasher()

    def _start_hasher(self) -> None:
        if self._algorithm is None:
            return
        self._hasher = hashlib.new(self._algorithm)
        self._thread = threading.Thread(target=self._hash_loop, name="kutils-hash", daemon=True)
        self._thread.start()

    def _hash_loop(self) -> None:
        update = self._hasher.update
        while True:
            item = self._full.get()
            if item is None:
                return
            buf, n = item
            with memoryview(buf) as view:
                update(view[:n])
            self._free.put(buf)

    def buffer(self) -> bytearray:
        if self._made < _BUFFERS:
            try:
                return self._free.get_nowait()
            except queue.Empty:
                self._made += 1
                return bytearray(self._chunk_size)
        return self._free.get()

    def commit(self, buf: bytearray, n: int) -> None:
        try:
            with memoryview(buf) as view:
                self._write_all(view[:n])
        except BaseException:
            self._free.put(buf)
            raise
        self.size += n
        if self._on_write is not None:
            self._on_write(self.size)
        if self._thread is None:
            self._free.put(buf)
        else:
            self._full.put((buf, n))

    def _write_all(self, data: memoryview) -> None:
        # An unbuffered write may store fewer bytes than it was given (the file-size limit
        # or the disk's last free blocks reached); the next write then reports why. Only
        # bytes that were written reach the hash, since a buffer is hashed once whole.
        done = 0
        while done < len(data):
            try:
                written = self._file.write(data[done:])
            except OSError as exc:
                raise WriteError(exc.errno, exc.strerror or str(exc)) from exc
            if not written:
                raise WriteError(errno.EIO, "the file accepted no more bytes")
            done += written

    def expect(self, total: int) -> None:
        """The body about to be written holds ``total`` bytes (as its server announced)."""
        if self._on_total is not None:
            self._on_total(total)

    def give_back(self, buf: bytearray) -> None:
        self._free.put(buf)

    def _stop_hasher(self) -> None:
        if self._thread is not None:
            self._full.put(None)
            self._thread.join()
            self._thread = None

    def restart(self) -> None:
        self._stop_hasher()
        self._file.seek(0)
        self._file.truncate()
        self.size = 0
        self._start_hasher()

    def hexdigest(self) -> str | None:
        """Wait for the hashing to catch up and return the digest (None: no algorithm)."""
        self._stop_hasher()
        return None if self._hasher is None else self._hasher.hexdigest()

    def close(self) -> None:
        self._stop_hasher()

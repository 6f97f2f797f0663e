"""The wire between the loader and its worker processes: frames, payloads, errors.

Each worker has a control pipe (``ControlSender`` in the parent, ``ControlReader`` in
the worker) that brings it new states of the sequence and the plan of each pass, and a
results pipe of its own whose only write end it holds. It pickles a
batch straight into the pipe as a message of frames (``FrameWriter``, ``send``); the
parent reads the pipe without ever blocking (``ResultReader``), keeping a half-received
message, so a worker that dies half-way through a batch leaves nothing waiting. An
exception raised in a worker travels as ``portable_error`` (pickled when possible, with
its traceback as text) and is raised again in the parent by ``rebuild_error``.

Both sides import this module: ``kutils._loader`` (the parent) and
``kutils._loader_worker`` (the code run inside a worker process).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import struct
import threading
import traceback
from typing import Any

# Frames of a result message: a header (tag, value), then for DATA and BUFFER `value`
# bytes. A message is BATCH or ERROR (value: the position), DATA frames (the pickle)
# and BUFFER frames (its out-of-band buffers, in order) and END; ABORT drops the
# message begun (pickling failed part-way) before an ERROR one.
HEADER = struct.Struct("<iq")
BATCH, ERROR, DATA, END, ABORT, BUFFER = 1, 2, 3, 4, 5, 6
# A worker gathers a result's frames up to this many bytes into one write, and the
# parent reads up to this many bytes a call; a bigger DATA frame is written and read
# on its own, straight from and into the batch's memory.
_SMALL_WRITE = 1 << 16
_READ_SIZE = 1 << 16
# The size a results pipe is given once a big frame comes through it.
_BIG_PIPE = 1 << 20
# Buffers of at least this many bytes (an array's memory) travel out of band.
_OUT_OF_BAND = 1 << 16
# A complete result: (position, ok, the pickle's bytes, its out-of-band buffers).
Message = tuple[int, bool, Any, list[bytearray]]


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process, kept as its cause."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


class Inherited:
    """A sequence handed to forked workers as an object (it cannot be pickled)."""

    def __init__(self, sequence: Any) -> None:
        self.sequence = sequence


def portable_error(error: BaseException) -> tuple[bytes | None, str, str]:
    """The exception pickled (when possible), its 'Type: message' line and traceback."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    summary = f"{type(error).__module__}.{type(error).__qualname__}: {error}"
    data: bytes | None
    try:
        data = pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)  # some exceptions pickle but cannot be rebuilt
    except Exception:
        data = None
    return data, summary, text


def rebuild_error(value: tuple[bytes | None, str, str]) -> BaseException:
    data, summary, text = value
    error: BaseException
    if data is not None:
        error = pickle.loads(data)
    else:
        error = RuntimeError(f"{summary} (the exception could not be pickled back)")
    error.__cause__ = RemoteTraceback(text)
    # Keras's traceback filter re-raises with ``from None``, which drops the cause: keep
    # the worker's traceback as a note too (printed with the error from Python 3.11; on
    # 3.10, which has no add_note, it is still there in ``__notes__``).
    note = f"Raised in a Sequence worker process:\n{text.rstrip()}"
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:
        error.__notes__ = [*getattr(error, "__notes__", ()), note]
    return error


class ResultReader:
    """Reads one worker's results pipe without ever blocking.

    The worker writes each result as a message of frames (see ``FrameWriter``). The
    reader keeps whatever part of a message has arrived, so a message cut short by the
    worker's death is simply never completed.
    """

    def __init__(self, connection: Any, process: Any) -> None:
        self.connection = connection
        self.process = process
        self.at_end = False
        self._fd = connection.fileno()
        # close() can come from the thread that stops the loader and from the iterating
        # generator's cleanup at once: the descriptor must be closed exactly once, or the
        # second close fails (EBADF) or closes a file opened meanwhile with that number.
        self._close_lock = threading.Lock()
        self._closed = False
        os.set_blocking(self._fd, False)
        self._rest = b""  # received bytes not yet parsed into frames
        self._payload: bytearray | None = None  # a big frame being read into its buffer
        self._payload_tag = DATA
        self._widened = False
        self._filled = 0
        self._message: tuple[int, bool] | None = None
        self._parts: list[Any] = []  # the pickle's bytes, as views of what was read
        self._buffers: list[bytearray] = []  # its out-of-band buffers

    def close(self) -> None:
        """Close the pipe once, whichever threads call this and how often."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self.connection.close()

    def read_available(self) -> list[Message]:
        """The messages completed by the bytes the pipe holds now (maybe none)."""
        messages: list[Message] = []
        while not self.at_end:
            if self._payload is not None:
                # A big frame is read straight into its own buffer, not in chunks.
                view = memoryview(self._payload)[self._filled :]
                try:
                    count = os.readv(self._fd, [view])
                except BlockingIOError:
                    break
                if count == 0:
                    self.at_end = True
                    break
                self._filled += count
                if self._filled == len(self._payload):
                    self._add(self._payload_tag, self._payload)
                    self._payload = None
                continue
            try:
                # Small messages come several to a read: one system call for all the
                # results a worker wrote since the last one.
                chunk = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                break
            if not chunk:
                self.at_end = True
                break
            self._parse(self._rest + chunk if self._rest else chunk, messages)
        return messages

    def _parse(self, data: bytes, messages: list[Message]) -> None:
        """Take the frames in ``data``; keep an incomplete small one, start a big one.

        A small DATA frame is kept as a view of ``data`` (no copy); a big frame not all
        here gets a buffer of its own size, and the rest is read straight into it.
        """
        view = memoryview(data)
        size = len(view)
        offset = 0
        while size - offset >= HEADER.size:
            tag, value = HEADER.unpack_from(view, offset)
            body = offset + HEADER.size
            if tag in (DATA, BUFFER):
                if size - body < value:
                    if value <= _READ_SIZE:
                        break  # a small frame not all here yet: wait for the rest
                    self._payload = bytearray(value)
                    self._payload_tag = tag
                    self._widen()
                    self._filled = size - body
                    self._payload[: self._filled] = view[body:]
                    offset = size
                    break
                part = view[body : body + value]
                # An out-of-band buffer becomes the batch's own memory: writable, as the
                # bytearray pickle makes of a writable array's bytes in-band.
                self._add(tag, bytearray(part) if tag == BUFFER else part)
                offset = body + value
                continue
            offset = body
            message = self._frame(tag, value)
            if message is not None:
                messages.append(message)
        self._rest = bytes(view[offset:]) if offset < size else b""

    def _widen(self) -> None:
        """Let the pipe hold more than 64 KiB once big batches come through it.

        Each refill of the pipe costs a read here and a wake-up of the writer: a big
        pipe makes them 16 times rarer. Linux only; where the user's pipe memory is at
        its limit, the pipe keeps its size.
        """
        if self._widened:
            return
        self._widened = True
        try:
            import fcntl  # not on Windows
        except ImportError:
            return
        setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
        if setsize is not None:
            with contextlib.suppress(OSError):
                fcntl.fcntl(self._fd, setsize, _BIG_PIPE)

    def _add(self, tag: int, part: Any) -> None:
        (self._buffers if tag == BUFFER else self._parts).append(part)

    def _frame(self, tag: int, value: int) -> Message | None:
        if tag in (BATCH, ERROR):
            self._message = (value, tag == BATCH)
            self._parts, self._buffers = [], []
        elif tag == ABORT:
            self._message, self._parts, self._buffers = None, [], []
        elif tag == END and self._message is not None:
            (position, ok), self._message = self._message, None
            parts, self._parts = self._parts, []
            buffers, self._buffers = self._buffers, []
            # pickle.loads reads a view as well as bytes: one part is not copied.
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            return position, ok, data, buffers
        else:
            msg = f"kutils worker sent an unknown frame: tag={tag}, value={value}"
            raise RuntimeError(msg)
        return None


class FrameWriter:
    """A file-like object for ``pickle.dump`` that sends each write as a DATA frame.

    Pickling straight into the pipe keeps one copy of a batch in the worker instead of
    two (the pickled bytes and the object), so a big batch begins to arrive while it is
    still being pickled. Small frames are gathered and sent by ``flush()`` in one write,
    so a small result is one system call and wakes the parent once. A big buffer that
    pickle hands out of band (a numpy array's memory) goes as a BUFFER frame, which the
    parent reads into the memory the unpickled array then uses, without a copy.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._pending = bytearray()

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        size = view.nbytes
        if size == 0:
            return 0
        self._pending += HEADER.pack(DATA, size)
        if len(self._pending) + size <= _SMALL_WRITE:
            self._pending += view
        else:
            self.flush()
            _write_all(self._fd, view)
        return size

    def buffer(self, buffer: pickle.PickleBuffer) -> bool:
        """pickle's buffer_callback: send a big buffer out of band (False), else in-band."""
        try:
            view = buffer.raw()
        except BufferError:  # not contiguous: pickle in-band says what it can do
            return True
        if view.nbytes < _OUT_OF_BAND:
            return True
        self._pending += HEADER.pack(BUFFER, view.nbytes)
        self.flush()
        _write_all(self._fd, view)
        return False

    def frame(self, tag: int, value: int = 0) -> None:
        self._pending += HEADER.pack(tag, value)

    def flush(self) -> None:
        if self._pending:
            _write_all(self._fd, self._pending)
            self._pending.clear()


def _write_all(fd: int, data: Any) -> None:
    view = memoryview(data).cast("B")
    while view.nbytes:
        written = os.write(fd, view)
        view = view[written:]


def send(writer: FrameWriter, position: int, ok: bool, value: Any) -> None:
    """Write one result message; a small one may stay in ``writer`` until its flush()."""
    writer.frame(BATCH if ok else ERROR, position)
    pickle.dump(value, writer, protocol=pickle.HIGHEST_PROTOCOL, buffer_callback=writer.buffer)
    writer.frame(END)


def loads(data: Any, buffers: list[bytearray]) -> Any:
    """The object of a message read by ``ResultReader`` (its pickle and buffers)."""
    return pickle.loads(data, buffers=buffers)


# A control message (parent to worker): its length, then the message pickled.
LENGTH = struct.Struct("<q")
TIMED_OUT = object()  # what ControlReader.get returns when nothing came in time


class ControlSender:
    """The parent's end of one worker's control pipe; ``send`` never blocks.

    What the pipe cannot take at once waits here and goes with ``flush()``, which the
    loader calls when the pipe is writable again, so a big new state of the sequence
    never blocks the parent while the worker is busy. Written from the iterating thread
    and closed from the thread that stops the loader: the lock keeps a write from ever
    reaching a descriptor closed (and perhaps reused) meanwhile.
    """

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.fd = connection.fileno()
        os.set_blocking(self.fd, False)
        self._backlog = bytearray()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def pending(self) -> bool:
        return bool(self._backlog)

    def send(self, message: Any) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            self._backlog += LENGTH.pack(len(data))
            self._backlog += data
        self.flush()

    def flush(self) -> None:
        """Write what the pipe takes now (the worker may have gone: then drop it)."""
        with self._lock:
            while self._backlog and not self._closed:
                try:
                    written = os.write(self.fd, self._backlog)
                except BlockingIOError:
                    return
                except OSError:  # the worker ended; the loader sees its exit code
                    self._backlog.clear()
                    return
                del self._backlog[:written]

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._backlog.clear()
                self.connection.close()


class ControlReader:
    """The worker's end of its control pipe: whole messages, waiting with a timeout."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._fd = connection.fileno()
        self._buffer = bytearray()

    def get(self, timeout: float) -> Any:
        """The next message; None at end of file (the parent closed it); TIMED_OUT."""
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        while True:
            if len(self._buffer) >= LENGTH.size:
                (size,) = LENGTH.unpack_from(self._buffer)
                end = LENGTH.size + size
                if len(self._buffer) >= end:
                    with memoryview(self._buffer) as view:
                        message = pickle.loads(view[LENGTH.size : end])
                    del self._buffer[:end]
                    return message
            if not poller.poll(timeout * 1000):
                return TIMED_OUT
            chunk = os.read(self._fd, 1 << 20)
            if not chunk:
                return None
            self._buffer += chunk

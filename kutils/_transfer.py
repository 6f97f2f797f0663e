"""Streaming an origin URL into an open file: one-pass hashing, timeouts, retries, resume.

``get_file`` (in ``kutils.downloads``) owns the paths, the cache rules and the lock; this
module only moves bytes. It reads the body straight from the socket into a few reused
buffers, writes each buffer to the file and hashes it on a second thread, so hashing
overlaps the network and the disk instead of being a second pass over the file
(hashlib releases the GIL for large buffers).
"""

from __future__ import annotations

import email.utils
import errno
import hashlib
import os
import queue
import re
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kutils._version import __version__

CHUNK_SIZE = 1 << 20
_BUFFERS = 8
# 429 Too Many Requests and every 5xx are worth another try; other statuses are final.
_RETRY_STATUSES = frozenset({429, *range(500, 600)})


class URLFetchError(Exception):
    """An origin could not be fetched (legacy ``get_file`` raised a plain ``Exception``).

    The message starts like the Keras 2.3.1 one, ``URL fetch failure on <url> : ...``.
    ``url`` is the origin that failed.
    """

    def __init__(self, msg: str, *, url: str) -> None:
        super().__init__(msg)
        self.url = url


class HTTPStatusError(URLFetchError):
    """The server answered with an HTTP error status; ``status`` holds it (404, 503, ...)."""

    def __init__(self, msg: str, *, url: str, status: int) -> None:
        super().__init__(msg, url=url)
        self.status = status


class DownloadInterruptedError(URLFetchError):
    """Connection errors, timeouts or truncated bodies outlasted every retry."""


class WriteError(OSError):
    """Writing downloaded bytes to the file failed: a full disk, a quota, a size limit.

    Raised by ``HashingWriter`` so that ``get_file`` can tell a failure of the disk from
    a failure of the origin; ``errno`` and ``strerror`` are the system's.
    """


@dataclass(frozen=True)
class FetchOptions:
    """The keyword-only network options of ``get_file``, already validated."""

    timeout: tuple[float, float]
    retries: int
    backoff_factor: float
    backoff_max: float
    progress: bool | None
    headers: Mapping[str, str] = field(default_factory=dict)


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


class Progress:
    """A one-line progress bar on stderr, drawn once a transfer has run for ``delay`` s.

    ``enabled=None`` draws only when stderr is a terminal; False never; True always.
    """

    def __init__(self, enabled: bool | None, label: str, delay: float = 1.0) -> None:
        if enabled is None:
            enabled = bool(getattr(sys.stderr, "isatty", lambda: False)())
        self._enabled = enabled
        self._label = label
        self._delay = delay
        self._start = time.monotonic()
        self._next_draw = self._start + delay
        self._drawn = False
        self.total: int | None = None

    def update(self, done: int) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if now < self._next_draw:
            return
        self._next_draw = now + 0.1
        self._draw(done, now)

    def _draw(self, done: int, now: float) -> None:
        elapsed = max(now - self._start, 1e-9)
        speed = done / elapsed / 1e6
        if self.total:
            fraction = min(done / self.total, 1.0)
            filled = int(30 * fraction)
            bar = "=" * filled + (">" if filled < 30 else "") + "." * (29 - filled)
            line = (
                f"{self._label}: {done / 1e6:.1f}/{self.total / 1e6:.1f} MB "
                f"[{bar}] {fraction:4.0%} {speed:.1f} MB/s"
            )
        else:
            line = f"{self._label}: {done / 1e6:.1f} MB {speed:.1f} MB/s"
        sys.stderr.write("\r" + line)
        sys.stderr.flush()
        self._drawn = True

    def finish(self, done: int) -> None:
        if self._drawn:
            self._draw(done, time.monotonic())
            sys.stderr.write("\n")
            sys.stderr.flush()


def fetch(origin: str, writer: HashingWriter, options: FetchOptions) -> None:
    """Copy the body of ``origin`` (http, https or file URL) into ``writer``."""
    scheme = urllib.parse.urlsplit(origin).scheme.lower()
    progress = Progress(options.progress, _short_name(origin))
    try:
        if scheme == "file":
            _fetch_file(origin, writer, progress)
        elif scheme in ("http", "https"):
            _fetch_http(origin, writer, options, progress)
        else:
            msg = (
                f"unknown url type: {origin!r}. get_file downloads http://, https:// and "
                f"file:// URLs. Received: origin={origin!r}"
            )
            raise ValueError(msg)
    finally:
        progress.finish(writer.size)


def _short_name(origin: str) -> str:
    path = urllib.parse.urlsplit(origin).path
    return os.path.basename(path.rstrip("/")) or origin


def _fetch_file(origin: str, writer: HashingWriter, progress: Progress) -> None:
    parts = urllib.parse.urlsplit(origin)
    if parts.netloc not in ("", "localhost"):
        msg = (
            f"URL fetch failure on {origin} : None -- file:// URLs must name a local file "
            f"(host '' or 'localhost'). Received: host {parts.netloc!r}"
        )
        raise URLFetchError(msg, url=origin)
    path = urllib.request.url2pathname(urllib.parse.unquote(parts.path))
    try:
        source = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise URLFetchError(f"URL fetch failure on {origin} : None -- {exc}", url=origin) from exc
    with source:
        progress.total = os.fstat(source.fileno()).st_size
        writer.expect(progress.total)
        _copy(source.readinto, writer, progress)


def _copy(
    readinto: Callable[[bytearray], int | None], writer: HashingWriter, progress: Progress
) -> None:
    while True:
        buf = writer.buffer()
        try:
            n = readinto(buf)
        except BaseException:
            writer.give_back(buf)
            raise
        if not n:
            writer.give_back(buf)
            return
        writer.commit(buf, n)
        progress.update(writer.size)


class _Transient(Exception):
    """A failure worth another attempt; ``retry_after`` is the server's wish, if any."""

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.status = status
        self.retry_after = retry_after


def _fetch_http(
    origin: str, writer: HashingWriter, options: FetchOptions, progress: Progress
) -> None:
    import requests

    session = requests.Session()  # trust_env: proxies and certificates from the environment
    session.headers["User-Agent"] = (
        f"kutils/{__version__} (get_file; +python-requests/{requests.__version__})"
    )
    # The stored bytes must be the resource itself, and Range offsets count those bytes.
    session.headers["Accept-Encoding"] = "identity"
    session.headers.update(options.headers)
    failures = attempts = 0
    high_water = 0
    state = _ResumeState()
    with session:
        while True:
            attempts += 1
            try:
                _one_attempt(session, origin, writer, options, progress, state)
                return
            except _Transient as exc:
                failure: _Transient = exc
            except requests.exceptions.SSLError as exc:  # a bad certificate stays bad
                msg = f"URL fetch failure on {origin} : None -- {_describe(exc)}"
                raise URLFetchError(msg, url=origin) from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = _Transient(_describe(exc))
            except requests.RequestException as exc:  # too many redirects, invalid URL...
                msg = f"URL fetch failure on {origin} : None -- {_describe(exc)}"
                raise URLFetchError(msg, url=origin) from exc
            if writer.size > high_water:  # progress was made: the retry budget starts over
                high_water = writer.size
                failures = 0
            failures += 1
            if failures > options.retries:
                _give_up(origin, failure, attempts)
            time.sleep(_delay(failures, failure.retry_after, options))


@dataclass
class _ResumeState:
    total: int | None = None
    accepts_ranges: bool = False
    validator: str | None = None
    # Set once a server answered a Range request with a part that was not the one asked
    # for: it is not asked for ranges again during this call.
    ranges_distrusted: bool = False


def _one_attempt(
    session: Any,
    origin: str,
    writer: HashingWriter,
    options: FetchOptions,
    progress: Progress,
    state: _ResumeState,
) -> None:
    headers = {}
    resuming = writer.size > 0 and state.accepts_ranges and not state.ranges_distrusted
    if resuming:
        headers["Range"] = f"bytes={writer.size}-"
        if state.validator:
            headers["If-Range"] = state.validator
    response = session.get(origin, stream=True, timeout=options.timeout, headers=headers)
    with response:
        status = response.status_code
        if status in _RETRY_STATUSES:
            raise _Transient(
                f"{status} -- {response.reason}",
                status=status,
                retry_after=_parse_retry_after(response.headers.get("Retry-After")),
            )
        if status >= 400:
            msg = f"URL fetch failure on {origin} : {status} -- {response.reason}"
            if response.url != origin:
                msg += f" (at {response.url})"
            raise HTTPStatusError(msg, url=origin, status=status)
        problem = None
        if status == 206:
            offset = writer.size if resuming else 0
            problem = _range_problem(response, offset, state.total if resuming else None)
            if problem is not None and not resuming:
                raise _Transient(f"206 Partial Content to a request without Range: {problem}")
        if problem is None:
            if not (resuming and status == 206):
                _start_body(response, writer, state)
            _read_body(origin, response, writer, progress, state)
            return
    # The part sent is not the one asked for, or belongs to another size of the file:
    # none of it can be trusted. Start over with a plain request.
    state.ranges_distrusted = True
    writer.restart()
    _one_attempt(session, origin, writer, options, progress, state)


def _start_body(response: Any, writer: HashingWriter, state: _ResumeState) -> None:
    """The answer carries the whole file: note its size and validator, empty the file."""
    if writer.size:  # the server sent the whole body again: start over
        writer.restart()
    if response.status_code == 206:  # a Range-less request answered as bytes 0-(n-1)/n
        state.total = _range_total(response)
    else:
        state.total = _content_length(response)
    if state.total is not None:
        writer.expect(state.total)
    state.accepts_ranges = response.headers.get("Accept-Ranges", "").lower() == "bytes"
    etag = response.headers.get("ETag")
    strong_etag = etag if etag and not etag.startswith("W/") else None
    state.validator = strong_etag or response.headers.get("Last-Modified")


def _read_body(
    origin: str, response: Any, writer: HashingWriter, progress: Progress, state: _ResumeState
) -> None:
    progress.total = state.total
    _copy(_guarded(_body_reader(response)), writer, progress)
    if state.total is not None and writer.size < state.total:
        raise _Transient(f"the connection closed after {writer.size} of {state.total} bytes")
    if state.total is not None and writer.size > state.total:
        msg = (
            f"URL fetch failure on {origin} : None -- the server sent {writer.size} "
            f"bytes but announced {state.total} (Content-Length)"
        )
        raise URLFetchError(msg, url=origin)


def _guarded(readinto: Callable[[bytearray], int | None]) -> Callable[[bytearray], int | None]:
    """Turn failures of reading the body (not of writing the file) into _Transient."""
    import http.client

    import requests
    import urllib3

    errors = (
        OSError,
        http.client.HTTPException,
        urllib3.exceptions.HTTPError,
        requests.RequestException,
    )

    def read(buf: bytearray) -> int | None:
        try:
            return readinto(buf)
        except errors as exc:
            raise _Transient(_describe(exc)) from exc

    return read


def _body_reader(response: Any) -> Callable[[bytearray], int | None]:
    raw = response.raw
    # urllib3 wraps the standard library's http.client response; reading that straight
    # into our buffers avoids two copies per chunk. The attribute is private to urllib3,
    # so fall back to its public read() when it is not there.
    inner = getattr(raw, "_fp", None)
    if inner is not None and hasattr(inner, "readinto"):
        return inner.readinto

    def readinto(buf: bytearray) -> int:
        data = raw.read(len(buf), decode_content=False)
        buf[: len(data)] = data
        return len(data)

    return readinto


def _content_length(response: Any) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None or response.headers.get("Transfer-Encoding"):
        return None
    try:
        return int(value)
    except ValueError:
        return None


_CONTENT_RANGE = re.compile(r"bytes[ \t]+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)


def _range_problem(response: Any, offset: int, total: int | None) -> str | None:
    """Why a 206 answer is not the rest of the file from ``offset`` on; None when it is.

    ``total`` is the size the first answer announced (None: not known, or no earlier
    answer). A 206 must say, in ``Content-Range: bytes <start>-<end>/<size>``, that it
    starts at ``offset`` and runs to the last byte of a file of that same size.
    """
    value = response.headers.get("Content-Range")
    if value is None:
        return "it has no Content-Range header"
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if match is None:
        return f"its Content-Range {value!r} is not 'bytes <start>-<end>/<size>'"
    start, end = int(match[1]), int(match[2])
    if match[3] == "*":
        return f"its Content-Range {value!r} does not give the file's size"
    size = int(match[3])
    if offset and total is None:
        return "the file's size was not announced at first, so the part cannot be checked"
    if start != offset:
        return f"it starts at byte {start}, but byte {offset} was asked for"
    if total is not None and size != total:
        return f"it gives the file's size as {size}, but the first answer announced {total}"
    if end != size - 1:
        return f"it ends at byte {end}, not at the file's last byte ({size - 1})"
    length = _content_length(response)
    if length is not None and length != end - start + 1:
        return f"its Content-Length {length} does not match its Content-Range {value!r}"
    return None


def _range_total(response: Any) -> int | None:
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    return int(match[3]) if match and match[3] != "*" else None


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _delay(failures: int, retry_after: float | None, options: FetchOptions) -> float:
    if retry_after is not None:
        return min(retry_after, options.backoff_max)
    return float(min(options.backoff_factor * 2 ** (failures - 1), options.backoff_max))


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not text.startswith(type(exc).__name__) else text


def _give_up(origin: str, failure: _Transient, attempts: int) -> None:
    tail = f"(gave up after {attempts} attempt{'s' if attempts != 1 else ''})"
    if failure.status is not None:
        msg = f"URL fetch failure on {origin} : {failure} {tail}"
        raise HTTPStatusError(msg, url=origin, status=failure.status) from failure
    msg = f"URL fetch failure on {origin} : None -- {failure} {tail}"
    raise DownloadInterruptedError(msg, url=origin) from failure

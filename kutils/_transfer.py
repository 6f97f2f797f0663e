"""Streaming an origin URL into an open file: the errors, timeouts, retries, resume.

``get_file`` (in ``kutils.downloads``) owns the paths, the cache rules and the lock; this
module only moves bytes. ``fetch`` copies a ``file://`` URL, or an http(s) body read
straight from the socket, into a ``HashingWriter`` (``kutils/_hashing_writer.py``: the
reused buffers, the file writes and the hashing thread), retrying failed attempts with
backoff and resuming a dropped connection with a Range request. The headers this relies
on are read in ``kutils/_http_headers.py``; the progress bar is
``kutils/_download_progress.py``.
"""

from __future__ import annotations

import os
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kutils._download_progress import Progress
from kutils._hashing_writer import HashingWriter
from kutils._http_headers import content_length, parse_retry_after, range_problem, range_total
from kutils._version import __version__

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


@dataclass(frozen=True)
class FetchOptions:
    """The keyword-only network options of ``get_file``, already validated."""

    timeout: tuple[float, float]
    retries: int
    backoff_factor: float
    backoff_max: float
    progress: bool | None
    headers: Mapping[str, str] = field(default_factory=dict)


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
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status >= 400:
            msg = f"URL fetch failure on {origin} : {status} -- {response.reason}"
            if response.url != origin:
                msg += f" (at {response.url})"
            raise HTTPStatusError(msg, url=origin, status=status)
        problem = None
        if status == 206:
            offset = writer.size if resuming else 0
            problem = range_problem(response, offset, state.total if resuming else None)
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
        state.total = range_total(response)
    else:
        state.total = content_length(response)
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

"""The HTTP response headers that retries and resumed downloads depend on.

``Content-Length`` (the size of a body), ``Content-Range`` (whether a ``206`` answer is
exactly the part asked for) and ``Retry-After`` (how long the server asks to wait), read
from a ``requests`` response by ``kutils/_transfer.py``.
"""

from __future__ import annotations

import email.utils
import re
import time
from typing import Any


def content_length(response: Any) -> int | None:
    """The body's size from ``Content-Length``; None when not given or not to be trusted."""
    value = response.headers.get("Content-Length")
    if value is None or response.headers.get("Transfer-Encoding"):
        return None
    try:
        return int(value)
    except ValueError:
        return None


_CONTENT_RANGE = re.compile(r"bytes[ \t]+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)


def range_problem(response: Any, offset: int, total: int | None) -> str | None:
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
    length = content_length(response)
    if length is not None and length != end - start + 1:
        return f"its Content-Length {length} does not match its Content-Range {value!r}"
    return None


def range_total(response: Any) -> int | None:
    """The file's size from ``Content-Range`` (``bytes 0-99/100`` gives 100); None if not given."""
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    return int(match[3]) if match and match[3] != "*" else None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (seconds or a date); None if unreadable."""
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

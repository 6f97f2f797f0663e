"""The temporary ``.part`` file a download is written to before it is moved into place.

``get_file`` writes each download to a new, hidden file beside its target
(``.<name>.<12 hex digits>.part``). This module makes that file, checks that it holds
every byte and gets it to the disk (``fsync``, then ``close``), turns a failure of the
disk into an ``OSError`` that says what to do, and finds and removes the ``.part``
files that killed downloads left behind. The order of the steps (sync before the
rename, the rename before the folder sync) is kept by ``kutils/downloads.py``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from typing import BinaryIO


def commit_to_disk(
    tmp: BinaryIO, size: int, synced: bool, origin: str, tmp_path: str, fpath: str
) -> None:
    """Check the file holds every byte, and get it to the disk; a failure raises OSError.

    A full disk or an exhausted quota can show only now, on a network filesystem or
    with delayed allocation: fsync and close report it, and the file is not used.
    ``synced``: the writeback thread has already fsync'd it since the last write.
    """
    try:
        stored = os.fstat(tmp.fileno()).st_size
        if stored != size:
            raise OSError(errno.EIO, f"the file holds {stored} bytes, {size} were written")
        if not synced:
            os.fsync(tmp.fileno())
    except OSError as exc:
        raise storage_error(exc, "saving", origin, tmp_path, fpath) from exc
    try:
        tmp.close()
    except OSError as exc:
        raise storage_error(exc, "closing", origin, tmp_path, fpath) from exc


_STORAGE_HINT = "Check that disk (or pass cache_dir= for another one), then call get_file again."
_STORAGE_HINTS = {
    "ENOSPC": (
        "Free space on that disk (or pass cache_dir= for another one), then call get_file again."
    ),
    "EDQUOT": (
        "Free space within your quota on that disk, or have the quota raised, then call "
        "get_file again."
    ),
    "EFBIG": (
        "The file is larger than this process may write (see `ulimit -f`) or the "
        "filesystem allows; raise the limit or pass cache_dir= for another disk."
    ),
}


def storage_error(exc: OSError, doing: str, origin: str, tmp_path: str, fpath: str) -> OSError:
    """The ``OSError`` (same errno) to raise when ``doing`` the temporary file failed."""
    code = exc.errno if exc.errno is not None else errno.EIO
    name = errno.errorcode.get(code, str(code))
    kept = (
        "The file already there was left as it was."
        if os.path.exists(fpath)
        else "Nothing was stored there."
    )
    msg = (
        f"Could not store the download of {origin} at {fpath!r}: {doing} its temporary "
        f"file {tmp_path!r} failed with {name} ({exc.strerror or exc}). The partial "
        f"download was deleted. {kept} {_STORAGE_HINTS.get(name, _STORAGE_HINT)}"
    )
    # OSError(errno, ...) picks the matching subclass (PermissionError for EACCES, ...).
    return OSError(code, msg)


def partials(fpath: str) -> list[str]:
    """The temporary files ``open_temporary`` made for ``fpath`` that are still there."""
    folder, base = os.path.split(fpath)
    pattern = re.compile(rf"\.{re.escape(base)}\.[0-9a-f]{{12}}\.part")
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return []
    return [os.path.join(folder, name) for name in names if pattern.fullmatch(name)]


def remove_partials(fpath: str) -> None:
    """Remove the partial files of ``fpath``; call with its lock held."""
    for path in partials(fpath):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def remove_partials_if_idle(fpath: str) -> None:
    """Remove the partial files of ``fpath`` if no other process holds its lock."""
    # The file is cached, so waiting for the lock is not worth it: if another process
    # holds it, that process may be writing one of these files and removes stale ones
    # itself.
    from filelock import FileLock, Timeout

    try:
        with FileLock(fpath + ".lock", timeout=0):
            remove_partials(fpath)
    except Timeout:
        pass


def open_temporary(fpath: str) -> tuple[str, BinaryIO]:
    """A new, hidden file beside ``fpath``, with the permissions a plain file would get."""
    folder, base = os.path.split(fpath)
    while True:
        path = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.part")
        try:
            fd = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
            )
        except FileExistsError:
            continue
        return path, os.fdopen(fd, "wb", buffering=0)

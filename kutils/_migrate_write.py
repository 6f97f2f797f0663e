"""Writing a migrated file back into the user's tree, losing nothing.

:func:`write_back` replaces the content of a file the command read, and only if the file
still holds exactly what was read:

- a symbolic link is followed: its target is rewritten and the link stays a link;
- the new content goes to a temporary file in the same folder, with the owner, group,
  mode and extended attributes of the file, and is swapped into place atomically; on
  Linux the swap is ``renameat2(RENAME_EXCHANGE)``, so the file that was at the path
  is still at hand afterwards: if another program replaced or changed it in between,
  it is swapped back and the write refused;
- a file with several hard links, or whose owner the user running the command cannot
  give to a new file, is rewritten in place (space reserved first, the old bytes put
  back if the write fails), so that every name keeps pointing at it.

Every failure is an exception: :class:`Refused` (the file changed, it is not a regular
file) or the ``OSError`` of the system (a full disk, a read-only filesystem).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import stat
import sys
import tempfile
from typing import Any

_CHANGED = "it changed since it was read (saved by another program?); run kutils migrate again"


class Refused(Exception):
    """The file was not written; the message says why."""


def write_back(path: str, original: bytes, new: bytes) -> None:
    """Replace the content of ``path``, which held ``original`` when read, by ``new``."""
    real = os.path.realpath(path)
    fd = os.open(real, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused("it is not a regular file")
        if _read_all(fd) != original:
            raise Refused(_CHANGED)
        if info.st_nlink > 1 or not _can_give_owner(info):
            _write_in_place(real, info, original, new)
        else:
            _replace(real, fd, info, original, new)
    finally:
        os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    offset = 0
    while True:
        chunk = os.pread(fd, 1 << 20, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


def _can_give_owner(info: os.stat_result) -> bool:
    """Whether a new file can have the owner and group of the file ``info`` describes."""
    if not hasattr(os, "geteuid"):
        return True
    if os.geteuid() == 0:
        return True
    return info.st_uid == os.geteuid() and (
        info.st_gid == os.getegid() or info.st_gid in os.getgroups()
    )


def _replace(real: str, fd: int, info: os.stat_result, original: bytes, new: bytes) -> None:
    folder = os.path.dirname(real)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".kutils-migrate-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(new)
            stream.flush()
            _copy_metadata(fd, stream.fileno(), info)
            os.fsync(stream.fileno())
        _swap(temporary, real, fd, info, original)
    finally:
        if os.path.lexists(temporary):
            os.remove(temporary)


def _copy_metadata(source: int, target: int, info: os.stat_result) -> None:
    """Owner and group, then mode (a chown clears set-id bits), then extended attributes."""
    if hasattr(os, "fchown"):
        os.fchown(target, info.st_uid, info.st_gid)
    os.fchmod(target, stat.S_IMODE(info.st_mode))
    if not hasattr(os, "listxattr"):
        return
    try:
        names = os.listxattr(source)
    except OSError as error:
        if error.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return
        raise
    for name in names:
        os.setxattr(target, name, os.getxattr(source, name))


def _swap(temporary: str, real: str, fd: int, info: os.stat_result, original: bytes) -> None:
    """Put ``temporary`` at ``real`` if ``real`` is still the file read, unchanged."""
    if not _unchanged(real, fd, info, original):
        raise Refused(_CHANGED)
    if _exchange(temporary, real):
        # `temporary` now names what was at `real` the moment before: check it once more.
        if not _unchanged(temporary, fd, info, original):
            _exchange(temporary, real)  # put the other program's file back
            raise Refused(_CHANGED)
        return
    os.replace(temporary, real)
    if _read_all(fd) != original:  # changed in place after the last check: restore it
        _restore(real, fd)
        raise Refused(_CHANGED)


def _unchanged(path: str, fd: int, info: os.stat_result, original: bytes) -> bool:
    try:
        now = os.stat(path)
    except OSError:
        return False
    same_file = (now.st_dev, now.st_ino) == (info.st_dev, info.st_ino)
    return same_file and _read_all(fd) == original


def _restore(real: str, fd: int) -> None:
    content = _read_all(fd)
    info = os.fstat(fd)
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(real), prefix=".kutils-migrate-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
            stream.flush()
            _copy_metadata(fd, stream.fileno(), info)
        os.replace(temporary, real)
    finally:
        if os.path.lexists(temporary):
            os.remove(temporary)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@functools.cache
def _renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None


def _exchange(first: str, second: str) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where unsupported."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    done = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), second)


def _write_in_place(real: str, info: os.stat_result, original: bytes, new: bytes) -> None:
    """Rewrite the file itself (its hard links and owner stay), undoing a failed write."""
    with open(real, "r+b") as stream:
        fd = stream.fileno()
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
            raise Refused(_CHANGED)
        if _read_all(fd) != original:
            raise Refused(_CHANGED)
        try:
            _reserve(fd, len(new))  # a full disk fails here, before any byte changes
            _write_all(fd, new)
            os.ftruncate(fd, len(new))
            os.fsync(fd)
        except OSError:
            _write_all(fd, original)
            os.ftruncate(fd, len(original))
            raise


def _reserve(fd: int, size: int) -> None:
    if not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    offset = 0
    while offset < len(data):
        offset += os.pwrite(fd, view[offset:], offset)

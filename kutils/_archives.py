"""Safe extraction of tar and zip archives for ``get_file``.

Every member is checked before it is written: absolute names, ``..`` components, links
that resolve outside the extraction folder (checked against the files already extracted,
so a chain of links cannot escape either) and device files make the whole archive
refused with ``UnsafeArchiveError``. Members are extracted into a fresh temporary folder
beside the target and moved into place only when the whole archive went through and
nothing in it conflicts with what the target holds (a file where the archive has a
folder, or the reverse; the archive itself or its lock file). Should a move still fail
half-way, the files already moved are taken back out and the ones they replaced put
back, so a refused or broken archive leaves the target exactly as it was. Python's own
``'data'`` tar filter is applied as well where it exists.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Sequence

_FORMATS = ("tar", "zip")


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the target folder, or is a device file.

    Nothing from the archive is extracted. ``member`` names the refused member.
    """

    def __init__(self, msg: str, *, member: str) -> None:
        super().__init__(msg)
        self.member = member


def archive_formats(archive_format: str | Sequence[str] | None) -> list[str]:
    """Normalize ``archive_format`` as Keras 2 did; unknown names raise ValueError."""
    if archive_format is None:
        return []
    if archive_format == "auto":
        return list(_FORMATS)
    formats = [archive_format] if isinstance(archive_format, str) else list(archive_format)
    for name in formats:
        if name not in _FORMATS:
            msg = (
                "archive_format must be 'auto', 'tar', 'zip', None or a list of 'tar' and "
                f"'zip'. Received: archive_format={archive_format!r}"
            )
            raise ValueError(msg)
    return formats


def extract_archive(
    file_path: str,
    path: str,
    archive_format: str | Sequence[str] | None = "auto",
    *,
    protected: Sequence[str] = (),
) -> bool:
    """Extract ``file_path`` into the folder ``path``; False when it is no such archive.

    Existing files in ``path`` are overwritten by members of the same name, as Keras 2
    did; nothing in ``path`` is deleted. A member that would replace ``file_path`` itself
    or one of the ``protected`` paths (the lock file) makes the archive refused.
    """
    keep = (file_path, *protected)
    for name in archive_formats(archive_format):
        if name == "tar" and tarfile.is_tarfile(file_path):
            _extract_safely(file_path, path, _extract_tar, keep)
            return True
        if name == "zip" and zipfile.is_zipfile(file_path):
            _extract_safely(file_path, path, _extract_zip, keep)
            return True
    return False


def remove_extraction_leftovers(file_path: str, path: str) -> bool:
    """Remove the temporary folders a killed extraction of ``file_path`` left in ``path``.

    Call it holding the archive's lock: only the holder extracts that archive, so any
    such folder left when the lock is taken belongs to a process that died. Returns
    whether there were any: then the extraction may have stopped half-way.
    """
    pattern = re.compile(rf"\.kutils-(extract|replaced)-{_tag(file_path)}-[a-z0-9_]{{8}}")
    try:
        names = os.listdir(path)
    except OSError:
        return False
    found = [name for name in names if pattern.fullmatch(name)]
    for name in found:
        shutil.rmtree(os.path.join(path, name), ignore_errors=True)
    return bool(found)


def _tag(file_path: str) -> str:
    # Names the archive in its temporary folders; archives of the same name in other
    # folders extract into the same place under other locks, so the name alone is not
    # enough. Not a security measure.
    return hashlib.sha1(os.path.realpath(file_path).encode(), usedforsecurity=False).hexdigest()[
        :12
    ]


def _extract_safely(
    file_path: str, path: str, extract: Callable[[str, str], None], keep: Sequence[str]
) -> None:
    staging = tempfile.mkdtemp(prefix=f".kutils-extract-{_tag(file_path)}-", dir=path)
    try:
        extract(file_path, staging)
        _check_links(file_path, staging)
        folders, files = _plan_moves(file_path, staging, path, keep)
        _move_all(folders, files, path, _tag(file_path))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract_tar(file_path: str, root: str) -> None:
    real_root = os.path.realpath(root)
    # Python's own checks too where they exist (3.12+, 3.11.4+, 3.10.12+); 3.14 applies
    # them by default, older versions warn when no filter is given.
    filter_kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(file_path) as archive:
        for member in archive:
            _check_tar_member(file_path, member, real_root)
            # Folder permissions are left to the umask: a read-only folder set early
            # would stop its own members from being written.
            archive.extract(member, root, set_attrs=not member.isdir(), **filter_kw)  # type: ignore[arg-type]


def _check_tar_member(file_path: str, member: tarfile.TarInfo, root: str) -> None:
    name = member.name
    _check_name(file_path, name, root)
    if member.ischr() or member.isblk() or member.isfifo():
        _refuse(file_path, name, "is a device file or pipe")
    if member.issym():
        if _is_absolute(member.linkname):
            _refuse(file_path, name, f"is a symbolic link to the absolute path {member.linkname!r}")
        parent = os.path.dirname(os.path.join(root, name))
        if not _inside(root, os.path.join(parent, member.linkname)):
            _refuse(file_path, name, f"is a symbolic link pointing outside ({member.linkname!r})")
    elif member.islnk() and (
        _is_absolute(member.linkname) or not _inside(root, os.path.join(root, member.linkname))
    ):
        _refuse(file_path, name, f"is a hard link pointing outside ({member.linkname!r})")


def _extract_zip(file_path: str, root: str) -> None:
    real_root = os.path.realpath(root)
    with zipfile.ZipFile(file_path) as archive:
        members = archive.infolist()
        for info in members:  # zip members never create links: check them all first
            _check_name(file_path, info.filename, real_root)
            mode = info.external_attr >> 16
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                _refuse(file_path, info.filename, "is a device file or pipe")
        for info in members:
            archive.extract(info, root)


def _check_name(file_path: str, name: str, root: str) -> None:
    if not name:
        _refuse(file_path, name, "has an empty name")
    if _is_absolute(name):
        _refuse(file_path, name, "has an absolute path")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        _refuse(file_path, name, "has a '..' component")
    if not _inside(root, os.path.join(root, name)):
        _refuse(file_path, name, "would be written outside the target folder")


def _is_absolute(name: str) -> bool:
    return (
        name.startswith(("/", "\\"))
        or os.path.isabs(name)
        or (len(name) > 1 and name[1] == ":" and name[0].isalpha())
    )


def _inside(root: str, path: str) -> bool:
    """Whether ``path``, with every link resolved, is ``root`` or below it."""
    real = os.path.realpath(path)
    return real == root or os.path.commonpath([root, real]) == root


def _check_links(file_path: str, staging: str) -> None:
    # A later member can retarget an earlier, checked link; look at the final tree too.
    real_root = os.path.realpath(staging)
    for folder, dirs, files in os.walk(staging):
        for entry in dirs + files:
            full = os.path.join(folder, entry)
            if os.path.islink(full) and not _inside(real_root, full):
                name = os.path.relpath(full, staging)
                _refuse(file_path, name, f"is a link pointing outside ({os.readlink(full)!r})")


def _plan_moves(
    file_path: str, staging: str, target: str, keep: Sequence[str]
) -> tuple[list[str], list[tuple[str, str]]]:
    """The folders to create and the (source, final) files to move, or an error.

    Every conflict is found here, before anything in ``target`` changes.
    """
    kept = {_same(path): path for path in keep}
    folders: list[str] = []
    files: list[tuple[str, str]] = []
    for folder, dirs, names in os.walk(staging):
        relative = os.path.relpath(folder, staging)
        destination = target if relative == "." else os.path.join(target, relative)
        for entry in list(dirs):
            source, final = os.path.join(folder, entry), os.path.join(destination, entry)
            member = os.path.normpath(os.path.join(relative, entry))
            if os.path.islink(source):
                names.append(entry)  # a link to a folder moves as a link
                dirs.remove(entry)
                continue
            _check_kept(file_path, member, final, kept)
            if os.path.islink(final):
                msg = (
                    f"Cannot extract into {final!r}: it is a symbolic link already in the "
                    "cache folder, and following it could write anywhere. Remove it and "
                    "call get_file again. Nothing was extracted."
                )
                raise UnsafeArchiveError(msg, member=member)
            if os.path.lexists(final) and not os.path.isdir(final):
                msg = _place_taken("folder", member, final, "file")
                raise NotADirectoryError(errno.ENOTDIR, msg)
            if not os.path.isdir(final):
                folders.append(final)
        for entry in names:
            source, final = os.path.join(folder, entry), os.path.join(destination, entry)
            member = os.path.normpath(os.path.join(relative, entry))
            _check_kept(file_path, member, final, kept)
            if os.path.isdir(final) and not os.path.islink(final):
                msg = _place_taken("file", member, final, "folder")
                raise IsADirectoryError(errno.EISDIR, msg)
            files.append((source, final))
    return folders, files


def _place_taken(kind: str, member: str, final: str, other: str) -> str:
    """The error message for an archive ``kind`` whose place holds an ``other`` already."""
    return (
        f"Cannot extract the {kind} {member!r} to {final!r}: a {other} of that name is "
        "already there. Remove or rename it and call get_file again. Nothing was extracted."
    )


def _same(path: str) -> str:
    # The folder resolved, the name itself not: replacing a link replaces the link.
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.normcase(os.path.join(os.path.realpath(folder), name))


def _check_kept(file_path: str, member: str, final: str, kept: dict[str, str]) -> None:
    path = kept.get(_same(final))
    if path is None:
        return
    what = "the archive itself" if path == file_path else f"{path!r}, which get_file uses"
    _refuse(file_path, member, f"would replace {what}")


def _move_all(folders: list[str], files: list[tuple[str, str]], target: str, tag: str) -> None:
    """Create ``folders`` and move ``files`` into place; on any failure, undo all of it."""
    undo: list[tuple[str, str, str]] = []
    backup: str | None = None
    try:
        for final in folders:
            os.mkdir(final)
            undo.append(("rmdir", final, ""))
        for source, final in files:
            if os.path.lexists(final):
                if backup is None:
                    backup = tempfile.mkdtemp(prefix=f".kutils-replaced-{tag}-", dir=target)
                saved = os.path.join(backup, str(len(undo)))
                os.replace(final, saved)
                undo.append(("restore", saved, final))
            os.replace(source, final)
            undo.append(("remove", final, ""))
    except BaseException:
        for action, path, final in reversed(undo):
            # Best effort: the first error is the one to report.
            with contextlib.suppress(OSError):
                if action == "rmdir":
                    os.rmdir(path)
                elif action == "restore":
                    os.replace(path, final)
                elif os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
        raise
    finally:
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)


def _refuse(file_path: str, name: str, reason: str) -> None:
    msg = (
        f"Refusing to extract {file_path!r}: the member {name!r} {reason}. Nothing was "
        "extracted. The archive stays in the cache; if you trust it, inspect and extract "
        "it yourself."
    )
    raise UnsafeArchiveError(msg, member=name)

"""``get_file``: the Keras 2 downloader, atomic, verified, resumable, safe and concurrent.

The cache rules, arguments and return values are those of Keras 2.3.1
``keras.utils.get_file``. Underneath, the download goes through requests (http, https)
or a plain file copy (``file://``) into a temporary file beside the target, is hashed
while it streams, and only a complete, verified file is moved into place. A lock file
beside the target makes concurrent callers (the workers of one job) wait for the one
that downloads.

This module holds the public names, the checks of their arguments and the order of the
steps of one download (fetch, sync, verify, rename). The steps themselves are elsewhere:
``kutils/_download_cache.py`` (the cache folder, whether a file is cached, hashing a
stored file), ``kutils/_part_files.py`` (the temporary ``.part`` file: making it,
syncing it, removing those of killed downloads), ``kutils/_transfer.py`` (fetching the
URL), ``kutils/_writeback.py`` (the disk writes while it arrives) and
``kutils/_archives.py`` (extraction).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Mapping, Sequence

from kutils._archives import UnsafeArchiveError, extract_archive, remove_extraction_leftovers
from kutils._download_cache import cache_base, hash_file, is_cached, make_folder
from kutils._hashing_writer import CHUNK_SIZE, HashingWriter, WriteError
from kutils._part_files import (
    commit_to_disk,
    open_temporary,
    partials,
    remove_partials,
    remove_partials_if_idle,
    storage_error,
)
from kutils._transfer import (
    DownloadInterruptedError,
    FetchOptions,
    HTTPStatusError,
    URLFetchError,
    fetch,
)
from kutils._writeback import Writeback, sync_folder

__all__ = [
    "DownloadInterruptedError",
    "HTTPStatusError",
    "HashMismatchError",
    "URLFetchError",
    "UnsafeArchiveError",
    "get_file",
    "validate_file",
]

# hash_algorithm='auto': the algorithm is told by the length of the hex digest. Keras 2
# knew only 64 (sha256) and took anything else for md5.
_AUTO_BY_LENGTH = {64: "sha256", 40: "sha1", 128: "sha512"}
_HEX = re.compile(r"[0-9a-fA-F]+")


class HashMismatchError(ValueError):
    """A freshly downloaded file does not have the expected hash; it was deleted.

    ``url``, ``expected`` and ``actual`` hold the origin and both hex digests.
    """

    def __init__(self, msg: str, *, url: str, expected: str, actual: str) -> None:
        super().__init__(msg)
        self.url = url
        self.expected = expected
        self.actual = actual


def get_file(
    fname: str | os.PathLike[str],
    origin: str,
    untar: bool = False,
    md5_hash: str | None = None,
    file_hash: str | None = None,
    cache_subdir: str | os.PathLike[str] = "datasets",
    hash_algorithm: str = "auto",
    extract: bool = False,
    archive_format: str | Sequence[str] | None = "auto",
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    force_download: bool = False,
    timeout: float | tuple[float, float] = (10.0, 60.0),
    retries: int = 5,
    backoff_factor: float = 0.5,
    backoff_max: float = 30.0,
    progress: bool | None = None,
    lock_timeout: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    """Download a file from a URL into the Keras cache, unless it is already there.

    Keras 2.3.1 semantics: the file goes to ``cache_dir/cache_subdir/fname``, where
    ``cache_dir`` defaults to ``$KERAS_HOME`` (read at call time), else ``~/.keras``;
    when that folder cannot be written, ``/tmp/.keras`` (the system temporary folder) is
    used. A folder that does not exist yet is created. An absolute ``cache_subdir`` or
    ``fname`` replaces the folder. A cached file is used as it is, unless ``file_hash``
    is given and does not match: then it is downloaded again.

    The download is written to a temporary file in the destination folder and hashed as
    it streams; every write is checked, and only a complete, synced file whose hash
    matches is moved into place (atomically, with ``os.replace``), so the target path
    never holds a partial file. Partial files of downloads that were killed are removed
    by the next call. A ``206`` answer is used only if its ``Content-Range`` is exactly
    the part asked for; otherwise the file is fetched whole again. Connection
    errors, timeouts, 429 and 5xx answers are retried with exponential backoff (honouring
    ``Retry-After``), and a dropped connection resumes with an HTTP Range request when
    the server supports it. Processes fetching the same file at once wait on a lock file
    (``<file>.lock``) beside it: one downloads, the others then use its file.

    Args:
        fname: name of the file. An absolute path is used as it is. With
            ``untar=True``, the name of the extracted content (see Returns).
        origin: the URL: ``http://``, ``https://`` or ``file://``.
        untar: deprecated in Keras 2 in favour of ``extract``: store the download as
            ``fname + '.tar.gz'`` and extract it (as tar) into the cache folder, unless
            ``cache_subdir/fname`` already exists.
        md5_hash: deprecated alias of ``file_hash`` with ``hash_algorithm='md5'``.
        file_hash: the expected hex digest of the file. Compared case-insensitively.
        cache_subdir: folder below the cache folder; an absolute path replaces both.
        hash_algorithm: ``'auto'``, ``'md5'``, ``'sha256'`` or another name hashlib
            knows (``'sha1'``, ``'sha512'``). ``'auto'`` picks sha256 for a 64-character
            hash (sha1 for 40, sha512 for 128) and md5 otherwise.
        extract: extract the archive into the cache folder, on every call.
        archive_format: ``'auto'`` (tar, then zip), ``'tar'`` (tar, tar.gz, tar.bz2,
            tar.xz), ``'zip'``, a list of these, or None (no extraction).
        cache_dir: the cache folder; default ``$KERAS_HOME`` or ``~/.keras``.
        force_download: download even when a valid cached file exists (Keras 3 option).
        timeout: seconds to wait for the connection and then for each read, as
            ``(connect, read)`` or one number for both.
        retries: how many times a failed attempt (connection error, timeout, truncated
            body, 429, 5xx) is tried again; the count starts over whenever an attempt
            brought new bytes.
        backoff_factor: the first retry waits this many seconds, each next one twice as
            long.
        backoff_max: the longest wait between attempts, ``Retry-After`` included.
        progress: a progress bar on stderr for downloads that take over a second:
            None (default) draws it only when stderr is a terminal; False never; True
            always.
        lock_timeout: the longest wait, in seconds, for another process fetching the
            same file; None waits for as long as it takes.
        headers: extra HTTP request headers (an ``Authorization`` token, say).

    Returns:
        The path of the downloaded file, as Keras 2.3.1 returned it. With ``untar=True``
        that is ``cache_subdir/fname`` (the archive is ``fname + '.tar.gz'``); with
        ``extract=True``, the path of the archive itself, extracted beside it.

    Raises:
        HTTPStatusError: the server answered 4xx, or still 429/5xx after the retries.
        DownloadInterruptedError: connection errors, timeouts or truncated bodies
            outlasted the retries.
        URLFetchError: any other failure to fetch (a missing ``file://`` file, too many
            redirects). The three above subclass it, and it subclasses ``Exception``, the
            type Keras 2 raised.
        HashMismatchError: (a ``ValueError``) the downloaded file does not match
            ``file_hash``; it is not kept.
        OSError: the download could not be written, synced or closed (a full disk, a
            quota, the file-size limit: ``ENOSPC``, ``EDQUOT``, ``EFBIG``). Nothing is
            stored, and a copy already at the target stays as it was.
        UnsafeArchiveError: (a ``ValueError``) an archive member has an absolute path or
            ``..``, a link pointing outside the folder, is a device file, or would
            replace the archive or its lock file. The whole archive is refused and
            nothing is extracted.
        IsADirectoryError, NotADirectoryError: an archive member is a file where the
            cache folder has a folder, or the reverse; nothing is extracted.
        ValueError: bad arguments (an unknown URL scheme, a malformed hash, an ``fname``
            that resolves to the cache folder, ...).
        filelock.Timeout: ``lock_timeout`` passed while another process held the lock.

    Example:
        >>> path = get_file(
        ...     "mnist.npz",
        ...     "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
        ...     file_hash="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
        ... )  # doctest: +SKIP

    Differences:
        From Keras 2.3.1: a fresh download is verified against ``file_hash``; a failed
        download or extraction never leaves a partial file and never deletes the cache
        folder; archive members escaping the folder are refused; errors are specific
        subclasses of ``Exception``; the progress bar goes to stderr; a cache folder
        that does not exist yet is created instead of silently replaced by
        ``/tmp/.keras``; ``hash_algorithm`` names such as ``'SHA256'`` or ``'sha1'``
        mean that algorithm instead of md5. From Keras 3: ``extract=True`` and
        ``untar=True`` keep the Keras 2 return values and extraction folder (Keras 3.6+
        returns a separate ``*_extracted`` folder), and ``fname`` may be a path.
    """
    fname = _check_fname(fname)
    if not isinstance(origin, str) or not origin:
        msg = f"origin must be the URL to download, a non-empty string. Received: origin={origin!r}"
        raise ValueError(msg)
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    algorithm = _resolve_algorithm(file_hash, hash_algorithm)
    formats = "tar" if untar else archive_format
    options = _fetch_options(timeout, retries, backoff_factor, backoff_max, progress, headers)

    datadir = os.path.join(cache_base(cache_dir), os.fspath(cache_subdir))
    _check_inside(fname, os.path.join(datadir, fname), datadir)
    make_folder(datadir)
    if untar:
        untar_fpath = os.path.join(datadir, fname)
        fpath = untar_fpath + ".tar.gz"
    else:
        fpath = os.path.join(datadir, fname)
    make_folder(os.path.dirname(fpath) or ".")

    # Keras 2 printed the algorithm as given ('auto' included) in its re-download message.
    need_download = force_download or not is_cached(
        fpath, file_hash, algorithm, announce=hash_algorithm
    )
    if need_download or untar or extract:
        from filelock import FileLock

        with FileLock(fpath + ".lock", timeout=-1 if lock_timeout is None else lock_timeout):
            # Whoever wrote a partial file of this target held this lock; holding it now,
            # any partial file left is from a process that died mid-download.
            remove_partials(fpath)
            # Likewise for extractions; one killed half-way must be done again.
            interrupted = remove_extraction_leftovers(fpath, datadir)
            # Another process may have fetched the file while this one waited for the lock.
            if need_download and (force_download or not is_cached(fpath, file_hash, algorithm)):
                _download(origin, fpath, file_hash, algorithm, options)
            protected = (fpath, fpath + ".lock")
            if untar:
                if interrupted or not os.path.exists(untar_fpath):
                    extract_archive(fpath, datadir, "tar", protected=protected)
                return untar_fpath
            if extract:
                extract_archive(fpath, datadir, formats, protected=protected)
    elif partials(fpath):
        remove_partials_if_idle(fpath)
    return fpath


def validate_file(
    fpath: str | os.PathLike[str],
    file_hash: str,
    algorithm: str = "auto",
    chunk_size: int = CHUNK_SIZE,
) -> bool:
    """Whether the file at ``fpath`` has the hex digest ``file_hash``.

    As ``keras.utils.data_utils.validate_file`` of Keras 2.3.1, except that the
    comparison ignores case and ``algorithm`` names such as ``'SHA256'`` or ``'sha1'``
    mean that algorithm (Keras 2 took every name but ``'sha256'`` for md5).

    Example:
        >>> validate_file("mnist.npz", "731c5ac6...")  # doctest: +SKIP
        True
    """
    name = _resolve_algorithm(file_hash, algorithm)
    assert name is not None
    return hash_file(os.fspath(fpath), name, chunk_size) == file_hash.lower()


def _check_fname(fname: object) -> str:
    if isinstance(fname, os.PathLike):
        fname = os.fspath(fname)
    if not isinstance(fname, str) or not fname or fname.endswith(("/", os.sep)):
        msg = (
            "fname must name the file to store the download as, such as 'mnist.npz'. "
            f"Received: fname={fname!r}"
        )
        raise ValueError(msg)
    return os.path.expanduser(fname)


def _check_inside(fname: str, target: str, datadir: str) -> None:
    """Refuse an fname that names the cache folder itself or a folder above it."""
    real_target, real_dir = os.path.realpath(target), os.path.realpath(datadir)
    try:
        above = os.path.commonpath([real_target, real_dir]) == real_target
    except ValueError:  # on different drives
        above = False
    if above:
        msg = (
            "fname must name a file to store the download as, such as 'mnist.npz', but it "
            f"resolves to the cache folder {real_dir!r} or a folder above it. Received: "
            f"fname={fname!r}"
        )
        raise ValueError(msg)


def _resolve_algorithm(file_hash: str | None, hash_algorithm: str) -> str | None:
    if file_hash is None:
        return None
    if not isinstance(file_hash, str) or not _HEX.fullmatch(file_hash):
        msg = (
            "file_hash must be a hexadecimal digest such as the output of `sha256sum`. "
            f"Received: file_hash={file_hash!r}"
        )
        raise ValueError(msg)
    if not isinstance(hash_algorithm, str):
        msg = f"hash_algorithm must be a string such as 'sha256'. Received: hash_algorithm={hash_algorithm!r}"
        raise ValueError(msg)
    name = hash_algorithm.lower()
    if name == "auto":
        name = _AUTO_BY_LENGTH.get(len(file_hash), "md5")
    try:
        digest_size = hashlib.new(name).digest_size
    except ValueError:
        msg = (
            "hash_algorithm must be 'auto', 'md5', 'sha256' or another algorithm hashlib "
            f"knows. Received: hash_algorithm={hash_algorithm!r}"
        )
        raise ValueError(msg) from None
    if len(file_hash) != 2 * digest_size:
        msg = (
            f"file_hash has {len(file_hash)} hex digits, but a {name} digest has "
            f"{2 * digest_size}. Pass the right hash_algorithm or hash. Received: "
            f"file_hash={file_hash!r}, hash_algorithm={hash_algorithm!r}"
        )
        raise ValueError(msg)
    return name


def _download(
    origin: str, fpath: str, file_hash: str | None, algorithm: str | None, options: FetchOptions
) -> None:
    print("Downloading data from", origin)
    tmp_path, tmp = open_temporary(fpath)
    # The disk writes start as the file grows, so the fsync before the rename is short.
    syncer = Writeback(tmp.fileno())
    try:
        writer = HashingWriter(tmp, algorithm, on_write=syncer.wrote, on_total=syncer.expect)
        try:
            fetch(origin, writer, options)
            # The last writes and the fsync run on the writeback thread while the
            # hashing of the last buffers ends here.
            syncer.finish(writer.size)
            actual = writer.hexdigest()
        except WriteError as exc:
            raise storage_error(exc, "writing to", origin, tmp_path, fpath) from exc
        finally:
            writer.close()
            syncer.stop()
        if syncer.error is not None:
            raise storage_error(syncer.error, "saving", origin, tmp_path, fpath)
        commit_to_disk(tmp, writer.size, syncer.synced, origin, tmp_path, fpath)
        if file_hash is not None and actual != file_hash.lower():
            msg = (
                f"The file downloaded from {origin} does not have the expected {algorithm} "
                f"hash: expected {file_hash.lower()} but got {actual}. The download was "
                "deleted. Check file_hash, or whether the origin changed."
            )
            raise HashMismatchError(
                msg, url=origin, expected=file_hash.lower(), actual=actual or ""
            )
        os.replace(tmp_path, fpath)
        sync_folder(os.path.dirname(fpath))
    finally:
        syncer.stop()
        if not tmp.closed:
            with contextlib.suppress(OSError):  # the error that matters is being raised
                tmp.close()
        if os.path.lexists(tmp_path):
            os.remove(tmp_path)


def _fetch_options(
    timeout: float | tuple[float, float],
    retries: int,
    backoff_factor: float,
    backoff_max: float,
    progress: bool | None,
    headers: Mapping[str, str] | None,
) -> FetchOptions:
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        pair = (float(timeout), float(timeout))
    elif isinstance(timeout, tuple) and len(timeout) == 2:
        pair = (float(timeout[0]), float(timeout[1]))
    else:
        msg = f"timeout must be seconds, or a (connect, read) pair. Received: timeout={timeout!r}"
        raise ValueError(msg)
    if min(pair) <= 0:
        msg = f"timeout must be positive. Received: timeout={timeout!r}"
        raise ValueError(msg)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        msg = f"retries must be a non-negative integer. Received: retries={retries!r}"
        raise ValueError(msg)
    if backoff_factor < 0 or backoff_max < 0:
        msg = (
            "backoff_factor and backoff_max must be non-negative seconds. Received: "
            f"backoff_factor={backoff_factor!r}, backoff_max={backoff_max!r}"
        )
        raise ValueError(msg)
    return FetchOptions(
        timeout=pair,
        retries=retries,
        backoff_factor=float(backoff_factor),
        backoff_max=float(backoff_max),
        progress=progress,
        headers=dict(headers or {}),
    )

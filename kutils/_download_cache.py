"""``get_file``'s cache: where it is, and whether a file in it is the one wanted.

The cache folder is ``$KERAS_HOME`` (read at call time), else ``~/.keras``, and
``/tmp/.keras`` (the system temporary folder) when that one cannot be written, as in
Keras 2.3.1. A file there counts as cached when it exists and, if a hash was given,
has that hash; a stored file is hashed through a memory map. ``kutils/downloads.py``
decides what to do with the answer.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

from kutils._hashing_writer import CHUNK_SIZE


def cache_base(cache_dir: str | os.PathLike[str] | None) -> str:
    """The cache folder: ``cache_dir``, ``$KERAS_HOME`` or ``~/.keras``, else the fallback."""
    if cache_dir is None:
        cache_dir = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    base = os.path.expanduser(os.fspath(cache_dir))
    try:
        make_folder(base)
    except OSError:
        return _fallback_base()
    if not os.access(base, os.W_OK):
        return _fallback_base()
    return base


def make_folder(path: str) -> None:
    """Create ``path`` and its parents unless it is already a folder."""
    # On a cache hit the folders exist: one stat instead of makedirs' failing mkdir + stat.
    if not os.path.isdir(path):
        os.makedirs(path, exist_ok=True)


def _fallback_base() -> str:
    # Keras 2 hard-coded /tmp/.keras; gettempdir() is /tmp on Linux unless TMPDIR says
    # otherwise, and exists on every system.
    return os.path.join(tempfile.gettempdir(), ".keras")


def is_cached(
    fpath: str, file_hash: str | None, algorithm: str | None, *, announce: str | None = None
) -> bool:
    """Whether ``fpath`` exists and matches the hash; ``announce`` (the algorithm's name
    as the caller gave it) prints Keras 2's re-download message when it does not."""
    if not os.path.exists(fpath):
        return False
    if file_hash is None or algorithm is None:
        return True
    if hash_file(fpath, algorithm) == file_hash.lower():
        return True
    if announce is not None:  # Keras 2's message, on stdout
        print(
            "A local file was found, but it seems to be incomplete or outdated because the "
            f"{announce} file hash does not match the original value of {file_hash} so we "
            "will re-download the data."
        )
    return False


def hash_file(fpath: str, algorithm: str, chunk_size: int = CHUNK_SIZE) -> str:
    """The hex digest of the file at ``fpath`` by ``algorithm`` (a hashlib name)."""
    hasher = hashlib.new(algorithm)
    with open(fpath, "rb", buffering=0) as source:
        try:
            # Hashing the page cache through a memory map skips the copy that read() makes.
            import mmap

            mapped = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ)
        except (ImportError, OSError, ValueError):  # empty files, pipes, 32-bit limits
            for chunk in iter(lambda: source.read(chunk_size), b""):
                hasher.update(chunk)
        else:
            with mapped, memoryview(mapped) as view:
                step = max(chunk_size, 1 << 22)
                for start in range(0, len(view), step):
                    hasher.update(view[start : start + step])
    return hasher.hexdigest()

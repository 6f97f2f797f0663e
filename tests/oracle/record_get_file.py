"""Oracle cases for ``get_file`` against an HTTP server on 127.0.0.1.

Each case gets a fresh cache folder; paths in the results are relative to it and the
server's address is written ``URL``, so both sides compare. Downloads run under a frozen
clock (Keras 2.3.1 drew a Progbar on stdout while downloading).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import http.server
import io
import os
import shutil
import tarfile
import tempfile
import threading
import zipfile

import _oracle
import _shim

AREA = "get_file"
PAYLOAD = b"kutils oracle payload\n" * 300

_SERVER = {}


def _files():
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w:gz") as tar:
        for name, data in [("folder/a.txt", b"a" * 10), ("b.txt", b"bb")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    zip_buffer = io.BytesIO()
    with zipfile.ZipFile(zip_buffer, "w") as archive:
        archive.writestr("z/one.txt", "1")
        archive.writestr("two.txt", "22")
    return {
        "payload.bin": PAYLOAD,
        "small.txt": b"tiny",
        "data.tar.gz": tar_buffer.getvalue(),
        "data.zip": zip_buffer.getvalue(),
        "empty.bin": b"",
    }


def base_url():
    if "url" not in _SERVER:
        root = tempfile.mkdtemp(prefix="kutils-oracle-www-")
        atexit.register(shutil.rmtree, root, True)
        for name, data in _files().items():
            with open(os.path.join(root, name), "wb") as file:
                file.write(data)
        handler = functools.partial(_QuietHandler, directory=root)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        atexit.register(server.shutdown)
        _SERVER["url"] = f"http://127.0.0.1:{server.server_address[1]}/"
    return _SERVER["url"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _md5(data):
    return hashlib.md5(data).hexdigest()


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _tree(folder):
    found = []
    for parent, _, names in os.walk(folder):
        for name in names:
            if not name.endswith(".lock"):
                found.append(os.path.relpath(os.path.join(parent, name), folder))
    return sorted(found)


def fetch(name, calls, prepare=None):
    """Run ``get_file`` calls (kwargs dicts, ``origin`` relative to the server) in a
    fresh cache folder; returns each call's path (or error), printed text and the
    files left in the cache."""
    url = base_url()
    cache = tempfile.mkdtemp(prefix="kutils-oracle-cache-")
    results = []
    try:
        if prepare is not None:
            prepare(cache)
        for call in calls:
            kwargs = dict(call)
            kwargs["origin"] = url + kwargs["origin"]
            kwargs.setdefault("cache_dir", cache)
            out = io.StringIO()
            with _oracle.frozen_clock(), contextlib.redirect_stdout(out):
                try:
                    path = _shim.utils.get_file(**kwargs)
                    result = {"path": os.path.relpath(path, cache)}
                except Exception as exc:
                    result = {"error": _oracle.builtin_bases(exc)[0]}
            text = out.getvalue().replace(url, "URL/").replace(cache, "CACHE")
            result["printed"] = _messages(text)
            result["progress_on_stdout"] = _has_progress(text)
            results.append(result)
        return {"calls": results, "files": _tree(cache)}
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _is_progress(line):
    return ("/" in line and "[" in line and "]" in line) or "/Unknown" in line


def _messages(text):
    # The progress bar's lines depend on the block sizes each side reads in; what users
    # read and parse are the messages. Whether a bar was drawn is recorded on its own.
    lines = [line.strip() for line in text.replace("\b", "").replace("\r", "\n").splitlines()]
    return [line for line in lines if line and not _is_progress(line)]


def _has_progress(text):
    return any(_is_progress(line) for line in text.splitlines())


def _stale(name, data):
    def prepare(cache):
        os.makedirs(os.path.join(cache, "datasets"))
        with open(os.path.join(cache, "datasets", name), "wb") as file:
            file.write(data)

    return prepare


def cases():
    P = "payload.bin"
    good_md5, good_sha = _md5(PAYLOAD), _sha256(PAYLOAD)
    table = {
        "plain": [{"fname": P, "origin": P}],
        "cached-second-call": [{"fname": P, "origin": P}, {"fname": P, "origin": P}],
        "md5-hash": [{"fname": P, "origin": P, "md5_hash": good_md5}],
        "file-hash-md5-auto": [{"fname": P, "origin": P, "file_hash": good_md5}],
        "file-hash-sha256-auto": [{"fname": P, "origin": P, "file_hash": good_sha}],
        "file-hash-sha256-named": [{"fname": P, "origin": P, "file_hash": good_sha, "hash_algorithm": "sha256"}],
        "wrong-hash": [{"fname": P, "origin": P, "file_hash": "0" * 64}],
        "wrong-md5": [{"fname": P, "origin": P, "md5_hash": "0" * 32}],
        "cache-subdir": [{"fname": P, "origin": P, "cache_subdir": "mine"}],
        "nested-subdir": [{"fname": P, "origin": P, "cache_subdir": "a/b"}],
        "other-name": [{"fname": "renamed.bin", "origin": P}],
        "404": [{"fname": "missing.bin", "origin": "missing.bin"}],
        "empty-file": [{"fname": "empty.bin", "origin": "empty.bin"}],
        "untar": [{"fname": "data", "origin": "data.tar.gz", "untar": True}],
        "untar-twice": [
            {"fname": "data", "origin": "data.tar.gz", "untar": True},
            {"fname": "data", "origin": "data.tar.gz", "untar": True},
        ],
        "extract-tar": [{"fname": "data.tar.gz", "origin": "data.tar.gz", "extract": True}],
        "extract-zip": [{"fname": "data.zip", "origin": "data.zip", "extract": True}],
        "extract-zip-as-tar": [{"fname": "data.zip", "origin": "data.zip", "extract": True, "archive_format": "tar"}],
        "extract-none-format": [{"fname": "data.zip", "origin": "data.zip", "extract": True, "archive_format": None}],
        "extract-not-archive": [{"fname": P, "origin": P, "extract": True}],
    }  # fmt: skip
    for name, calls in table.items():
        yield "get_file/" + name, lambda n=name, c=calls: fetch(n, c)
    stale = {
        "stale-auto-sha256": ({"file_hash": good_sha}, b"old"),
        "stale-auto-md5": ({"file_hash": good_md5}, b"old"),
        "stale-md5-arg": ({"md5_hash": good_md5}, b"old"),
        "stale-named-sha256": ({"file_hash": good_sha, "hash_algorithm": "sha256"}, b"old"),
        "stale-named-md5": ({"file_hash": good_md5, "hash_algorithm": "md5"}, b"old"),
        "fresh-auto": ({"file_hash": good_sha}, PAYLOAD),
        "stale-no-hash": ({}, b"old"),
    }
    for name, (extra, data) in stale.items():
        call = dict(fname=P, origin=P, **extra)
        yield "get_file/" + name, lambda c=call, d=data: fetch("stale", [c], _stale(P, d))
    data_utils = _shim.legacy("data_utils")
    yield "get_file/same-object", lambda: data_utils.get_file is _shim.utils.get_file
    yield "validate_file/sha256", lambda: _validate(good_sha, "auto")
    yield "validate_file/md5", lambda: _validate(good_md5, "auto")
    yield "validate_file/wrong", lambda: _validate("0" * 64, "auto")
    yield "validate_file/md5-named", lambda: _validate(good_md5, "md5")


def _validate(file_hash, algorithm):
    folder = tempfile.mkdtemp(prefix="kutils-oracle-validate-")
    try:
        path = os.path.join(folder, "f")
        with open(path, "wb") as file:
            file.write(PAYLOAD)
        return _shim.legacy("data_utils").validate_file(path, file_hash, algorithm=algorithm)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_oracle.main(__name__, AREA, cases)

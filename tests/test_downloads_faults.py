"""get_file under the faults of real machines: full disks and size limits, 206 answers
that do not match the Range asked, downloads killed half-way, archives that conflict with
the cache folder, and fnames that name the cache folder itself.

Each fault is the real one: a subprocess under RLIMIT_FSIZE (or a small tmpfs), a loopback
server that sends the wrong part, a subprocess killed with SIGKILL while it downloads or
extracts.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
from loopback_http import Action, Handler, LoopbackServer
from test_downloads import (
    BODY,
    FAST,
    ROOT,
    SHA256,
    _member,
    _tar,
    drop_after,
    leftovers,
    serve,
)

from kutils import get_file
from kutils.downloads import DownloadInterruptedError, UnsafeArchiveError


def partials(folder: Path) -> list[Path]:
    """The hidden partial files get_file writes a download into."""
    return sorted(
        p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".part")
    )


# ---------------------------------------------------------------------------------------
# Short writes: the file-size limit (EFBIG) in a subprocess, a full tmpfs (ENOSPC)
# ---------------------------------------------------------------------------------------

_LIMITED = """
import json, resource, signal, sys
sys.path.insert(0, {root!r})
import requests  # imported before the limit, like everything else this process needs
from kutils import get_file
# Without SIGXFSZ ignored the kernel kills the process; ignored, write() returns short
# and then fails with EFBIG, as on a full disk or a quota with ENOSPC or EDQUOT.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
try:
    path = get_file("data.bin", {url!r}, file_hash={sha!r}, cache_dir={cache!r},
                    force_download={force!r}, retries=0, progress=False)
except OSError as exc:
    print(json.dumps({{"type": type(exc).__name__, "errno": exc.errno, "message": str(exc)}}))
else:
    print(json.dumps({{"path": path}}))
"""


def _run_limited(url: str, cache: Path, limit: int, *, force: bool = False) -> dict:
    script = _LIMITED.format(
        root=str(ROOT), url=url, sha=SHA256, cache=str(cache), limit=limit, force=force
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _origin(kind: str, server: LoopbackServer, tmp_path: Path) -> str:
    if kind == "http":
        server.routes["/data.bin"] = [serve()]
        return server.url("/data.bin")
    source = tmp_path / "mirror" / "data.bin"
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(BODY)
    return source.as_uri()


# The limit falls in the middle of the body, or in its last chunk: there the write is
# short and no later write reports the error, which is how a truncated file passed.
LIMITS = {"middle": len(BODY) // 2, "last-chunk": len(BODY) - 50}


@pytest.mark.parametrize("limit", sorted(LIMITS))
@pytest.mark.parametrize("kind", ["http", "file"])
def test_file_size_limit_raises_oserror_and_stores_nothing(server, tmp_path, kind, limit):
    url = _origin(kind, server, tmp_path)
    cache = tmp_path / "cache"
    result = _run_limited(url, cache, LIMITS[limit])
    target = cache / "datasets" / "data.bin"
    assert result.get("errno") == errno.EFBIG, result
    assert result["type"] == "OSError"
    assert "EFBIG" in result["message"] and "File too large" in result["message"]
    assert str(target) in result["message"] and url in result["message"]
    assert "Nothing was stored there" in result["message"]
    assert not target.exists()
    assert leftovers(cache / "datasets") == set()  # the temporary file was removed


@pytest.mark.parametrize("kind", ["http", "file"])
def test_file_size_limit_leaves_the_good_cached_copy_intact(server, tmp_path, kind):
    url = _origin(kind, server, tmp_path)
    cache = tmp_path / "cache"
    target = cache / "datasets" / "data.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(BODY)
    result = _run_limited(url, cache, LIMITS["last-chunk"], force=True)
    assert result.get("errno") == errno.EFBIG, result
    assert "The file already there was left as it was" in result["message"]
    assert target.read_bytes() == BODY
    assert leftovers(cache / "datasets") == {"data.bin"}


@pytest.fixture
def small_tmpfs(tmp_path):
    """Mount a tmpfs of the size asked (root only) and unmount it afterwards."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"tmpfs-{len(mounted)}"
        point.mkdir()
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.mark.parametrize("good_copy", [False, True], ids=["empty", "good-copy"])
@pytest.mark.parametrize("kind", ["http", "file"])
def test_full_disk_raises_oserror_and_keeps_what_was_there(
    server, tmp_path, small_tmpfs, kind, good_copy
):
    url = _origin(kind, server, tmp_path)
    # 2 MiB cannot hold the 3 MiB body; with a good copy in 4 MiB, 1 MiB is left free.
    cache = small_tmpfs("4m" if good_copy else "2m")
    target = cache / "datasets" / "data.bin"
    target.parent.mkdir(parents=True)
    if good_copy:
        target.write_bytes(BODY)
    with pytest.raises(OSError) as info:
        get_file(
            "data.bin",
            url,
            file_hash=SHA256,
            cache_dir=cache,
            force_download=good_copy,
            retries=0,
            progress=False,
        )
    assert info.value.errno == errno.ENOSPC
    assert "ENOSPC" in str(info.value) and str(target) in str(info.value)
    if good_copy:
        assert target.read_bytes() == BODY
        assert leftovers(cache / "datasets") == {"data.bin"}
    else:
        assert not target.exists()
        assert leftovers(cache / "datasets") == set()


# ---------------------------------------------------------------------------------------
# 206 answers that do not match the Range request
# ---------------------------------------------------------------------------------------

OTHER = BODY + os.urandom(1000)  # another version of the file, 1000 bytes longer


def bad_206(kind: str) -> Action:
    """Answer a Range request with a 206 that is not the rest of BODY from the offset."""

    def action(h: Handler) -> None:
        asked = int(h.headers["Range"][6:].split("-")[0])
        size = len(BODY)
        start, end, total, body = asked, size - 1, str(size), BODY
        if kind == "starts-before":
            start = asked - 1000
        elif kind == "starts-after":
            start = asked + 1000
        elif kind == "larger-total":
            body, end, total = OTHER, len(OTHER) - 1, str(len(OTHER))
        elif kind == "smaller-total":
            body, end, total = BODY[:-1000], size - 1001, str(size - 1000)
        elif kind == "ends-early":
            end = size - 1001
        elif kind == "unknown-total":
            total = "*"
        part = body[start : end + 1]
        h.send_response(206)
        unit = "items" if kind == "other-unit" else "bytes"
        if kind != "no-content-range":
            h.send_header("Content-Range", f"{unit} {start}-{end}/{total}")
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("ETag", '"v1"')
        h.send_header("Content-Length", str(len(part)))
        h.end_headers()
        h.wfile.write(part)

    return action


BAD_206 = [
    "starts-before",
    "starts-after",
    "larger-total",
    "smaller-total",
    "ends-early",
    "unknown-total",
    "other-unit",
    "no-content-range",
]


@pytest.mark.parametrize("kind", BAD_206)
def test_mismatched_206_falls_back_to_a_full_download(server, tmp_path, kind):
    half = len(BODY) // 2
    server.routes["/data.bin"] = [drop_after(half), bad_206(kind), serve()]
    # No file_hash: the content itself must be right, not merely rejected by a hash.
    path = get_file("data.bin", server.url("/data.bin"), cache_dir=tmp_path, **FAST)
    assert Path(path).read_bytes() == BODY
    ranges = [h.get("Range") for h in server.requests_for("/data.bin")]
    assert ranges == [None, f"bytes={half}-", None]  # the fallback asks for the whole file
    assert leftovers(tmp_path / "datasets") == {"data.bin"}


def chunked_drop_after(n: int) -> Action:
    """A 200 in chunked encoding (no size announced) that breaks off after ``n`` bytes."""

    def action(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("ETag", '"v1"')
        h.end_headers()
        h.wfile.write(b"%x\r\n" % len(BODY) + BODY[:n])  # one chunk, cut short
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)

    return action


def test_part_of_a_file_whose_size_was_never_announced_is_not_trusted(server, tmp_path):
    half = len(BODY) // 2
    server.routes["/data.bin"] = [chunked_drop_after(half), serve()]
    path = get_file("data.bin", server.url("/data.bin"), cache_dir=tmp_path, **FAST)
    assert Path(path).read_bytes() == BODY
    ranges = [h.get("Range") for h in server.requests_for("/data.bin")]
    # A resume was asked for, and its answer (a 206 that is right in itself) refused.
    assert len(ranges) == 3 and ranges[0] is None and ranges[2] is None
    assert ranges[1] is not None and ranges[1].startswith("bytes=")


def test_matching_206_is_still_used_to_resume(server, tmp_path):
    half = len(BODY) // 2
    server.routes["/data.bin"] = [drop_after(half), serve()]
    get_file("data.bin", server.url("/data.bin"), file_hash=SHA256, cache_dir=tmp_path, **FAST)
    ranges = [h.get("Range") for h in server.requests_for("/data.bin")]
    assert ranges == [None, f"bytes={half}-"]


def partial_content(first: int, last: int) -> Action:
    """A 206 with bytes ``first``..``last`` of BODY, whatever the request asked."""

    def action(h: Handler) -> None:
        part = BODY[first : last + 1]
        h.send_response(206)
        h.send_header("Content-Range", f"bytes {first}-{last}/{len(BODY)}")
        h.send_header("Content-Length", str(len(part)))
        h.end_headers()
        h.wfile.write(part)

    return action


def test_206_with_the_whole_file_to_a_plain_request_is_used(server, tmp_path):
    server.routes["/data.bin"] = [partial_content(0, len(BODY) - 1)]
    path = get_file("data.bin", server.url("/data.bin"), cache_dir=tmp_path, **FAST)
    assert Path(path).read_bytes() == BODY


def test_206_with_a_part_to_a_plain_request_is_retried_then_reported(server, tmp_path):
    server.routes["/data.bin"] = [partial_content(0, 999)]
    with pytest.raises(DownloadInterruptedError, match="206 Partial Content to a request"):
        get_file("data.bin", server.url("/data.bin"), cache_dir=tmp_path, retries=1, **FAST)
    assert len(server.requests_for("/data.bin")) == 2
    assert leftovers(tmp_path / "datasets") == set()


# ---------------------------------------------------------------------------------------
# Partial files of downloads killed half-way
# ---------------------------------------------------------------------------------------


class _Stalls:
    """Server actions that send part of the body and then hold the connection open."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def after(self, n: int) -> Action:
        def action(h: Handler) -> None:
            h.send_response(200)
            h.send_header("Content-Length", str(len(BODY)))
            h.send_header("Accept-Ranges", "bytes")
            h.send_header("ETag", '"v1"')
            h.end_headers()
            h.wfile.write(BODY[:n])
            h.wfile.flush()
            self.release.wait(30)  # until the test ends; bounded in any case
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)

        return action


@pytest.fixture
def stalls():
    holder = _Stalls()
    yield holder
    holder.release.set()


_DOWNLOADER = """
import sys
sys.path.insert(0, {root!r})
from kutils import get_file
get_file("data.bin", {url!r}, cache_dir={cache!r}, force_download={force!r},
         timeout=(5.0, 60.0), progress=False)
"""


def _start_stalled_download(url: str, cache: Path, *, force: bool) -> tuple[subprocess.Popen, Path]:
    """A subprocess downloading ``url``, once the server stalled it with bytes on disk."""
    script = _DOWNLOADER.format(root=str(ROOT), url=url, cache=str(cache), force=force)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    folder = cache / "datasets"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = partials(folder) if folder.exists() else []
        # The reader fills 1 MiB buffers, so not all that was sent is on disk yet.
        if found and found[0].stat().st_size >= 1 << 20:
            return proc, found[0]
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    _, err = proc.communicate(timeout=10)
    pytest.fail(f"the download never wrote its first MiB: {err.decode()}")


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)  # waits, and closes the stderr pipe


@pytest.mark.parametrize("good_copy", [False, True], ids=["fresh", "cache-hit"])
def test_partial_file_of_a_killed_download_is_removed_by_the_next_call(
    server, stalls, tmp_path, good_copy
):
    cache = tmp_path / "cache"
    target = cache / "datasets" / "data.bin"
    if good_copy:  # the killed process was replacing it (force_download)
        target.parent.mkdir(parents=True)
        target.write_bytes(BODY)
    server.routes["/data.bin"] = [stalls.after(len(BODY) // 2), serve()]
    proc, partial = _start_stalled_download(server.url("/data.bin"), cache, force=good_copy)
    _kill(proc)
    assert partial.exists()  # what a SIGKILL or a power cut leaves behind

    path = get_file("data.bin", server.url("/data.bin"), file_hash=SHA256, cache_dir=cache, **FAST)
    assert Path(path).read_bytes() == BODY
    assert partials(target.parent) == []
    assert leftovers(target.parent) == {"data.bin"}
    # A cache hit stays a cache hit: nothing is downloaded again for the clean-up.
    assert len(server.requests_for("/data.bin")) == (1 if good_copy else 2)


def test_partial_file_of_a_live_download_is_left_alone(server, stalls, tmp_path):
    cache = tmp_path / "cache"
    target = cache / "datasets" / "data.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(BODY)
    server.routes["/data.bin"] = [stalls.after(len(BODY) // 2)]
    proc, partial = _start_stalled_download(server.url("/data.bin"), cache, force=True)
    try:
        start = time.monotonic()
        path = get_file(
            "data.bin", server.url("/data.bin"), file_hash=SHA256, cache_dir=cache, **FAST
        )
        assert time.monotonic() - start < 5  # a cache hit does not wait for the lock
        assert Path(path).read_bytes() == BODY
        assert partial.exists()  # still being written by the live process
    finally:
        _kill(proc)


_EXTRACTOR = """
import sys
sys.path.insert(0, {root!r})
from kutils import get_file
get_file("big.tar", {url!r}, extract=True, cache_dir={cache!r}, progress=False)
"""


def test_temporary_folder_of_a_killed_extraction_is_removed_by_the_next_call(tmp_path):
    big = tmp_path / "big.bin"
    with big.open("wb") as f:  # large enough that extracting it takes a while
        f.truncate(96 << 20)
    archive = tmp_path / "big.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(big, arcname="big.bin")
    big.unlink()
    cache = tmp_path / "cache"
    datadir = cache / "datasets"
    get_file("big.tar", archive.as_uri(), cache_dir=cache)  # downloaded; not extracted yet
    script = _EXTRACTOR.format(root=str(ROOT), url=archive.as_uri(), cache=str(cache))
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    staged: list[Path] = []
    while not staged and proc.poll() is None and time.monotonic() < deadline:
        staged = [p for p in datadir.iterdir() if p.name.startswith(".kutils-extract-")]
        time.sleep(0.002)
    _kill(proc)
    if not staged:
        pytest.fail("the extraction never started, or ended before it could be killed")
    assert staged[0].exists()  # what a SIGKILL mid-extraction leaves behind

    get_file("big.tar", archive.as_uri(), extract=True, cache_dir=cache)
    assert (datadir / "big.bin").stat().st_size == 96 << 20
    assert leftovers(datadir) == {"big.tar", "big.bin"}


_UNTAR = """
import sys
sys.path.insert(0, {root!r})
from kutils import get_file
get_file("data", {url!r}, untar=True, cache_dir={cache!r}, progress=False)
"""


@pytest.mark.slow  # two extractions of 1500 members: 6 to 22 s measured on a loaded machine
def test_untar_killed_while_moving_files_into_place_is_done_again(tmp_path):
    count = 1500  # moving them takes a few hundred ms: time enough to kill in between
    archive = _tar(
        tmp_path / "data.tgz", [(_member(f"data/{i:05d}.txt"), b"%d" % i) for i in range(count)]
    )
    cache = tmp_path / "cache"
    datadir = cache / "datasets"
    get_file("data", archive.as_uri(), cache_dir=cache)  # a file named data: not untarred
    (datadir / "data").unlink()
    get_file("data.tar.gz", archive.as_uri(), cache_dir=cache)  # where untar=True keeps it
    script = _UNTAR.format(root=str(ROOT), url=archive.as_uri(), cache=str(cache))
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    # Folders are created first, then the files moved in one by one: kill in between.
    deadline = time.monotonic() + 60
    while not (datadir / "data").exists() and proc.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.001)
    _kill(proc)
    moved = len(list((datadir / "data").iterdir())) if (datadir / "data").exists() else -1
    if not 0 <= moved < count:
        pytest.fail(f"could not kill the extraction while it moved files ({moved} moved)")

    # Keras 2 skips extraction when cache_subdir/fname exists; it exists, half-filled.
    path = get_file("data", archive.as_uri(), untar=True, cache_dir=cache)
    assert len(list(Path(path).iterdir())) == count
    assert (Path(path) / f"{count - 1:05d}.txt").read_bytes() == b"%d" % (count - 1)
    assert leftovers(datadir) == {"data", "data.tar.gz"}


# ---------------------------------------------------------------------------------------
# Extraction is all or nothing
# ---------------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path below ``folder`` with its content (None for folders)."""
    return {
        str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if not p.name.endswith(".lock")
    }


@pytest.mark.parametrize("conflict", ["file-over-folder", "folder-over-file"])
def test_archive_conflicting_with_the_cache_folder_changes_nothing(tmp_path, conflict):
    datadir = tmp_path / "c" / "datasets"
    (datadir / "d").mkdir(parents=True)
    (datadir / "x.txt").write_bytes(b"user's x")
    if conflict == "file-over-folder":
        (datadir / "d" / "e").mkdir()  # the archive has a file d/e
        members = [(_member("x.txt"), b"archive's x"), (_member("d/e"), b"file")]
        error: type[OSError] = IsADirectoryError
    else:
        (datadir / "d" / "sub").write_bytes(b"user's file")  # the archive has a folder
        members = [(_member("x.txt"), b"archive's x"), (_member("d/sub/f"), b"file")]
        error = NotADirectoryError
    archive = _tar(tmp_path / "a.tgz", members)
    # The archive is stored first; what matters is that nothing else changes.
    get_file("a.tgz", archive.as_uri(), cache_dir=tmp_path / "c")
    before = snapshot(datadir)
    with pytest.raises(error, match="Nothing was extracted") as info:
        get_file("a.tgz", archive.as_uri(), extract=True, cache_dir=tmp_path / "c")
    assert str(datadir / "d") in str(info.value)
    assert snapshot(datadir) == before
    assert (datadir / "x.txt").read_bytes() == b"user's x"


@pytest.fixture
def immutable_folder(tmp_path):
    """A folder inside the cache that no file can be moved into, root included."""
    folder = tmp_path / "c" / "datasets" / "ro"
    folder.mkdir(parents=True)
    made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot make a folder immutable here: {made.stderr!r}")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_extraction_failing_half_way_puts_back_what_it_replaced(tmp_path, immutable_folder):
    datadir = immutable_folder.parent
    (datadir / "x.txt").write_bytes(b"user's x")
    archive = _tar(
        tmp_path / "a.tgz",
        [(_member("x.txt"), b"archive's x"), (_member("ro/new.txt"), b"new")],
    )
    get_file("a.tgz", archive.as_uri(), cache_dir=tmp_path / "c")
    before = snapshot(datadir)
    # x.txt is replaced first (top folder), then moving into ro/ fails with EPERM.
    with pytest.raises(PermissionError):
        get_file("a.tgz", archive.as_uri(), extract=True, cache_dir=tmp_path / "c")
    assert snapshot(datadir) == before
    assert (datadir / "x.txt").read_bytes() == b"user's x"


@pytest.mark.parametrize("name", ["a.tgz", "a.tgz.lock"])
def test_member_named_like_the_archive_or_its_lock_is_refused(tmp_path, name):
    archive = _tar(tmp_path / "a.tgz", [(_member("ok.txt"), b"ok"), (_member(name), b"evil")])
    datadir = tmp_path / "c" / "datasets"
    get_file("a.tgz", archive.as_uri(), cache_dir=tmp_path / "c")
    lock = datadir / "a.tgz.lock"
    lock_id = lock.stat().st_ino
    with pytest.raises(UnsafeArchiveError, match=f"the member '{name}' would replace") as info:
        get_file("a.tgz", archive.as_uri(), extract=True, cache_dir=tmp_path / "c")
    assert info.value.member == name
    assert (datadir / "a.tgz").read_bytes() == archive.read_bytes()
    assert lock.stat().st_ino == lock_id and lock.read_bytes() == b""
    assert not (datadir / "ok.txt").exists()


def test_member_named_like_an_archive_in_a_subfolder_is_refused(tmp_path):
    archive = _tar(tmp_path / "a.tgz", [(_member("sub/a.tgz"), b"evil")])
    datadir = tmp_path / "c" / "datasets"
    get_file("sub/a.tgz", archive.as_uri(), cache_dir=tmp_path / "c")
    with pytest.raises(UnsafeArchiveError, match="would replace the archive itself"):
        get_file("sub/a.tgz", archive.as_uri(), extract=True, cache_dir=tmp_path / "c")
    assert (datadir / "sub" / "a.tgz").read_bytes() == archive.read_bytes()


def test_archive_without_conflicts_still_replaces_files_of_the_same_name(tmp_path):
    datadir = tmp_path / "c" / "datasets"
    (datadir / "d").mkdir(parents=True)
    (datadir / "d" / "f").write_bytes(b"old")
    (datadir / "mine.txt").write_bytes(b"user data")
    archive = _tar(tmp_path / "a.tgz", [(_member("d/f"), b"new"), (_member("d/g/h"), b"h")])
    get_file("a.tgz", archive.as_uri(), extract=True, cache_dir=tmp_path / "c")
    assert (datadir / "d" / "f").read_bytes() == b"new"
    assert (datadir / "d" / "g" / "h").read_bytes() == b"h"
    assert (datadir / "mine.txt").read_bytes() == b"user data"
    assert not [p for p in datadir.iterdir() if p.name.startswith(".kutils-")]


# ---------------------------------------------------------------------------------------
# fname naming the cache folder itself
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("untar", [False, True])
@pytest.mark.parametrize("fname", [".", "..", "sub/..", "sub/../..", "/"])
def test_fname_resolving_to_the_cache_folder_raises_value_error(server, tmp_path, fname, untar):
    server.routes["/data.bin"] = [serve()]
    with pytest.raises(ValueError, match=f"Received: fname={fname!r}"):
        get_file(fname, server.url("/data.bin"), cache_dir=tmp_path, untar=untar, **FAST)
    assert server.requests_for("/data.bin") == []


def test_fname_naming_the_cache_folder_by_its_absolute_path_raises(server, tmp_path):
    server.routes["/data.bin"] = [serve()]
    folder = tmp_path / "datasets"
    folder.mkdir()
    with pytest.raises(ValueError, match="resolves to the cache folder"):
        get_file(str(folder), server.url("/data.bin"), cache_dir=tmp_path, **FAST)
    assert server.requests_for("/data.bin") == []

"""get_file against a real HTTP server on 127.0.0.1 with faults injected, and file:// URLs."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
from loopback_http import Action, Handler, status

from kutils import get_file
from kutils.downloads import (
    DownloadInterruptedError,
    HashMismatchError,
    HTTPStatusError,
    UnsafeArchiveError,
    URLFetchError,
    validate_file,
)

ROOT = Path(__file__).resolve().parents[1]
BODY = os.urandom(3 * 1024 * 1024 + 123)  # several read chunks, not a round number
SHA256 = hashlib.sha256(BODY).hexdigest()
MD5 = hashlib.md5(BODY).hexdigest()
FAST = {"backoff_factor": 0.01, "backoff_max": 0.05, "timeout": (5.0, 5.0), "progress": False}


def serve(body: bytes = BODY, *, ranges: bool = True, honour_range: bool = True) -> Action:
    """200 with the body, or 206 with the asked-for part when Range is supported."""

    def action(h: Handler) -> None:
        start = 0
        requested = h.headers.get("Range")
        if ranges and honour_range and requested and requested.startswith("bytes="):
            start = int(requested[6:].split("-")[0])
        part = body[start:]
        h.send_response(206 if start else 200)
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        if ranges:
            h.send_header("Accept-Ranges", "bytes")
            h.send_header("ETag", '"v1"')
        h.send_header("Content-Length", str(len(part)))
        h.end_headers()
        h.wfile.write(part)

    return action


def drop_after(n: int, body: bytes = BODY, *, ranges: bool = True) -> Action:
    """Announce the whole body, send ``n`` bytes, then close the connection."""

    def action(h: Handler) -> None:
        h.send_response(200)
        if ranges:
            h.send_header("Accept-Ranges", "bytes")
            h.send_header("ETag", '"v1"')
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[:n])
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)

    return action


def drop_range_after(n: int, body: bytes = BODY) -> Action:
    """Answer a Range request with 206, send ``n`` bytes of the part, then close."""

    def action(h: Handler) -> None:
        start = int(h.headers["Range"][6:].split("-")[0])
        h.send_response(206)
        h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("ETag", '"v1"')
        h.send_header("Content-Length", str(len(body) - start))
        h.end_headers()
        h.wfile.write(body[start : start + n])
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)

    return action


def stall(seconds: float) -> Action:
    """Send the headers and a few bytes, then go quiet."""

    def action(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(BODY)))
        h.end_headers()
        h.wfile.write(BODY[:10])
        h.wfile.flush()
        time.sleep(seconds)
        h.close_connection = True

    return action


def slowly(body: bytes, seconds: float) -> Action:
    """The whole body, spread over about ``seconds``."""

    def action(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        pieces = 20
        step = -(-len(body) // pieces)
        for i in range(0, len(body), step):
            h.wfile.write(body[i : i + step])
            h.wfile.flush()
            time.sleep(seconds / pieces)

    return action


def leftovers(folder: Path) -> set[str]:
    """Names in ``folder`` other than lock files."""
    return {p.name for p in folder.iterdir() if not p.name.endswith(".lock")}


# ---------------------------------------------------------------------------------------
# Downloads, cache hits and hashes
# ---------------------------------------------------------------------------------------


def test_http_download_returns_the_file_path(server, tmp_path):
    server.routes["/data.bin"] = [serve()]
    path = get_file("data.bin", server.url("/data.bin"), cache_dir=tmp_path, **FAST)
    assert path == str(tmp_path / "datasets" / "data.bin")
    assert Path(path).read_bytes() == BODY


def test_cached_file_is_not_fetched_again(server, tmp_path):
    server.routes["/data.bin"] = [serve()]
    for _ in range(2):
        get_file("data.bin", server.url("/data.bin"), file_hash=SHA256, cache_dir=tmp_path)
    assert len(server.requests_for("/data.bin")) == 1


def test_cached_file_with_wrong_hash_is_downloaded_again(server, tmp_path, capsys):
    target = tmp_path / "datasets" / "data.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"stale")
    server.routes["/data.bin"] = [serve()]
    get_file("data.bin", server.url("/data.bin"), file_hash=SHA256, cache_dir=tmp_path, **FAST)
    assert target.read_bytes() == BODY
    out = capsys.readouterr().out
    assert "A local file was found, but it seems to be incomplete or outdated because the" in out
    assert f"does not match the original value of {SHA256} so we will re-download" in out


def test_force_download_fetches_a_valid_cached_file_again(server, tmp_path):
    server.routes["/data.bin"] = [serve()]
    for _ in range(2):
        get_file("data.bin", server.url("/data.bin"), cache_dir=tmp_path, force_download=True)
    assert len(server.requests_for("/data.bin")) == 2


def test_wrong_hash_on_fresh_download_raises_and_keeps_nothing(server, tmp_path):
    server.routes["/data.bin"] = [serve()]
    url = server.url("/data.bin")
    wrong = "0" * 64
    with pytest.raises(HashMismatchError) as info:
        get_file("data.bin", url, file_hash=wrong, cache_dir=tmp_path, **FAST)
    message = str(info.value)
    assert url in message and wrong in message and SHA256 in message
    assert (info.value.expected, info.value.actual, info.value.url) == (wrong, SHA256, url)
    assert leftovers(tmp_path / "datasets") == set()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"file_hash": SHA256},
        {"file_hash": SHA256.upper()},
        {"file_hash": MD5},
        {"md5_hash": MD5},
        {"md5_hash": MD5, "file_hash": SHA256},  # file_hash wins, algorithm untouched
        {"file_hash": SHA256, "hash_algorithm": "sha256"},
        {"file_hash": SHA256, "hash_algorithm": "SHA256"},
        {"file_hash": hashlib.sha1(BODY).hexdigest()},
        {"file_hash": hashlib.sha512(BODY).hexdigest(), "hash_algorithm": "sha512"},
    ],
    ids=str,
)
def test_matching_hash_in_every_spelling_verifies(server, tmp_path, kwargs):
    server.routes["/data.bin"] = [serve()]
    path = get_file("data.bin", server.url("/data.bin"), cache_dir=tmp_path, **kwargs, **FAST)
    assert Path(path).read_bytes() == BODY
    assert validate_file(path, kwargs.get("file_hash") or kwargs["md5_hash"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"file_hash": "xyz"}, "hexadecimal digest"),
        ({"file_hash": SHA256, "hash_algorithm": "md5"}, "64 hex digits, but a md5 digest has 32"),
        ({"file_hash": MD5, "hash_algorithm": "crc99"}, "hash_algorithm must be"),
        ({"timeout": -1}, "timeout must be positive"),
        ({"retries": -1}, "retries must be a non-negative integer"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_file("x.bin", "http://127.0.0.1:9/x.bin", cache_dir=tmp_path, **kwargs)


@pytest.mark.parametrize("fname", ["", None, "folder/"])
def test_bad_fname_raises_value_error(tmp_path, fname):
    with pytest.raises(ValueError, match="Received: fname="):
        get_file(fname, "http://127.0.0.1:9/x.bin", cache_dir=tmp_path)


# ---------------------------------------------------------------------------------------
# Network faults
# ---------------------------------------------------------------------------------------


def test_dropped_connection_resumes_with_a_range_request(server, tmp_path):
    half = len(BODY) // 2
    server.routes["/data.bin"] = [drop_after(half), serve()]
    path = get_file(
        "data.bin", server.url("/data.bin"), file_hash=SHA256, cache_dir=tmp_path, **FAST
    )
    assert Path(path).read_bytes() == BODY
    first, second = server.requests_for("/data.bin")
    assert "Range" not in first
    assert second["Range"] == f"bytes={half}-"
    assert second["If-Range"] == '"v1"'


def test_dropped_connection_without_range_support_starts_over(server, tmp_path):
    half = len(BODY) // 2
    server.routes["/data.bin"] = [drop_after(half, ranges=False), serve(ranges=False)]
    path = get_file(
        "data.bin", server.url("/data.bin"), file_hash=SHA256, cache_dir=tmp_path, **FAST
    )
    assert Path(path).read_bytes() == BODY
    assert [("Range" in h) for h in server.requests_for("/data.bin")] == [False, False]


def test_server_answering_a_range_request_with_the_whole_body_starts_over(server, tmp_path):
    server.routes["/data.bin"] = [drop_after(1000), serve(honour_range=False)]
    path = get_file(
        "data.bin", server.url("/data.bin"), file_hash=SHA256, cache_dir=tmp_path, **FAST
    )
    assert Path(path).read_bytes() == BODY
    assert server.requests_for("/data.bin")[1]["Range"] == "bytes=1000-"


def test_retry_budget_starts_over_while_a_resumed_download_progresses(server, tmp_path):
    quarter = len(BODY) // 4
    # Three drops, each after a quarter of the body, with retries=1: every retry resumes
    # and brings new bytes, so the download is not abandoned.
    server.routes["/data.bin"] = [
        drop_after(quarter),
        drop_range_after(quarter),
        drop_range_after(quarter),
        serve(),
    ]
    path = get_file(
        "data.bin", server.url("/data.bin"), file_hash=SHA256, cache_dir=tmp_path, retries=1, **FAST
    )
    assert Path(path).read_bytes() == BODY
    ranges = [h.get("Range") for h in server.requests_for("/data.bin")]
    assert ranges == [None, f"bytes={quarter}-", f"bytes={2 * quarter}-", f"bytes={3 * quarter}-"]


def test_server_error_then_success_is_retried(server, tmp_path):
    server.routes["/data.bin"] = [status(500), status(503), serve()]
    path = get_file(
        "data.bin", server.url("/data.bin"), file_hash=SHA256, cache_dir=tmp_path, **FAST
    )
    assert Path(path).read_bytes() == BODY
    assert len(server.requests_for("/data.bin")) == 3


def test_429_waits_for_retry_after(server, tmp_path):
    server.routes["/data.bin"] = [status(429, {"Retry-After": "1"}), serve()]
    start = time.monotonic()
    get_file(
        "data.bin",
        server.url("/data.bin"),
        cache_dir=tmp_path,
        backoff_factor=0.01,
        backoff_max=10,
        progress=False,
    )
    assert time.monotonic() - start >= 1.0
    assert len(server.requests_for("/data.bin")) == 2


def test_retry_after_is_bounded_by_backoff_max(server, tmp_path):
    server.routes["/data.bin"] = [status(429, {"Retry-After": "3600"}), serve()]
    start = time.monotonic()
    get_file("data.bin", server.url("/data.bin"), cache_dir=tmp_path, **FAST)
    assert time.monotonic() - start < 5


def test_persistent_server_error_gives_up_after_the_retries(server, tmp_path):
    server.routes["/data.bin"] = [status(503)]
    url = server.url("/data.bin")
    with pytest.raises(HTTPStatusError, match=r"503") as info:
        get_file("data.bin", url, cache_dir=tmp_path, retries=2, **FAST)
    assert info.value.status == 503 and url in str(info.value)
    assert len(server.requests_for("/data.bin")) == 3
    assert leftovers(tmp_path / "datasets") == set()


def test_404_raises_http_status_error_naming_status_and_url(server, tmp_path):
    url = server.url("/missing.bin")
    with pytest.raises(HTTPStatusError) as info:
        get_file("missing.bin", url, cache_dir=tmp_path, **FAST)
    assert str(info.value).startswith(f"URL fetch failure on {url} : 404 -- Not Found")
    assert info.value.status == 404
    assert isinstance(info.value, URLFetchError) and isinstance(info.value, Exception)
    assert len(server.requests_for("/missing.bin")) == 1  # a 404 is final, not retried
    assert leftovers(tmp_path / "datasets") == set()


def test_stalled_server_times_out_and_gives_up(server, tmp_path):
    server.routes["/data.bin"] = [stall(3)]
    start = time.monotonic()
    with pytest.raises(DownloadInterruptedError, match="gave up after 2 attempts"):
        get_file(
            "data.bin",
            server.url("/data.bin"),
            cache_dir=tmp_path,
            timeout=(2.0, 0.3),
            retries=1,
            backoff_factor=0.01,
            progress=False,
        )
    assert time.monotonic() - start < 2.5
    assert leftovers(tmp_path / "datasets") == set()


def test_redirects_are_followed(server, tmp_path):
    server.routes["/old.bin"] = [status(302, {"Location": "/new.bin"})]
    server.routes["/new.bin"] = [serve()]
    path = get_file(
        "data.bin", server.url("/old.bin"), file_hash=SHA256, cache_dir=tmp_path, **FAST
    )
    assert Path(path).read_bytes() == BODY


def test_redirect_loop_raises_url_fetch_error(server, tmp_path):
    server.routes["/loop.bin"] = [status(302, {"Location": "/loop.bin"})]
    with pytest.raises(URLFetchError, match="redirects"):
        get_file("data.bin", server.url("/loop.bin"), cache_dir=tmp_path, **FAST)


def test_body_shorter_than_content_length_is_retried_then_reported(server, tmp_path):
    server.routes["/data.bin"] = [drop_after(500, BODY[:1000], ranges=False)]
    with pytest.raises(DownloadInterruptedError, match="after 500 of 1000 bytes"):
        get_file("data.bin", server.url("/data.bin"), cache_dir=tmp_path, retries=2, **FAST)
    assert len(server.requests_for("/data.bin")) == 3
    assert leftovers(tmp_path / "datasets") == set()


def test_connection_refused_is_retried_then_reported(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DownloadInterruptedError, match="gave up after 3 attempts"):
        get_file("x.bin", f"http://127.0.0.1:{port}/x.bin", cache_dir=tmp_path, retries=2, **FAST)


def test_user_agent_names_kutils_and_body_is_not_compressed(server, tmp_path):
    server.routes["/data.bin"] = [serve()]
    get_file("data.bin", server.url("/data.bin"), cache_dir=tmp_path, **FAST)
    (headers,) = server.requests_for("/data.bin")
    assert headers["User-Agent"].startswith("kutils/")
    assert headers["Accept-Encoding"] == "identity"


def test_proxy_is_taken_from_the_environment(server, tmp_path, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url(""))
    origin = "http://datasets.kutils.invalid/data.bin"
    server.routes[origin] = [serve()]  # a proxy sees the absolute URL
    path = get_file("data.bin", origin, file_hash=SHA256, cache_dir=tmp_path, **FAST)
    assert Path(path).read_bytes() == BODY
    assert len(server.requests_for(origin)) == 1


def test_extra_headers_are_sent(server, tmp_path):
    server.routes["/data.bin"] = [serve()]
    get_file(
        "data.bin", server.url("/data.bin"), cache_dir=tmp_path, headers={"Authorization": "t"}
    )
    assert server.requests_for("/data.bin")[0]["Authorization"] == "t"


# ---------------------------------------------------------------------------------------
# file:// origins and other schemes
# ---------------------------------------------------------------------------------------


def test_file_url_is_copied_and_verified(tmp_path):
    source = tmp_path / "mirror" / "data.bin"
    source.parent.mkdir()
    source.write_bytes(BODY)
    path = get_file("data.bin", source.as_uri(), file_hash=SHA256, cache_dir=tmp_path / "c")
    assert Path(path).read_bytes() == BODY


def test_missing_file_url_raises_url_fetch_error_like_keras_2(tmp_path):
    url = (tmp_path / "nowhere.bin").as_uri()
    with pytest.raises(URLFetchError, match="No such file or directory") as info:
        get_file("x.bin", url, cache_dir=tmp_path / "c")
    assert str(info.value).startswith(f"URL fetch failure on {url} : None -- ")
    assert leftovers(tmp_path / "c" / "datasets") == set()


@pytest.mark.parametrize("origin", ["notaurl", "ftp://example.com/x.bin"])
def test_unknown_url_scheme_raises_value_error(tmp_path, origin):
    with pytest.raises(ValueError, match="unknown url type"):
        get_file("x.bin", origin, cache_dir=tmp_path)


# ---------------------------------------------------------------------------------------
# Cache folder rules
# ---------------------------------------------------------------------------------------


def _source(tmp_path: Path) -> str:
    source = tmp_path / "src" / "data.bin"
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(b"payload")
    return source.as_uri()


def test_keras_home_is_read_at_call_time(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    path = get_file("data.bin", _source(tmp_path))
    assert path == str(tmp_path / "home" / "datasets" / "data.bin")


def test_default_cache_is_dot_keras_in_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    path = get_file("data.bin", _source(tmp_path))
    assert path == str(tmp_path / "user" / ".keras" / "datasets" / "data.bin")


def test_missing_cache_dir_is_created_not_replaced(tmp_path):
    path = get_file("data.bin", _source(tmp_path), cache_dir=tmp_path / "new" / "cache")
    assert path == str(tmp_path / "new" / "cache" / "datasets" / "data.bin")


def test_cache_dir_that_cannot_be_created_falls_back_to_tmp_keras(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    (tmp_path / "a_file").write_text("not a folder")
    path = get_file("data.bin", _source(tmp_path), cache_dir=tmp_path / "a_file" / "cache")
    assert path == str(tmp_path / "tmp" / ".keras" / "datasets" / "data.bin")


@pytest.fixture
def unwritable_folder(tmp_path):
    """A folder this process really cannot write to: read-only mode, or immutable for root."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    # root writes through any mode bits; an immutable folder it cannot write either.
    made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
    if made.returncode != 0 or os.access(folder, os.W_OK):
        pytest.skip(f"cannot make a folder unwritable for root here: {made.stderr!r}")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_unwritable_cache_dir_falls_back_to_tmp_keras(tmp_path, monkeypatch, unwritable_folder):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = get_file("data.bin", _source(tmp_path), cache_dir=unwritable_folder)
    assert path == str(tmp_path / "tmp" / ".keras" / "datasets" / "data.bin")
    assert list(unwritable_folder.iterdir()) == []


def test_absolute_cache_subdir_replaces_the_cache_folder(tmp_path):
    path = get_file(
        "data.bin", _source(tmp_path), cache_subdir=tmp_path / "abs", cache_dir=tmp_path / "c"
    )
    assert path == str(tmp_path / "abs" / "data.bin")


def test_absolute_fname_replaces_the_cache_folder(tmp_path):
    target = tmp_path / "elsewhere" / "data.bin"
    assert get_file(str(target), _source(tmp_path), cache_dir=tmp_path / "c") == str(target)
    assert target.read_bytes() == b"payload"


def test_lock_timeout_raises_when_another_process_holds_the_lock(tmp_path):
    from filelock import FileLock, Timeout

    target = tmp_path / "c" / "datasets" / "data.bin"
    target.parent.mkdir(parents=True)
    with FileLock(str(target) + ".lock"), pytest.raises(Timeout):
        get_file("data.bin", _source(tmp_path), cache_dir=tmp_path / "c", lock_timeout=0.2)
    assert not target.exists()


# ---------------------------------------------------------------------------------------
# Progress bar
# ---------------------------------------------------------------------------------------


def test_progress_bar_is_drawn_on_stderr_for_slow_downloads(server, tmp_path, capsys):
    server.routes["/slow.bin"] = [slowly(BODY, 1.5)]
    get_file("slow.bin", server.url("/slow.bin"), cache_dir=tmp_path, progress=True)
    captured = capsys.readouterr()
    assert "slow.bin: " in captured.err and "MB/s" in captured.err and "100%" in captured.err
    assert "MB/s" not in captured.out


def test_progress_bar_is_not_drawn_for_quick_downloads(server, tmp_path, capsys):
    server.routes["/data.bin"] = [serve()]
    get_file("data.bin", server.url("/data.bin"), cache_dir=tmp_path, progress=True)
    assert capsys.readouterr().err == ""


def test_progress_bar_is_quiet_when_stderr_is_not_a_terminal(server, tmp_path, capsys):
    server.routes["/slow.bin"] = [slowly(BODY, 1.5)]
    get_file("slow.bin", server.url("/slow.bin"), cache_dir=tmp_path)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------
# Archives
# ---------------------------------------------------------------------------------------


def _tar(
    path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz"
) -> Path:
    with tarfile.open(path, mode) as archive:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return path


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_extract_returns_the_archive_path_and_extracts_beside_it(tmp_path, mode):
    archive = _tar(tmp_path / "a.tar", [(_member("sub/test.txt"), b"hello")], mode)
    path = get_file("bundle", archive.as_uri(), extract=True, cache_dir=tmp_path / "c")
    datadir = tmp_path / "c" / "datasets"
    assert path == str(datadir / "bundle")
    assert (datadir / "sub" / "test.txt").read_bytes() == b"hello"
    assert not [p for p in datadir.iterdir() if p.name.startswith(".kutils-extract-")]


def test_extract_zip_and_overwrite_on_every_call(tmp_path):
    archive = _zip(tmp_path / "a.zip", {"test.txt": b"hello"})
    datadir = tmp_path / "c" / "datasets"
    get_file("zipped", archive.as_uri(), extract=True, cache_dir=tmp_path / "c")
    (datadir / "test.txt").write_bytes(b"edited")
    get_file("zipped", archive.as_uri(), extract=True, cache_dir=tmp_path / "c")
    assert (datadir / "test.txt").read_bytes() == b"hello"


def test_untar_stores_tar_gz_and_returns_the_fname_path(tmp_path):
    archive = _tar(tmp_path / "a.tgz", [(_member("data_utils/test.txt"), b"hello")])
    path = get_file("data_utils", archive.as_uri(), untar=True, cache_dir=tmp_path / "c")
    datadir = tmp_path / "c" / "datasets"
    assert path == str(datadir / "data_utils")
    assert (datadir / "data_utils.tar.gz").read_bytes() == archive.read_bytes()
    assert (datadir / "data_utils" / "test.txt").read_bytes() == b"hello"


def test_untar_skips_extraction_when_the_fname_path_exists(tmp_path):
    archive = _tar(tmp_path / "a.tgz", [(_member("data_utils/test.txt"), b"hello")])
    get_file("data_utils", archive.as_uri(), untar=True, cache_dir=tmp_path / "c")
    extracted = tmp_path / "c" / "datasets" / "data_utils" / "test.txt"
    extracted.write_bytes(b"edited")
    get_file("data_utils", archive.as_uri(), untar=True, cache_dir=tmp_path / "c")
    assert extracted.read_bytes() == b"edited"


@pytest.mark.parametrize(
    ("archive_format", "extracted"),
    [(None, False), ("zip", False), ("tar", True), (["zip", "tar"], True)],
)
def test_archive_format_selects_the_formats_tried(tmp_path, archive_format, extracted):
    archive = _tar(tmp_path / "a.tgz", [(_member("test.txt"), b"hello")])
    get_file(
        "a.tgz",
        archive.as_uri(),
        extract=True,
        archive_format=archive_format,
        cache_dir=tmp_path / "c",
    )
    assert (tmp_path / "c" / "datasets" / "test.txt").exists() == extracted


def test_unknown_archive_format_raises_value_error(tmp_path):
    archive = _tar(tmp_path / "a.tgz", [(_member("test.txt"), b"hello")])
    with pytest.raises(ValueError, match="Received: archive_format='rar'"):
        get_file("a.tgz", archive.as_uri(), extract=True, archive_format="rar", cache_dir=tmp_path)


def test_links_inside_the_archive_are_extracted(tmp_path):
    archive = _tar(
        tmp_path / "a.tgz",
        [
            (_member("d", tarfile.DIRTYPE), None),
            (_member("d/real.txt"), b"hello"),
            (_member("d/soft.txt", tarfile.SYMTYPE, "real.txt"), None),
            (_member("hard.txt", tarfile.LNKTYPE, "d/real.txt"), None),
        ],
    )
    get_file("a.tgz", archive.as_uri(), extract=True, cache_dir=tmp_path / "c")
    datadir = tmp_path / "c" / "datasets"
    assert (datadir / "d" / "soft.txt").is_symlink()
    assert (datadir / "d" / "soft.txt").read_bytes() == b"hello"
    assert (datadir / "hard.txt").read_bytes() == b"hello"


MALICIOUS_TARS = {
    "dotdot": [(_member("../evil.txt"), b"x")],
    "nested-dotdot": [(_member("ok/../../evil.txt"), b"x")],
    "absolute": [(_member("/tmp/kutils-abs-evil.txt"), b"x")],
    "symlink-out": [(_member("link", tarfile.SYMTYPE, "../../.."), None)],
    "symlink-absolute": [(_member("link", tarfile.SYMTYPE, "/etc"), None)],
    "symlink-then-write": [
        (_member("d", tarfile.DIRTYPE), None),
        (_member("d/up", tarfile.SYMTYPE, ".."), None),
        (_member("d/up/up2", tarfile.SYMTYPE, ".."), None),
        (_member("d/up/up2/evil.txt"), b"x"),
    ],
    "symlink-retargeted": [
        (_member("d", tarfile.DIRTYPE), None),
        (_member("d/sub", tarfile.DIRTYPE), None),
        (_member("d/x", tarfile.SYMTYPE, "sub"), None),
        (_member("a", tarfile.SYMTYPE, "d/x/.."), None),
        (_member("d/x", tarfile.SYMTYPE, ".."), None),
    ],
    "hardlink-out": [(_member("hard", tarfile.LNKTYPE, "../../outside.txt"), None)],
    "hardlink-absolute": [(_member("hard", tarfile.LNKTYPE, "/etc/passwd"), None)],
    "char-device": [(_member("dev", tarfile.CHRTYPE), None)],
    "fifo": [(_member("pipe", tarfile.FIFOTYPE), None)],
}
MALICIOUS_ZIPS = {
    "zip-dotdot": {"ok.txt": b"x", "../evil.txt": b"x"},
    "zip-absolute": {"/tmp/kutils-abs-evil.txt": b"x"},
    "zip-backslash": {"..\\evil.txt": b"x"},
}


@pytest.mark.parametrize("case", sorted(MALICIOUS_TARS) + sorted(MALICIOUS_ZIPS))
def test_malicious_archive_is_refused_and_nothing_is_extracted(tmp_path, case):
    if case in MALICIOUS_TARS:
        archive = _tar(tmp_path / "bad.tgz", MALICIOUS_TARS[case])
    else:
        archive = _zip(tmp_path / "bad.zip", MALICIOUS_ZIPS[case])
    datadir = tmp_path / "c" / "datasets"
    datadir.mkdir(parents=True)
    (datadir / "mine.txt").write_bytes(b"user data")
    with pytest.raises(UnsafeArchiveError, match="Refusing to extract"):
        get_file("bad", archive.as_uri(), extract=True, cache_dir=tmp_path / "c")
    assert leftovers(datadir) == {"bad", "mine.txt"}  # the archive stays, the cache is intact
    assert (datadir / "mine.txt").read_bytes() == b"user data"
    assert not (tmp_path / "c" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/kutils-abs-evil.txt").exists()


def test_corrupt_archive_raises_and_keeps_the_cache_folder(tmp_path):
    good = _tar(tmp_path / "a.tgz", [(_member("test.txt"), os.urandom(100_000))])
    broken = tmp_path / "broken.tgz"
    broken.write_bytes(good.read_bytes()[:-4000])
    datadir = tmp_path / "c" / "datasets"
    datadir.mkdir(parents=True)
    (datadir / "mine.txt").write_bytes(b"user data")
    with pytest.raises((tarfile.TarError, EOFError, OSError)):
        get_file(
            "broken.tgz",
            broken.as_uri(),
            extract=True,
            archive_format="tar",
            cache_dir=tmp_path / "c",
        )
    assert (datadir / "mine.txt").read_bytes() == b"user data"
    assert not (datadir / "test.txt").exists()
    assert leftovers(datadir) == {"broken.tgz", "mine.txt"}


def test_symlink_already_in_the_cache_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    datadir = tmp_path / "c" / "datasets"
    datadir.mkdir(parents=True)
    (datadir / "d").symlink_to(outside)
    archive = _tar(tmp_path / "a.tgz", [(_member("d/evil.txt"), b"x")])
    with pytest.raises(UnsafeArchiveError, match="symbolic link already in the cache"):
        get_file("a.tgz", archive.as_uri(), extract=True, cache_dir=tmp_path / "c")
    assert list(outside.iterdir()) == []


# ---------------------------------------------------------------------------------------
# Several processes at once
# ---------------------------------------------------------------------------------------

_WORKER = """
import hashlib, sys, time
sys.path.insert(0, {root!r})
from kutils import get_file
while time.time() < {start}:
    time.sleep(0.005)
path = get_file("data.bin", {url!r}, file_hash={sha!r}, cache_dir={cache!r}, progress=False)
with open(path, "rb") as f:
    print(path, hashlib.sha256(f.read()).hexdigest())
"""


def test_four_processes_fetching_one_file_download_it_once(server, tmp_path):
    server.routes["/data.bin"] = [slowly(BODY, 1.0)]
    script = _WORKER.format(
        root=str(ROOT),
        start=time.time() + 1.5,
        url=server.url("/data.bin"),
        sha=SHA256,
        cache=str(tmp_path),
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    target = tmp_path / "datasets" / "data.bin"
    deadline = time.monotonic() + 60
    while any(w.poll() is None for w in workers) and time.monotonic() < deadline:
        if target.exists():  # never a partial file at the final path
            assert target.stat().st_size == len(BODY)
        time.sleep(0.01)
    outputs = [w.communicate(timeout=30) for w in workers]
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        assert out.split()[-2:] == [str(target), SHA256]
    assert len(server.requests_for("/data.bin")) == 1
    assert leftovers(tmp_path / "datasets") == {"data.bin"}

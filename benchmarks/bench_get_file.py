"""get_file over a loopback HTTP server, against what a user would otherwise run, in one run.

A 300 MB file of random bytes (made here, in a temporary folder) is served from
127.0.0.1 with ``sendfile``. Targets:

- a download verified with ``file_hash``: at most 1.3x the larger of a plain requests
  streaming download of the same URL (no hashing) and sha256 of the same bytes in memory
  with hashlib; and at most 0.4x ``keras.utils.get_file`` with the same hash;
- a cache hit verified with ``file_hash``: no slower than hashing the file once with
  ``hashlib.file_digest``.

What the baseline does, exactly: the plain download streams the body with requests
into a file through the page cache, without hashing and without ``fsync``. Each run
starts after ``os.sync()`` and its file is deleted before the next one, so its bytes
never reach the disk: the baseline pays for the page cache, not for the disk. get_file
must also get the file onto the disk before it moves it into place (``fsync``; see
tests/test_downloads_durability.py), so it does strictly more work than both sides of
the target together. For that reason a third, durable baseline is printed beside the
target (not part of it): the same plain download followed by ``fsync`` of the file.
On 2 cores the plain download alone uses well over one core (the server's ``sendfile``,
the loopback TCP processing and the client's copies) and the hashing most of the other,
so the target leaves get_file little more than the CPU time of the two sides added up
and split over the two cores (docs/performance.md).

Each figure is the best of several runs, the sides alternating so that load on the
machine hits them alike. The load average is printed before and after, since the ratios
depend on it: on 2 cores, a verified download needs a core for hashing beside the one
that receives and writes, which a loaded machine does not have to give.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import http.server
import io
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import requests

import kutils

SIZE = 300 * 1024 * 1024
REPEATS = 6


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    path_on_disk = ""

    def do_GET(self) -> None:
        with open(self.path_on_disk, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            self.wfile.flush()
            self.connection.sendfile(f)

    def log_message(self, *args: object) -> None:
        pass


def timed(function, before=None):
    """Wall time and CPU time of this process (all its threads) of one call."""
    if before is not None:
        before()
    gc.collect()
    cpu, start = time.process_time(), time.perf_counter()
    function()
    return time.perf_counter() - start, time.process_time() - cpu


def alternate(functions, before=None, cpu=None):
    """Best time of each function, run in turns so every side sees the same load.

    ``cpu``, a dict, receives the median CPU time of each function.
    """
    results = {name: [] for name in functions}
    cpu_times = {name: [] for name in functions}
    order = list(functions)
    for round_ in range(REPEATS):
        # Rotate the order too, so no side always runs right after the same other one.
        for name in order[round_ % len(order) :] + order[: round_ % len(order)]:
            wall, used = timed(functions[name], before=before)
            results[name].append(wall)
            cpu_times[name].append(used)
    if cpu is not None:
        cpu.update({name: statistics.median(times) for name, times in cpu_times.items()})
    return {name: min(times) for name, times in results.items()}


def main() -> None:
    work = tempfile.mkdtemp(prefix="kutils-bench-get-file-")
    try:
        run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: str) -> None:
    source = os.path.join(work, "source.bin")
    data = os.urandom(SIZE)
    with open(source, "wb") as f:
        f.write(data)
    sha256 = hashlib.sha256(data).hexdigest()

    _Handler.path_on_disk = source
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/source.bin"

    import keras

    kutils_cache = os.path.join(work, "kutils")
    keras_cache = os.path.join(work, "keras")
    plain_target = os.path.join(work, "plain.bin")
    os.makedirs(keras_cache)  # Keras silently uses /tmp/.keras for a folder not there yet

    def with_kutils():
        kutils.get_file("data.bin", url, file_hash=sha256, cache_dir=kutils_cache)

    def with_keras():
        with contextlib.redirect_stdout(io.StringIO()):  # its progress bar
            keras.utils.get_file("data.bin", url, file_hash=sha256, cache_dir=keras_cache)

    def plain_requests():
        with requests.get(url, stream=True) as response, open(plain_target, "wb") as f:
            for chunk in response.iter_content(chunk_size=1 << 20):
                f.write(chunk)

    def plain_requests_fsync():  # the durable baseline: printed, not part of the target
        with requests.get(url, stream=True) as response, open(plain_target, "wb") as f:
            for chunk in response.iter_content(chunk_size=1 << 20):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())

    def hashlib_bytes():
        hashlib.sha256(data).hexdigest()

    downloads = [
        os.path.join(kutils_cache, "datasets", "data.bin"),
        os.path.join(keras_cache, "datasets", "data.bin"),
        plain_target,
    ]

    def empty_caches():  # every timed download is a fresh one, into an empty cache
        for path in downloads:
            if os.path.exists(path):
                os.remove(path)
        # Start each run with no dirty pages: writeback of the previous run's file would
        # otherwise land in the next one's time.
        if hasattr(os, "sync"):
            os.sync()

    empty_caches()
    with contextlib.redirect_stdout(io.StringIO()):
        with_kutils()  # warm up
        with_keras()
    print(
        f"get_file of a {SIZE // 2**20} MB file over loopback HTTP, best of {REPEATS}, "
        f"{os.cpu_count()} cores, load average {_load()}:"
    )
    cpu: dict[str, float] = {}
    times = alternate(
        {
            "kutils": lambda: _quiet(with_kutils),
            "plain": plain_requests,
            "plain+fsync": plain_requests_fsync,
            "hashlib": hashlib_bytes,
            "keras": with_keras,
        },
        before=empty_caches,
        cpu=cpu,
    )
    floor = max(times["plain"], times["hashlib"])
    ratio = times["kutils"] / floor
    print(
        f"  download + sha256 check: kutils.get_file {times['kutils']:.3f} s; plain requests "
        f"download {times['plain']:.3f} s, hashlib sha256 of the bytes {times['hashlib']:.3f} s; "
        f"ratio to the larger {ratio:.2f} (target <= 1.3) {_verdict(ratio, 1.3)}"
    )
    print(
        f"  (for reference, not a target: a plain requests download followed by fsync, "
        f"its file on the disk like get_file's but not hashed, {times['plain+fsync']:.3f} s; "
        f"kutils.get_file / that: {times['kutils'] / times['plain+fsync']:.2f})"
    )
    ratio = times["kutils"] / times["keras"]
    print(
        f"  download + sha256 check: kutils.get_file {times['kutils']:.3f} s, "
        f"keras.utils.get_file {times['keras']:.3f} s, ratio {ratio:.2f} (target <= 0.4) "
        f"{_verdict(ratio, 0.4)}"
    )

    print(
        f"  CPU time of this process per run, median (the server thread included; it "
        f"depends little on the load): kutils.get_file {cpu['kutils']:.3f} s, plain requests "
        f"{cpu['plain']:.3f} s + hashlib {cpu['hashlib']:.3f} s = "
        f"{cpu['plain'] + cpu['hashlib']:.3f} s (kutils / that: "
        f"{cpu['kutils'] / (cpu['plain'] + cpu['hashlib']):.2f}), plain + fsync "
        f"{cpu['plain+fsync']:.3f} s, keras.utils.get_file {cpu['keras']:.3f} s"
    )

    cached = os.path.join(kutils_cache, "datasets", "data.bin")
    _quiet(with_kutils)

    def cache_hit():
        kutils.get_file("data.bin", url, file_hash=sha256, cache_dir=kutils_cache)

    def hashlib_file():
        with open(cached, "rb") as f:
            hashlib.file_digest(f, "sha256").hexdigest()

    times = alternate({"kutils": cache_hit, "hashlib": hashlib_file})
    ratio = times["kutils"] / times["hashlib"]
    print(
        f"  cache hit + sha256 check: kutils.get_file {times['kutils']:.3f} s, hashlib "
        f"file_digest of the file {times['hashlib']:.3f} s, ratio {ratio:.2f} (target <= 1.0) "
        f"{_verdict(ratio, 1.0)}"
    )
    print(f"  load average after: {_load()}")
    server.shutdown()


def _load() -> str:
    if not hasattr(os, "getloadavg"):
        return "unknown"
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _quiet(function):
    with contextlib.redirect_stdout(io.StringIO()):  # "Downloading data from ..."
        function()


def _verdict(ratio: float, target: float) -> str:
    return "ok" if ratio <= target else "MISSED"


if __name__ == "__main__":
    main()

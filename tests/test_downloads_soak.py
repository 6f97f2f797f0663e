"""Soak test: 8 processes call get_file on the same files while a loopback server injects
random faults (dropped connections, stalls, 206 answers for the wrong part, 5xx) and
workers are killed with SIGKILL now and then. No call may return a corrupt or partial
file, no partial file may be left behind, and no process may hang.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from kutils import get_file

ROOT = Path(__file__).resolve().parents[1]
BODIES = {
    "/a.bin": os.urandom(1_200_000 + 7),
    "/b.bin": os.urandom(2_500_000 + 11),
    "/c.bin": os.urandom(600_000 + 3),
}
HASHES = {path: hashlib.sha256(body).hexdigest() for path, body in BODIES.items()}
WORKERS = 8
RUN_SECONDS = 45.0  # the workers' loop; the whole test takes about a minute
KILL_EVERY = 5.0
STALL_SECONDS = 1.5  # longer than the workers' 0.5 s read timeout


class _FaultyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _FaultyServer

    def do_GET(self) -> None:
        body = BODIES.get(self.path)
        if body is None:
            self.send_error(404)
            return
        fault = self.server.draw()
        asked = self.headers.get("Range")
        start = int(asked[6:].split("-")[0]) if asked else 0
        if fault == "bad-206" and not asked:  # a wrong part needs a request for a part
            fault = "ok"
        self.server.count(fault if fault != "ok" else ("ok-206" if start else "ok-200"))
        if fault == "5xx":
            self.send_response(random.choice([500, 502, 503]))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if fault == "bad-206":
            self._bad_206(body, start)
            return
        part = body[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        if fault in ("drop", "stall"):
            self.wfile.write(part[: random.randrange(len(part))])
            self.wfile.flush()
            if fault == "stall":
                time.sleep(STALL_SECONDS)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(part)

    def _bad_206(self, body: bytes, start: int) -> None:
        size = len(body)
        kind = random.choice(["before", "after", "total", "end"])
        first, last, total = start, size - 1, size
        if kind == "before":
            first = max(0, start - random.randint(1, 5000))
        elif kind == "after":
            first = min(size - 1, start + random.randint(1, 5000))
        elif kind == "total":
            total = size + random.choice([-1000, 1000])
        else:
            last = max(start, size - 1 - random.randint(1, 5000))
        part = body[first : last + 1]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {first}-{last}/{total}")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        self.wfile.write(part)

    def log_message(self, *args: object) -> None:
        pass


class _FaultyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FaultyHandler)
        self.faults = {"ok": 0.4, "drop": 0.2, "stall": 0.1, "bad-206": 0.15, "5xx": 0.15}
        self.faulty = True
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def draw(self) -> str:
        if not self.faulty:
            return "ok"
        names, weights = zip(*self.faults.items(), strict=True)
        return random.choices(names, weights)[0]

    def count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients time out on stalls and are killed mid-read: resets are expected here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


_WORKER = """
import hashlib, json, random, sys, time
sys.path.insert(0, {root!r})
from kutils import get_file
from kutils.downloads import DownloadInterruptedError, HTTPStatusError
hashes, base = {hashes!r}, {base!r}
outcomes, slowest = {{}}, 0.0
deadline = time.time() + {seconds}
while time.time() < deadline:
    start = time.monotonic()
    path = random.choice(sorted(hashes))
    hashed = random.random() < 0.6
    try:
        result = get_file(
            path[1:], base + path, file_hash=hashes[path] if hashed else None,
            cache_dir={cache!r}, force_download=random.random() < 0.4, timeout=(2.0, 0.5),
            retries=3, backoff_factor=0.02, backoff_max=0.1, lock_timeout=60, progress=False,
        )
    except (DownloadInterruptedError, HTTPStatusError) as exc:
        outcome = "gave-up"
    except Exception as exc:
        outcome = "error: " + type(exc).__name__ + ": " + str(exc)[:300]
    else:
        with open(result, "rb") as f:
            ok = hashlib.sha256(f.read()).hexdigest() == hashes[path]
        outcome = "ok" if ok else "CORRUPT " + path + (" (hashed)" if hashed else "")
    outcomes[outcome] = outcomes.get(outcome, 0) + 1
    slowest = max(slowest, time.monotonic() - start)
print(json.dumps({{"outcomes": outcomes, "slowest": slowest}}))
"""


@pytest.fixture
def faulty_server():
    srv = _FaultyServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.part"))


@pytest.mark.slow
def test_eight_processes_under_random_faults_never_get_a_bad_file(faulty_server, tmp_path):
    cache = tmp_path / "cache"
    folder = cache / "datasets"
    end = time.time() + RUN_SECONDS

    def start_worker() -> subprocess.Popen:
        script = _WORKER.format(
            root=str(ROOT),
            hashes=HASHES,
            base=faulty_server.url(""),
            cache=str(cache),
            seconds=max(1.0, end - time.time()),
        )
        return subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    running = [start_worker() for _ in range(WORKERS)]
    killed = []
    bad_targets: list[str] = []
    next_kill = time.monotonic() + KILL_EVERY
    try:
        while time.time() < end:
            # What sits at a target path is always a complete, good file.
            for path, digest in HASHES.items():
                target = folder / path[1:]
                try:
                    data = target.read_bytes()
                except FileNotFoundError:
                    continue
                if hashlib.sha256(data).hexdigest() != digest:
                    bad_targets.append(f"{path}: {len(data)} bytes")
            if time.monotonic() >= next_kill:  # a worker dies mid-call, as under OOM
                victim = random.choice([w for w in running if w.poll() is None] or running)
                victim.send_signal(signal.SIGKILL)
                killed.append(victim)
                running.remove(victim)
                running.append(start_worker())
                next_kill += KILL_EVERY
            time.sleep(0.2)

        outcomes: Counter[str] = Counter()
        slowest = 0.0
        hung = []
        join_deadline = time.monotonic() + 60  # the longest call is far shorter
        for worker in running:
            try:
                out, err = worker.communicate(timeout=max(0.1, join_deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                hung.append(worker.pid)
                continue
            assert worker.returncode == 0, err
            report = json.loads(out.strip().splitlines()[-1])
            outcomes.update(report["outcomes"])
            slowest = max(slowest, report["slowest"])
    finally:
        for worker in running + killed:
            if worker.poll() is None:
                worker.kill()
            worker.communicate(timeout=10)

    assert hung == [], f"workers still running 60 s after their deadline: {hung}"
    assert bad_targets == []
    unexpected = {k: n for k, n in outcomes.items() if k not in ("ok", "gave-up")}
    assert unexpected == {}, f"{unexpected} (all outcomes: {dict(outcomes)})"
    counts = faulty_server.counts
    # The test means something only if the faults and the downloads really happened.
    assert outcomes["ok"] >= 50, dict(outcomes)
    for fault in ("drop", "stall", "bad-206", "5xx", "ok-200", "ok-206"):
        assert counts[fault] >= 3, dict(counts)
    assert len(killed) >= 5

    # Killed workers may have left partial files; the next call under each lock removes
    # them, so after one successful call per target none remains.
    left_by_the_killed = _partials(folder)
    faulty_server.faulty = False
    for path, digest in HASHES.items():
        result = get_file(path[1:], faulty_server.url(path), file_hash=digest, cache_dir=cache)
        assert hashlib.sha256(Path(result).read_bytes()).hexdigest() == digest
    assert _partials(folder) == []
    print(
        f"\nsoak: outcomes {dict(outcomes)}, server {dict(counts)}, killed {len(killed)}, "
        f"slowest call {slowest:.1f} s, partial files before the last calls "
        f"{len(left_by_the_killed)}"
    )

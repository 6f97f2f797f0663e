"""get_file's durability, with the real faults: a real child process killed with SIGKILL
right after get_file returns or in the middle of the transfer, and the order of the
system calls that make a download survive a power cut, read from ``strace`` of a real
download.

A killed process keeps what reached the kernel, so the first two tests prove the file
is complete and verified before get_file returns, and never at the target before. A
power cut keeps only what reached the disk; there the guarantee rests on the order of
the calls: every write of the temporary file, then its ``fsync``, then the rename, then
the ``fsync`` of the folder. The strace test checks that order, and that the disk writes
were started while the download was still arriving (``sync_file_range`` on Linux).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loopback_http import Action, Handler
from test_downloads import ROOT, leftovers, serve
from test_downloads_faults import _kill, _Stalls, _start_stalled_download, partials

# Large enough for several 8 MiB steps of early writeback.
BIG = os.urandom(24 * 1024 * 1024 + 321)
BIG_SHA256 = hashlib.sha256(BIG).hexdigest()

_KILLED_AFTER_RETURN = """
import os, signal, sys
sys.path.insert(0, {root!r})
from kutils import get_file
path = get_file("data.bin", {url!r}, file_hash={sha!r}, cache_dir={cache!r},
                force_download={force!r}, progress=False, timeout=(5.0, 60.0))
sys.stderr.write(path + "\\n")
sys.stderr.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def stalls():
    holder = _Stalls()
    yield holder
    holder.release.set()


def _child(url: str, cache: Path, *, force: bool = False) -> list[str]:
    script = _KILLED_AFTER_RETURN.format(
        root=str(ROOT), url=url, sha=BIG_SHA256, cache=str(cache), force=force
    )
    return [sys.executable, "-c", script]


@pytest.mark.parametrize("old_copy", [False, True], ids=["fresh", "replacing"])
def test_process_killed_right_after_get_file_returns_leaves_the_verified_file(
    server, tmp_path, old_copy
):
    cache = tmp_path / "cache"
    target = cache / "datasets" / "data.bin"
    if old_copy:
        target.parent.mkdir(parents=True)
        target.write_bytes(b"the old copy")
    server.routes["/data.bin"] = [serve(BIG)]
    done = subprocess.run(
        _child(server.url("/data.bin"), cache, force=old_copy), capture_output=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    assert done.stderr.decode().splitlines()[-1] == str(target)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == BIG_SHA256
    assert leftovers(target.parent) == {"data.bin"}  # no partial file either


@pytest.mark.parametrize("old_copy", [False, True], ids=["fresh", "replacing"])
def test_process_killed_mid_transfer_leaves_nothing_at_the_target(
    server, stalls, tmp_path, old_copy
):
    cache = tmp_path / "cache"
    target = cache / "datasets" / "data.bin"
    if old_copy:
        target.parent.mkdir(parents=True)
        target.write_bytes(b"the old copy")
    server.routes["/data.bin"] = [stalls.after(2 * 1024 * 1024)]
    proc, partial = _start_stalled_download(server.url("/data.bin"), cache, force=old_copy)
    _kill(proc)
    assert proc.returncode == -signal.SIGKILL
    assert partial.exists()  # the transfer was under way
    if old_copy:
        assert target.read_bytes() == b"the old copy"
    else:
        assert not target.exists()
    assert [p.name for p in partials(target.parent)] == [partial.name]


# A line of `strace -f -y -s 0 -o`: "<pid> <name>(<args>) = <result>". A call that another
# thread interrupts is split into "<pid> <name>(<args> <unfinished ...>" and
# "<pid> <... <name> resumed>) = <result>".
_LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()(.*)$")
_TRACED = "/^(rename|renameat|renameat2|fsync|fdatasync|sync_file_range|write|pwrite64)$"


class _Call:
    def __init__(self, name: str, args: str, start: int) -> None:
        self.name, self.args, self.start, self.end = name, args, start, start


def _trace(command: list[str], log: Path) -> list[_Call]:
    """Run ``command`` under strace; its calls, each with the line numbers it spans."""
    if not sys.platform.startswith("linux") or shutil.which("strace") is None:
        pytest.skip("strace is not available (Linux only; apt-get install strace)")
    strace = ["strace", "-f", "-y", "-qq", "-s", "0", "-e", f"trace={_TRACED}", "-o", str(log)]
    done = subprocess.run(strace + command, capture_output=True, timeout=180)
    if not log.exists() or not log.read_text().strip():
        pytest.skip(f"strace cannot trace here: {done.stderr.decode()[-300:]}")
    assert done.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), done.stderr.decode()
    calls: list[_Call] = []
    pending: dict[str, _Call] = {}
    for number, line in enumerate(log.read_text().splitlines()):
        match = _LINE.match(line)
        if match is None:
            continue
        pid, resumed, name, rest = match.groups()
        if resumed:
            if pid in pending:
                pending.pop(pid).end = number
            continue
        call = _Call(name, rest, number)
        calls.append(call)
        if "<unfinished ...>" in rest:
            pending[pid] = call
    return calls


def _paced(body: bytes, piece: int = 2 * 1024 * 1024, pause: float = 0.01) -> Action:
    """200 with ``body`` sent in pieces with a pause after each, as a network delivers it.

    Over loopback the whole body can otherwise arrive before the writeback thread is
    first scheduled on a loaded machine, and the check that the disk writes start while
    the bytes still arrive would depend on the scheduler instead of on get_file.
    """

    def action(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        for start in range(0, len(body), piece):
            h.wfile.write(body[start : start + piece])
            h.wfile.flush()
            time.sleep(pause)

    return action


def test_data_is_synced_before_the_rename_and_the_folder_after(server, tmp_path):
    cache = tmp_path / "cache"
    folder = cache / "datasets"
    target = folder / "data.bin"
    server.routes["/data.bin"] = [_paced(BIG)]
    calls = _trace(_child(server.url("/data.bin"), cache), tmp_path / "strace.log")
    assert hashlib.sha256(target.read_bytes()).hexdigest() == BIG_SHA256

    part = re.compile(r"<[^>]*/\.data\.bin\.[0-9a-f]{12}\.part>")

    def on_part(*names: str) -> list[_Call]:
        return [c for c in calls if c.name in names and part.search(c.args)]

    writes = on_part("write", "pwrite64")
    syncs = on_part("fsync", "fdatasync")
    started = on_part("sync_file_range")
    renames = [c for c in calls if c.name.startswith("rename") and f'"{target}"' in c.args]
    folder_syncs = [c for c in calls if c.name == "fsync" and f"<{folder}>" in c.args]
    assert len(renames) == 1 and writes and syncs, [vars(c) for c in calls]
    rename, last_sync = renames[0], syncs[-1]
    # Every write is done before the last sync of the file's data starts, and that sync
    # is done before the rename starts: the target only ever names bytes on the disk...
    assert writes[-1].end < last_sync.start
    assert last_sync.end < rename.start
    # ...and the rename is made durable by syncing the folder once it is done.
    assert any(c.start > rename.end for c in folder_syncs), [vars(c) for c in calls[-6:]]
    # The disk writes were started while the bytes were still arriving, not all at the end.
    assert started and started[0].start < writes[-1].end

"""A process that used fit_generator exits once its work is done (issue 22, item 13: a
hang at interpreter exit was seen once in about eight runs).

Each run is a real Python process; a watchdog in the script dumps every thread's stack
if the interpreter has not exited 30 s after the work, so a hang fails with its place."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).parent / "scripts" / "fit_generator_exit.py"
ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["threads", "processes", "zero"])
@pytest.mark.parametrize("run", range(3))
def test_the_process_exits_after_the_work(mode, run):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), mode], env=env, capture_output=True, text=True, timeout=300
    )
    assert "work done" in done.stdout, done.stderr[-3000:]
    assert done.returncode == 0, "hung at exit:\n" + done.stderr[-6000:]
    assert "Thread 0x" not in done.stderr, done.stderr[-6000:]

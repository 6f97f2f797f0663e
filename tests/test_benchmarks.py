"""The GPU scaling sections of the data-parallel benchmarks, run on logical CPU devices.

This machine has no GPU, so the code those sections run on GPUs would otherwise never
run. ``--scaling-devices cpu:2`` sends the same code through 2 logical CPU devices;
``--quick`` makes the model and the data tiny. Nothing is timed or compared here: the
tests check what the sections print (the devices, the sub-batch split, the ratio
lines), not the figures.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
FIGURE = r"\d+\.\d+"


def _run_scaling(script: str) -> list[str]:
    """The lines printed by ``script``'s scaling section on 2 logical CPU devices."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    command = [
        sys.executable,
        str(BENCHMARKS / script),
        "--scaling-only",
        "--quick",
        "--scaling-devices",
        "cpu:2",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=400, env=env, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    # The load average every benchmark prints is not part of the section.
    return [line for line in result.stdout.splitlines() if not line.startswith("load average")]


def test_multi_gpu_scaling_section_lists_devices_split_and_ratios() -> None:
    lines = _run_scaling("bench_multi_gpu.py")
    assert lines[0].startswith("GPU scaling, run on 2 logical CPU devices"), lines
    assert lines[0].endswith(": /cpu:0, /cpu:1"), lines
    assert re.fullmatch(
        r"  1 device\(s\): devices /cpu:0 \(the template alone\), batch \d+, no split", lines[1]
    ), lines
    assert re.fullmatch(
        rf"  1 device\(s\): fit epoch {FIGURE} s, speed-up 1\.00x over 1 device, efficiency 1\.00",
        lines[2],
    ), lines
    split = re.fullmatch(
        r"  2 device\(s\): devices /cpu:0, /cpu:1, batch (\d+) split into sub-batches of "
        r"(\d+) \+ (\d+) rows",
        lines[3],
    )
    assert split, lines
    batch, first, second = map(int, split.groups())
    one_device = re.search(r"batch (\d+)", lines[1])
    assert one_device, lines
    single = int(one_device.group(1))
    assert batch == 2 * single and first == second == single  # the same rows per device
    assert re.fullmatch(
        rf"  2 device\(s\): fit epoch {FIGURE} s, speed-up {FIGURE}x over 1 device, "
        rf"efficiency {FIGURE}",
        lines[4],
    ), lines
    assert len(lines) == 5, lines


@pytest.mark.slow
def test_multi_worker_scaling_section_lists_each_workers_devices_split_and_ratios() -> None:
    lines = _run_scaling("bench_multi_worker.py")
    assert lines[0].startswith("GPU scaling, run on 1 to 2 logical CPU devices per worker"), lines
    sections = [lines[1:8], lines[8:15]]
    assert len(lines) == 15, lines
    sub_batch = None
    for n, section in enumerate(sections, start=1):
        assert section[0] == f"  {n} device(s) per worker, {2 * n} replicas in all:", section
        for worker in range(2):
            devices = ", ".join(
                f"/job:worker/replica:0/task:{worker}/device:CPU:{k}" for k in range(n)
            )
            assert section[1 + worker] == f"    worker {worker} devices: {devices}", section
        split = re.fullmatch(
            r"    global batch (\d+), per-replica sub-batches: (.+) rows on worker 0, "
            r"(.+) rows on worker 1",
            section[3],
        )
        assert split, section
        parts = [[int(p) for p in split.group(g).split(" + ")] for g in (2, 3)]
        assert [len(p) for p in parts] == [n, n], section  # one sub-batch per local device
        assert sum(map(sum, parts)) == int(split.group(1)), section
        assert len({p for worker in parts for p in worker}) == 1, section  # all equal
        sub_batch = sub_batch or parts[0][0]
        assert parts[0][0] == sub_batch, "the rows per replica changed with the device count"
        assert re.fullmatch(
            rf"    kutils {FIGURE} ms/step, hand-written {FIGURE} ms/step, "
            rf"kutils / hand-written {FIGURE}x",
            section[4],
        ), section
        for line, label in zip(section[5:], ("kutils", "hand-written"), strict=True):
            speed_up = "1\\.00" if n == 1 else FIGURE
            efficiency = "1\\.00" if n == 1 else FIGURE
            assert re.fullmatch(
                rf"    {label}: speed-up {speed_up}x over 1 device per worker \(samples/s\), "
                rf"efficiency {efficiency}",
                line,
            ), section

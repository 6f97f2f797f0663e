"""The README's main job runs to a good end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_trains_above_chance_and_exits_cleanly(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--epochs", "3", "--samples", "600"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("accuracy after 3 epochs")
    accuracy = float(last.split(":")[1].split()[0])
    assert accuracy > 0.5

"""The README's main job (examples/legacy_training.py) runs to a good end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "legacy_training.py"


@pytest.fixture(scope="module")
def legacy_run(tmp_path_factory):
    """One run of the script in a subprocess, small setting, private Keras home."""
    tmp = tmp_path_factory.mktemp("legacy")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KERAS_HOME": str(tmp / "keras-home"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    env.pop("KUTILS_MULTI_GPU_DEVICE_TYPE", None)
    out = tmp / "out"
    args = ["--epochs", "3", "--samples", "800", "--output-dir", str(out)]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp,
    )
    return result, out


def test_legacy_training_exits_cleanly(legacy_run):
    result, _ = legacy_run
    assert result.returncode == 0, result.stderr[-3000:]


def test_legacy_training_accuracy_is_clearly_above_chance(legacy_run):
    result, _ = legacy_run
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"accuracy after 3 epochs: ([0-9.]+) \(chance: 0\.250\)", last)
    assert match, last
    assert float(match.group(1)) > 0.5


def test_legacy_training_writes_the_plot_png_and_the_models(legacy_run):
    _, out = legacy_run
    assert (out / "model.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "model.h5").stat().st_size > 0
    assert (out / "train.h5").stat().st_size > 0


def test_legacy_training_says_which_devices_it_used(legacy_run):
    result, _ = legacy_run
    lines = result.stdout.splitlines()
    assert any(line.startswith("Devices: ") for line in lines)
    replicas = [line for line in lines if line.startswith("multi_gpu_model replicas ran on: ")]
    assert len(replicas) == 1
    assert "Training using multiple GPUs.." in lines
    assert re.search(r"/(cpu|gpu):1\b", replicas[0]), replicas[0]


def test_legacy_training_downloads_and_extracts_through_get_file(legacy_run):
    result, out = legacy_run
    assert "Downloading data from http://127.0.0.1:" in result.stdout
    datasets = out.parent / "keras-home" / "datasets"
    assert (datasets / "blobs.tar.gz").is_file()
    assert (datasets / "blobs" / "train.npz").is_file()

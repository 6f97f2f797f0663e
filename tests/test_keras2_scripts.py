"""A Keras 2 tutorial-style data-generator script moves to Keras 3 by `kutils migrate` alone.

The script (tests/scripts/keras2_data_generator.py) subclasses ``keras.utils.Sequence``
through ``import keras`` and trains with ``model.fit_generator(..., workers=6,
use_multiprocessing=True)`` at the top level, with no ``__main__`` guard, as the tutorials
of the time did. ``kutils migrate`` is the only edit; the result then trains on Keras 3
with forked process workers, as Keras 2 ran it.
"""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).parent / "scripts" / "keras2_data_generator.py"


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KERAS_HOME": str(tmp_path / "keras-home"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "KERAS_BACKEND": "tensorflow",
    }


def _migrate(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kutils", "migrate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Keras 2 forked on Linux")
def test_tutorial_data_generator_script_runs_after_kutils_migrate(tmp_path):
    env = _env(tmp_path)
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.read_text())

    migrated = _migrate(script, env)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    changed = [
        line
        for line in difflib.unified_diff(
            SCRIPT.read_text().splitlines(), script.read_text().splitlines(), lineterm="", n=0
        )
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == [
        "+import kutils",
        "+from kutils import fit_generator",
        "-class DataGenerator(keras.utils.Sequence):",
        "+class DataGenerator(kutils.Sequence):",
        "-        return X, keras.utils.to_categorical(y, num_classes=self.n_classes)",
        "+        return X, kutils.to_categorical(y, num_classes=self.n_classes)",
        "-history = model.fit_generator(generator=training_generator,",
        "+history = fit_generator(model, generator=training_generator,",
    ]
    again = _migrate(script, env)
    assert again.returncode == 0
    assert "rewrote 0" in again.stderr

    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["EPOCHS"] == "3"
    assert 0.0 <= float(lines["VAL_ACCURACY"]) <= 1.0

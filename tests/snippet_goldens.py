"""Comparing what a migrated snippet computed on Keras 3 with its Keras 2.3.1 golden.

The goldens are written by the recording scripts built on ``tests/oracle/_snippets.py``:
for each name the snippet left in ``result``, its values, dtype and shape.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

PATTERNS = Path(__file__).resolve().parent / "keras2_patterns"


def assert_like_golden(
    result: dict, expected: dict, rtol: float = 1e-5, atol: float = 1e-6
) -> None:
    """Same names, dtypes and shapes as the golden; values equal (text) or close (numbers)."""
    assert sorted(result) == sorted(expected)
    for key, recorded in expected.items():
        value = np.asarray(result[key])
        assert value.dtype == np.dtype(recorded["dtype"]), key
        assert list(value.shape) == recorded["shape"], key
        if value.dtype.kind == "U":
            assert value.tolist() == recorded["values"], key
        else:
            np.testing.assert_allclose(value, recorded["values"], rtol=rtol, atol=atol, err_msg=key)


def migrate_and_run_pattern(name: str, folder: Path) -> tuple[str, subprocess.CompletedProcess]:
    """Copy ``tests/keras2_patterns/<name>.py`` to ``folder``, migrate it, run it.

    Returns the migrated text and the finished run; the migration itself must succeed.
    """
    script = folder / f"{name}.py"
    shutil.copy(PATTERNS / f"{name}.py", script)
    env = {**os.environ, "PYTHONPATH": str(PATTERNS.parent.parent), "TF_CPP_MIN_LOG_LEVEL": "2"}
    migrated = subprocess.run(
        [sys.executable, "-m", "kutils", "migrate", str(script)], env=env, capture_output=True
    )
    assert migrated.returncode == 0, migrated.stderr
    ran = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    return script.read_text(), ran

"""Run each Keras 2 pattern script three ways and print a table.

    PYTHONPATH=$PWD /work/venv/bin/python tests/keras2_patterns/check.py [--k2 /work/k2/bin/python] [NAME...]

For every ``*.py`` pattern here (this file excepted):

- ``keras2``: the script as written, on the real Keras 2.3.1 (``--k2``, default
  ``/work/k2/bin/python``; skipped when missing). It must print ``ok``: the pattern is
  valid Keras 2 code.
- ``keras3``: the script as written, on Keras 3 (this interpreter).
- ``migrated``: a copy after ``python -m kutils migrate`` (the kutils on ``PYTHONPATH``),
  on Keras 3.

A pattern is fixed when ``migrated`` says ``ok``. Exit status: 0 when every pattern runs on
Keras 2.3.1 (or Keras 2.3.1 is not installed), 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _last_error(output: str) -> str:
    lines = [_ANSI.sub("", line).strip() for line in output.splitlines() if line.strip()]
    for i, line in enumerate(lines[:-1]):  # Keras 3 puts the reason on the next line
        if "Exception encountered when calling" in line:
            lines[i] = f"{line} {lines[i + 1]}"
    for line in reversed(lines):
        if re.match(r"^[\w.]*(Error|Exception)\b", line):
            return line[:160]
    return lines[-1][:160] if lines else "(no output)"


def _run(python: str, script: Path, env: dict[str, str]) -> str:
    try:
        done = subprocess.run(
            [python, script.name],
            cwd=script.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        return "timeout"
    output = done.stdout + done.stderr
    if done.returncode == 0 and "ok" in done.stdout.split():
        return "ok"
    return _last_error(output)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--k2", default="/work/k2/bin/python")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != "check.py")
    if args.names:
        scripts = [p for p in scripts if p.stem in args.names]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    bad = 0
    for script in scripts:
        keras2 = _run(args.k2, script, env) if os.path.exists(args.k2) else "skipped"
        bad += keras2 not in ("ok", "skipped")
        keras3 = _run(sys.executable, script, env)
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / script.name
            shutil.copy(script, copy)
            subprocess.run(
                [sys.executable, "-m", "kutils", "migrate", str(copy)],
                env=env,
                capture_output=True,
                timeout=120,
            )
            migrated = _run(sys.executable, copy, env)
        print(f"{script.stem}\n  keras2:   {keras2}\n  keras3:   {keras3}\n  migrated: {migrated}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""The oracle's harness: run cases, encode their outcomes, write and compare goldens.

A recording script ``record_<area>.py`` defines ``cases()``, yielding ``(case_id, fn)``
pairs, and ends with ``main(__name__, cases)``. Run under Keras 2.3.1 it writes
``tests/goldens/<area>/cases.json``; the default test run imports the same script under
Keras 3 (the shim picks kutils), runs the same cases and compares outcomes.

An outcome is a dict: ``{"value": ...}`` or ``{"error": "<builtin exception>"}``, plus
``"stdout"`` when the case printed anything. Values are encoded as JSON: numpy arrays as
``{"nd": dtype, "shape": [...], "v": nested lists}``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
import warnings

import numpy as np

GOLDENS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "goldens")


def encode(value):
    """A JSON-able form of ``value`` that compares equal exactly when the values do."""
    if isinstance(value, np.ndarray):
        return {"nd": str(value.dtype), "shape": list(value.shape), "v": value.tolist()}
    if isinstance(value, np.generic):
        return {"np": str(value.dtype), "v": value.item()}
    if isinstance(value, (list, tuple)):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {str(key): encode(item) for key, item in sorted(value.items(), key=str)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"repr": type(value).__name__}


def builtin_bases(exc):
    """The built-in exception classes ``exc`` is an instance of, most specific first."""
    return [cls.__name__ for cls in type(exc).__mro__ if cls.__module__ == "builtins"]


class FrozenClock:
    """``time.time`` replaced by a clock that moves only when told (``advance``)."""

    def __init__(self, start=1000.0):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@contextlib.contextmanager
def frozen_clock(start=1000.0):
    clock = FrozenClock(start)
    real = time.time
    time.time = clock
    try:
        yield clock
    finally:
        time.time = real


class Capture(io.StringIO):
    """A stdout that says whether it is a terminal (Progbar draws differently)."""

    def __init__(self, tty=False):
        super().__init__()
        self._tty = tty

    def isatty(self):
        return self._tty


def run_case(fn):
    """Run one case with stdout captured; its outcome as a JSON-able dict."""
    out = Capture()
    outcome = {}
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        # Warnings are not outcomes: the two stacks warn about different things.
        warnings.simplefilter("ignore")
        try:
            outcome["value"] = encode(fn())
        except Exception as exc:  # the outcome of a case may be an error
            bases = builtin_bases(exc)
            outcome["error"] = bases[0] if bases else type(exc).__name__
            outcome["errors"] = bases
    text = out.getvalue()
    if text:
        outcome["stdout"] = text
    return outcome


def matches(golden, actual):
    """Whether kutils' outcome is Keras 2.3.1's: the same value (exactly) and stdout, or
    an error that is an instance of the built-in exception Keras 2.3.1 raised."""
    if golden.get("stdout", "") != actual.get("stdout", ""):
        return False
    if "error" in golden:
        return golden["error"] in actual.get("errors", ())
    return "error" not in actual and _same(golden["value"], actual["value"])


def _same(a, b):
    # Through JSON text, so that NaN equals NaN and 1 does not equal True.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def golden_path(area):
    return os.path.join(GOLDENS, area, "cases.json")


def load_goldens(area):
    with open(golden_path(area)) as file:
        return json.load(file)["cases"]


def record(area, cases):
    """Run every case and write the goldens of ``area`` (Keras 2.3.1 only)."""
    import keras

    results = {}
    for case_id, fn in cases():
        if case_id in results:
            raise ValueError("duplicate case id: " + case_id)
        results[case_id] = run_case(fn)
    path = golden_path(area)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    payload = {"keras": keras.__version__, "cases": results}
    tmp = path + ".tmp"
    with open(tmp, "w") as file:
        json.dump(payload, file, indent=0, sort_keys=True)
        file.write("\n")
    os.replace(tmp, path)
    sys.stderr.write(f"{area}: {len(results)} cases -> {path}\n")


def main(module_name, area, cases):
    """The recording scripts' entry point: record under Keras 2.3.1 only."""
    if module_name != "__main__":
        return
    import _shim

    if _shim.SIDE != "keras2":
        sys.exit("record the goldens with the real Keras 2.3.1 (nox -s oracle)")
    record(area, cases)

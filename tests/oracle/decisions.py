"""Every documented difference the goldens show: case-id patterns (fnmatch) per area,
each with the docs/compat.md entry that documents it and a check of kutils' behaviour.

An entry's anchor is ``(section heading, phrase)``: the phrase must appear in that
section of docs/compat.md (tests/test_oracle_decisions.py checks every anchor).
"""

from __future__ import annotations


class Decision:
    def __init__(self, section, phrase, check, may_match=False):
        self.anchor = (section, phrase)
        self.check = check
        # Rounding decisions: some values of a case come out the same on both sides.
        self.may_match = may_match

    def __repr__(self):
        return "Decision({!r}, {!r})".format(*self.anchor)


def raises(name):
    """kutils raises an exception that is an instance of the built-in ``name``."""
    return lambda actual, golden: name in actual.get("errors", ())


def same_value_close(rtol):
    """The same shape and dtype, values within ``rtol`` (a documented rounding change)."""

    def check(actual, golden):
        import numpy as np

        got, want = actual.get("value"), golden.get("value")
        if not isinstance(got, dict) or not isinstance(want, dict) or "nd" not in got:
            return False
        if (got["nd"], got["shape"]) != (want["nd"], want["shape"]):
            return False
        a = np.array(got["v"], dtype=float)
        b = np.array(want["v"], dtype=float)
        return bool(np.allclose(a, b, rtol=rtol, atol=0, equal_nan=True))

    return check


def within_ulps(ulps):
    """The same shape and dtype, each value within ``ulps`` units in the last place."""

    def check(actual, golden):
        import numpy as np

        got, want = actual.get("value"), golden.get("value")
        if not isinstance(got, dict) or not isinstance(want, dict) or "nd" not in got:
            return False
        if (got["nd"], got["shape"]) != (want["nd"], want["shape"]):
            return False
        dtype = np.dtype(got["nd"])
        a = np.array(got["v"], dtype=dtype)
        b = np.array(want["v"], dtype=dtype)
        spacing = np.abs(np.spacing(np.maximum(np.abs(a), np.abs(b))))
        return bool(np.all(np.abs(a.astype(float) - b.astype(float)) <= ulps * spacing))

    return check


def input_dtype_kept(dtype, ulps):
    """kutils returns ``dtype`` where Keras 2.3.1 (on numpy 1.x) returned float64; the
    values agree to within ``ulps`` of ``dtype``."""

    def check(actual, golden):
        import numpy as np

        got, want = actual.get("value"), golden.get("value")
        if not isinstance(got, dict) or got.get("nd") != dtype or got["shape"] != want["shape"]:
            return False
        a = np.array(got["v"], dtype=dtype)
        b = np.array(want["v"], dtype=float).astype(dtype)
        spacing = np.abs(np.spacing(np.maximum(np.abs(a), np.abs(b))))
        return bool(np.all(np.abs(a.astype(float) - b.astype(float)) <= ulps * spacing))

    return check


CATEGORICAL = "to_categorical"
NORMALIZE = "normalize"

DECISIONS = {
    "np_utils": [
        (
            "to_categorical/special/negative-label*",
            Decision(CATEGORICAL, "A negative label set a column", raises("ValueError")),
        ),
        (
            "to_categorical/special/fraction",
            Decision(CATEGORICAL, "A fractional label", raises("ValueError")),
        ),
        (
            "to_categorical/special/too-large",
            Decision(CATEGORICAL, "A label at or above `num_classes`", raises("ValueError")),
        ),
        (
            "normalize/float16/5/*/order=3",
            Decision(NORMALIZE, "returned float64 for a 1-D", input_dtype_kept("float16", 2)),
        ),
        (
            "normalize/float32/5/*/order=3",
            Decision(NORMALIZE, "returned float64 for a 1-D", input_dtype_kept("float32", 2)),
        ),
        (
            "normalize/*/order=3",
            Decision(
                NORMALIZE, "An `order` other than 1, 2 and `inf`", within_ulps(2), may_match=True
            ),
        ),
    ],
}

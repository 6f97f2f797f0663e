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
    return lambda actual, golden, case_id=None: name in actual.get("errors", ())


def same_value_close(rtol):
    """The same shape and dtype, values within ``rtol`` (a documented rounding change)."""

    def check(actual, golden, case_id=None):
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

    def check(actual, golden, case_id=None):
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

    def check(actual, golden, case_id=None):
        import numpy as np

        got, want = actual.get("value"), golden.get("value")
        if not isinstance(got, dict) or got.get("nd") != dtype or got["shape"] != want["shape"]:
            return False
        a = np.array(got["v"], dtype=dtype)
        b = np.array(want["v"], dtype=float).astype(dtype)
        spacing = np.abs(np.spacing(np.maximum(np.abs(a), np.abs(b))))
        return bool(np.all(np.abs(a.astype(float) - b.astype(float)) <= ulps * spacing))

    return check


def numpy_on_the_window(actual, golden, case_id):
    """kutils' ``m[key]`` is numpy's ``window[key]``: the same rows, or IndexError."""
    import numpy as np
    import record_hdf5_matrix as rec

    _, dataset, window, key_name = case_id.split("/")
    start, end = rec.WINDOWS[window]
    rows = (rec.X if dataset == "x" else rec.Y)[start:end]
    try:
        expected = {"value": _encode(np.asarray(rows[rec.key_for(key_name, len(rows))]))}
    except IndexError:
        return "IndexError" in actual.get("errors", ())
    return actual.get("value") == expected["value"]


def _encode(value):
    import _oracle

    return _oracle.encode(value)


CATEGORICAL = "to_categorical"
NORMALIZE = "normalize"

H5 = "HDF5Matrix"


def _h5(key_pattern, phrase):
    return ("hdf5/*/*/" + key_pattern, Decision(H5, phrase, numpy_on_the_window))


DECISIONS = {
    "hdf5_matrix": [
        _h5("int-minus-*", "A negative int counted from the end of the *dataset*"),
        (
            "hdf5/*/4:4/int-last",
            Decision(
                H5, "A negative int counted from the end of the *dataset*", numpy_on_the_window
            ),
        ),
        _h5("list-negative", "only the largest index was checked"),
        _h5("array-negative", "only the largest index was checked"),
        _h5("slice-minus-2", "Negative slice bounds"),
        _h5("slice-to-minus-1", "Negative slice bounds"),
        _h5("slice-step-*", "A slice step was ignored"),
        _h5("slice-*", "A slice with `stop` past `end`"),
        _h5("list-unsorted", "Unsorted or repeated indices"),
        _h5("array-unsorted", "Unsorted or repeated indices"),
        _h5("list-repeat", "Unsorted or repeated indices"),
        _h5("list-empty", "`m[[]]` raised"),
        _h5("array-empty", "`m[[]]` raised"),
        _h5("mask-*", "A boolean mask was treated as 0/1 row numbers"),
        _h5("tuple-row-col", "A tuple holding a slice"),
        (
            "hdf5/special/end-past-data",
            Decision(H5, "`start` and `end` were not validated", raises("ValueError")),
        ),
        ("hdf5/special/refs", Decision(H5, "`HDF5Matrix.refs`", raises("AttributeError"))),
    ],
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

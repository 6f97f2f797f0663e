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


def _without_progress(value):
    import copy

    value = copy.deepcopy(value)
    for call in value["calls"]:
        call["progress_on_stdout"] = False
    return value


def no_progress_on_stdout(actual, golden, case_id=None):
    """Keras 2.3.1's results and messages, without its progress bar on stdout."""
    return actual.get("value") == _without_progress(golden["value"])


def download_refused_for_its_hash(actual, golden, case_id=None):
    """The download whose bytes do not match ``file_hash`` raises ValueError and leaves
    nothing in the cache; the messages before it are Keras 2.3.1's."""
    got = actual.get("value")
    want = _without_progress(golden["value"])
    if not got or got["files"] != []:
        return False
    call, expected = got["calls"][0], want["calls"][0]
    return call.get("error") == "ValueError" and call["printed"] == expected["printed"]


def _strip_validation(value):
    """``value`` without its validation numbers: ``val_*`` entries of dicts, ``val_*``
    names in key lists, and `` - val_x: 0.1234`` in progress text."""
    import re

    if isinstance(value, dict):
        return {k: _strip_validation(v) for k, v in value.items() if not str(k).startswith("val_")}
    if isinstance(value, list):
        return [
            _strip_validation(v) for v in value if not (isinstance(v, str) and v.startswith("val_"))
        ]
    if isinstance(value, str):
        return re.sub(r" - val_\w+: [-0-9.e+]+", "", value)
    return value


def _validated_epochs(case_id):
    import record_fit_generator as rec

    spec = rec.SCENARIOS[case_id.split("/")[1]]
    freq = spec.get("validation_freq", 1)
    epochs = range(spec.get("initial_epoch", 0), spec.get("epochs", 1))
    if isinstance(freq, int):
        return [e for e in epochs if (e + 1) % freq == 0]
    return [e for e in epochs if e + 1 in freq]


def validation_as_means(actual, golden, case_id):
    """Everything but the validation numbers is Keras 2.3.1's; ``val_*`` appear on the
    validated epochs only (kutils' values are means over the validation batches)."""
    got, want = actual.get("value"), golden.get("value")
    if got is None or _strip_validation(got) != _strip_validation(want):
        return False
    aspect = case_id.split("/")[-1]
    validated = _validated_epochs(case_id)
    if aspect == "epoch_logs":
        return [("val_loss" in logs) for logs in got] == [i in validated for i in range(len(got))]
    if aspect == "history":
        return len(got.get("val_loss", [])) == len(validated)
    return True


def evaluation_as_mean(actual, golden, case_id=None):
    """The same batches read; the loss a number (the mean over the batches)."""
    got, want = actual.get("value"), golden.get("value")
    return got is not None and got[1] == want[1] and isinstance(got[0], float)


CATEGORICAL = "to_categorical"
NORMALIZE = "normalize"

H5 = "HDF5Matrix"


def _h5(key_pattern, phrase):
    return ("hdf5/*/*/" + key_pattern, Decision(H5, phrase, numpy_on_the_window))


GET_FILE = "get_file"
LEGACY = "Legacy module paths (np_utils, io_utils, data_utils, generic_utils, vis_utils, layer_utils, multi_gpu_utils, training_utils)"


def value_is(expected):
    return lambda actual, golden, case_id=None: (
        actual.get("value") == expected and "error" not in actual
    )


def _internal(case_id):
    return (case_id, Decision(LEGACY, "engine internals listed in", value_is(False)))


ENGINE_INTERNALS = [
    "legacy/data_utils/get_index",
    "legacy/data_utils/init_pool",
    "legacy/data_utils/init_pool_generator",
    "legacy/data_utils/next_sample",
    "legacy/generic_utils/check_for_unexpected_keys",
    "legacy/generic_utils/object_list_uid",
    "legacy/generic_utils/slice_arrays",
    "legacy/generic_utils/transpose_shape",
    "legacy/layer_utils/convert_dense_weights_data_format",
]

FIT = "fit_generator, evaluate_generator, predict_generator"
ENQUEUERS = "OrderedEnqueuer, GeneratorEnqueuer, SequenceEnqueuer"

SUMMARY = "print_summary"

DECISIONS = {
    "summary": [
        (
            "summary/error/unbuilt-sequential",
            Decision(
                SUMMARY,
                "printed the table's first lines",
                lambda a, g, c=None: "RuntimeError" in a.get("errors", ()) and "stdout" not in a,
            ),
        ),
    ],
    "fit_generator": [
        ("fit/seq-val-freq-*", Decision(FIT, "showed the previous epoch's", validation_as_means)),
        (
            "fit/*val*",
            Decision(FIT, "reported the loss of the last validation batch", validation_as_means),
        ),
        ("evaluate/*", Decision(FIT, "reported the loss of the last batch", evaluation_as_mean)),
        (
            "fit/seq-workers-1/reads",
            Decision(ENQUEUERS, "Read-ahead", lambda a, g, c=None: a.get("value", 0) >= g["value"]),
        ),
    ],
    "generic_utils": [
        *[_internal(case_id) for case_id in ENGINE_INTERNALS],
        *[
            (
                f"generic/{name}",
                Decision(LEGACY, "engine internals listed in", raises("AttributeError")),
            )
            for name in (
                "check_for_unexpected_keys",
                "object_list_uid",
                "slice_arrays",
                "transpose_shape",
            )
        ],
        ("legacy/io_utils/*", Decision(LEGACY, "`io_utils.H5Dict`/`h5dict`", value_is(False))),
        ("legacy/top/H5Dict", Decision(LEGACY, "`io_utils.H5Dict`/`h5dict`", value_is(False))),
        ("legacy/vis_utils/*", Decision(LEGACY, "`vis_utils.is_model`", value_is(False))),
        (
            "legacy/data_utils/iter_sequence_infinite",
            Decision(LEGACY, "`data_utils.iter_sequence_infinite`", value_is(True)),
        ),
        (
            "legacy/training_utils/multi_gpu_model",
            Decision(LEGACY, "`kutils.training_utils`", value_is(True)),
        ),
    ],
    "get_file": [
        (
            "get_file/wrong-*",
            Decision(
                GET_FILE,
                "A freshly downloaded file was never checked",
                download_refused_for_its_hash,
            ),
        ),
        (
            "get_file/*",
            Decision(GET_FILE, "The progress bar printed to stdout", no_progress_on_stdout),
        ),
    ],
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

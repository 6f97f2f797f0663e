"""Oracle cases for ``to_categorical`` and ``normalize`` (and their ``np_utils`` paths).

Random inputs come from ``numpy.random.RandomState``, whose streams are the same in
every numpy release, so both sides see the same data.
"""

from __future__ import annotations

import itertools

import numpy as np

import _oracle
import _shim

AREA = "np_utils"

LABEL_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
LABEL_SHAPES = [(0,), (1,), (7,), (12, 1), (3, 4), (2, 3, 1), (2, 2, 3)]
RESULT_DTYPES = ["float32", "float64", "float16", "int32", "uint8", "bool"]


def _labels(seed, shape, dtype, high=5):
    return np.random.RandomState(seed).randint(0, high, size=shape).astype(dtype)


def _categorical_cases():
    to_categorical = _shim.utils.to_categorical
    seed = 0
    for dtype, shape in itertools.product(LABEL_DTYPES, LABEL_SHAPES):
        for num_classes in (None, 5, 7):
            if shape == (0,) and num_classes is None:
                continue
            seed += 1
            y = _labels(seed, shape, dtype)
            name = "to_categorical/{}/{}/nc={}".format(
                dtype, "x".join(map(str, shape)), num_classes
            )
            yield name, (lambda y=y, n=num_classes: to_categorical(y, n))
    for dtype in RESULT_DTYPES:
        for shape in [(6,), (4, 1), (2, 3)]:
            seed += 1
            y = _labels(seed, shape, "int64")
            name = "to_categorical/result-dtype/{}/{}".format(dtype, "x".join(map(str, shape)))
            yield name, (lambda y=y, d=dtype: to_categorical(y, 5, dtype=d))
    for kind, make in [
        ("list", lambda y: y.tolist()),
        ("tuple", lambda y: tuple(y.tolist())),
        ("float64-whole", lambda y: y.astype("float64")),
        ("float32-whole", lambda y: y.astype("float32")),
        ("bool", lambda y: (y % 2).astype(bool)),
        ("str-digits", lambda y: y.astype(str)),
        ("object-int", lambda y: y.astype(object)),
    ]:
        for size in (1, 5, 9):
            seed += 1
            y = make(_labels(seed, (size,), "int64"))
            for num_classes in (None, 6):
                name = f"to_categorical/input-{kind}/n={size}/nc={num_classes}"
                yield name, (lambda y=y, n=num_classes: to_categorical(y, n))
    for label in range(6):
        yield (f"to_categorical/scalar/{label}", lambda v=label: to_categorical(v, 6))
    specials = {
        "negative-label": lambda: to_categorical([0, -1, 2], 3),
        "negative-label-inferred": lambda: to_categorical([0, -1, 2]),
        "fraction": lambda: to_categorical([0.5, 1.0], 3),
        "nan": lambda: to_categorical([np.nan, 1.0], 3),
        "too-large": lambda: to_categorical([0, 3], 3),
        "empty-no-classes": lambda: to_categorical(np.array([], dtype=int)),
        "empty-with-classes": lambda: to_categorical(np.array([], dtype=int), 4),
        "num-classes-zero": lambda: to_categorical([0, 2], 0),
        "num-classes-float": lambda: to_categorical([0, 1], 3.0),
        "none": lambda: to_categorical(None),
        "words": lambda: to_categorical(["a", "b"]),
        "trailing-1-1d": lambda: to_categorical(np.array([1]), 3),
        "shape-1x1": lambda: to_categorical(np.array([[2]]), 3),
        "shape-3x1x1": lambda: to_categorical(np.array([[[0]], [[1]], [[2]]]), 3),
        "big-num-classes": lambda: to_categorical([0, 1], 300).sum(axis=0),
    }
    for name, fn in specials.items():
        yield "to_categorical/special/" + name, fn


FLOAT_DTYPES = ["float16", "float32", "float64"]
NORM_SHAPES = [(5,), (3, 4), (2, 3, 4), (4, 1), (1, 6)]
ORDERS = [1, 2, np.inf, 3]


def _normalize_cases():
    normalize = _shim.utils.normalize
    seed = 1000
    for dtype, shape in itertools.product([*FLOAT_DTYPES, "int64"], NORM_SHAPES):
        for axis in range(-len(shape), len(shape)):
            for order in ORDERS:
                seed += 1
                x = np.random.RandomState(seed).uniform(-3, 3, size=shape)
                x = np.round(x).astype(dtype) if dtype == "int64" else x.astype(dtype)
                name = "normalize/{}/{}/axis={}/order={}".format(
                    dtype, "x".join(map(str, shape)), axis, order
                )
                yield name, (lambda x=x, a=axis, o=order: normalize(x, a, o))
    yield from _wide_normalize_cases(normalize)
    specials = {
        "zeros-row": lambda: normalize(np.array([[0.0, 0.0], [3.0, 4.0]])),
        "all-zeros": lambda: normalize(np.zeros((2, 3))),
        "list": lambda: normalize([[3.0, 4.0]]),
        "list-1d": lambda: normalize([3, 4]),
        "nan": lambda: normalize(np.array([[np.nan, 1.0]])),
        "inf": lambda: normalize(np.array([[np.inf, 1.0]])),
        "axis-out-of-range": lambda: normalize(np.ones((2, 2)), axis=2),
        "axis-none": lambda: normalize(np.ones((2, 2)), axis=None),
        "default-args-3d": lambda: normalize(np.arange(24.0).reshape(2, 3, 4)),
        "input-unchanged": lambda: _unchanged(normalize),
        "order-0": lambda: normalize(np.array([[1.0, 0.0, 2.0]]), order=0),
    }
    for name, fn in specials.items():
        yield "normalize/special/" + name, fn


def _wide_normalize_cases(normalize):
    """Rows and columns of 300 values: long enough for numpy's pairwise summation to
    split them (a sum of 8 or fewer values is a plain loop), and for kutils to read
    rows by blocks."""
    seed = 2000
    for dtype, (shape, axis), order in itertools.product(
        FLOAT_DTYPES, [((2, 300), -1), ((300, 2), 0)], [1, 2, np.inf]
    ):
        seed += 1
        x = np.random.RandomState(seed).uniform(-3, 3, size=shape).astype(dtype)
        name = "normalize/wide/{}/{}/axis={}/order={}".format(
            dtype, "x".join(map(str, shape)), axis, order
        )
        yield name, (lambda x=x, a=axis, o=order: normalize(x, a, o))


def _unchanged(normalize):
    x = np.array([[3.0, 4.0]])
    normalize(x)
    return x


def _legacy_cases():
    np_utils = _shim.legacy("np_utils")
    yield "np_utils/to_categorical", lambda: np_utils.to_categorical([1, 0, 2])
    yield "np_utils/normalize", lambda: np_utils.normalize([[1.0, 1.0]])
    yield "np_utils/same-object", lambda: np_utils.to_categorical is _shim.utils.to_categorical


def cases():
    yield from _categorical_cases()
    yield from _normalize_cases()
    yield from _legacy_cases()


_oracle.main(__name__, AREA, cases)

"""normalize's block-by-block path gives numpy's result bit for bit, and makes no large temporary.

Keras 2.3.1 computed ``x / expand_dims(norm, axis)`` with ``norm = numpy.linalg.norm(x,
order, axis)`` (zero norms set to 1). kutils works through the rows in cache-sized blocks
where that gives the same bits; these tests compare the bytes of both results.
"""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest

from kutils import normalize
from kutils.categorical import _normalize_rows, _row_norm_kind


def _keras_2_normalize(x, axis, order):
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis)


def _assert_same_bits(result, expected):
    assert result.shape == expected.shape
    assert result.dtype == expected.dtype
    assert result.tobytes() == expected.tobytes()


def _data(shape, dtype, seed=0, scale=1.0):
    """Normal values with some zeros, a zero row, and a NaN and an inf when large enough."""
    x = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)
    flat = x.reshape(-1)
    flat[::37] = 0
    if x.ndim and x.shape[0] > 2:
        x[1] = 0
    if x.size > 60:
        flat[13], flat[41] = np.nan, -np.inf
    return x


SHAPES = [(1, 1), (1, 7), (7, 1), (3, 5), (2, 3, 4), (4, 1, 130), (300, 257), (3, 8193)]
ORDERS = [2, 1, np.inf, None, 2.0, True, 3, 0, -np.inf, 0.5]
FLOATS = [np.float16, np.float32, np.float64]


@pytest.mark.parametrize("order", ORDERS, ids=repr)
@pytest.mark.parametrize("dtype", [*FLOATS, np.int64, np.int8, np.uint16])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_last_axis_matches_keras_2_bit_for_bit(shape, dtype, order):
    x = _data(shape, dtype) if np.dtype(dtype).kind == "f" else _ints(shape, dtype)
    with np.errstate(all="ignore"):  # NaN, inf and float16 overflow, on both sides alike
        _assert_same_bits(normalize(x, -1, order), _keras_2_normalize(x, -1, order))


def _ints(shape, dtype):
    info = np.iinfo(dtype)
    x = np.random.default_rng(0).integers(info.min, info.max, size=shape, dtype=dtype)
    x.reshape(-1)[::5] = 0
    return x


@pytest.mark.parametrize("order", [2, 1, np.inf, 3], ids=repr)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("axis", [0, 1, -2, 2])
def test_other_axes_match_keras_2_bit_for_bit(axis, dtype, order):
    x = _data((6, 5, 300), dtype)
    with np.errstate(all="ignore"):
        _assert_same_bits(normalize(x, axis, order), _keras_2_normalize(x, axis, order))


@pytest.mark.parametrize(
    "view",
    [
        lambda x: x[:, ::2],  # strided rows
        lambda x: x[::3],  # rows skipped
        lambda x: x.T,  # Fortran order
        lambda x: np.asfortranarray(x),
        lambda x: x.astype(x.dtype.newbyteorder()),  # byte-swapped values
        lambda x: np.frombuffer(b"\0" + x.tobytes(), dtype=x.dtype, offset=1).reshape(x.shape),
    ],
    ids=["strided-rows", "skipped-rows", "transposed", "fortran", "byteswapped", "unaligned"],
)
@pytest.mark.parametrize("dtype", FLOATS)
def test_other_layouts_match_keras_2_bit_for_bit(view, dtype):
    x = view(_data((40, 300), dtype))
    with np.errstate(all="ignore"):
        _assert_same_bits(normalize(x, -1, 2), _keras_2_normalize(x, -1, 2))


@pytest.mark.parametrize(("kind", "order"), [("l2", 2), ("l1", 1), ("max", np.inf)])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("block_bytes", [1, 100, 4096, 1 << 30])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (257, 300), (2, 3, 1000), (5, 70001)], ids=str)
def test_any_block_size_gives_the_same_bits(shape, block_bytes, dtype, kind, order):
    # Blocks of 1 row up to the whole array, with a partial last block in between.
    for scale in (1.0, 1e4, 1e-30):  # float16 overflows and underflows, float32 underflows
        x = _data(shape, dtype, seed=len(shape), scale=scale)
        with np.errstate(all="ignore"):
            _assert_same_bits(
                _normalize_rows(x, kind, block_bytes), _keras_2_normalize(x, -1, order)
            )


def test_large_input_crosses_many_blocks_bit_for_bit():
    x = np.random.default_rng(3).random((20_000, 512), dtype=np.float32)
    x[::997] = 0
    _assert_same_bits(normalize(x), _keras_2_normalize(x, -1, 2))


@pytest.mark.parametrize(
    ("x", "axis", "order", "kind"),
    [
        (np.ones((4, 3), np.float32), -1, 2, "l2"),
        (np.ones((4, 3), np.float64), 1, None, "l2"),
        (np.ones((2, 4, 3), np.float16), 2, 1, "l1"),
        (np.ones((4, 3), np.float32), -1, np.inf, "max"),
        (np.ones((4, 3), np.float32), 0, 2, None),  # columns: numpy sums them row by row
        (np.ones(3, np.float32), -1, 2, None),  # 1-D: the plain formula gives shape (1, n)
        (np.ones((4, 3), np.int64), -1, 2, None),
        (np.ones((4, 3), np.complex64), -1, 2, None),
        (np.ones((4, 3), np.longdouble), -1, 2, None),
        (np.ones((4, 6), np.float32)[:, ::2], -1, 2, None),
        (np.ones((0, 3), np.float32), -1, 2, None),
        (np.ones((4, 3), np.float32), -1, 3, None),
        (np.ones((4, 3), np.float32), -1, "fro", None),
    ],
)
def test_block_path_is_taken_only_where_it_is_exact(x, axis, order, kind):
    assert _row_norm_kind(x, axis, order) == kind


def test_invalid_order_is_rejected_as_numpy_rejects_it():
    with pytest.raises(ValueError, match="Invalid norm order"):
        normalize(np.ones((2, 3), np.float32), order="fro")


def test_no_temporary_as_large_as_the_input():
    # Keras's formula holds x * x (the input's size) beside the output; blocks do not.
    x = np.random.default_rng(0).random((4096, 512), dtype=np.float32)
    tracemalloc.start()
    try:
        result = normalize(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.nbytes <= peak < 1.25 * result.nbytes


@pytest.mark.parametrize(("dtype", "order"), list(itertools.product(FLOATS, [2, 1, np.inf])))
def test_zero_rows_stay_zero_without_warning(dtype, order):
    x = np.zeros((3, 5), dtype=dtype)
    x[1] = [3, 4, 0, 0, 0]
    with np.errstate(all="raise"):
        result = normalize(x, order=order)
    assert not result[[0, 2]].any()
    _assert_same_bits(result, _keras_2_normalize(x, -1, order))

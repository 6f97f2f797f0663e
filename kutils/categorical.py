"""``to_categorical`` and ``normalize``: the Keras 2 ``np_utils`` functions, in numpy.

Both return numpy arrays for every input (lists, tuples, numpy arrays, TensorFlow or
Keras eager tensors), keep the Keras 2 defaults (``to_categorical`` returns float32,
Keras 3 returns float64) and need neither TensorFlow nor Keras.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["ArgumentTypeError", "normalize", "to_categorical"]


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type: Keras 2.3.1 raised ``TypeError`` there, and earlier
    kutils ``ValueError``; code catching either keeps working."""


def to_categorical(
    y: Any, num_classes: int | None = None, dtype: npt.DTypeLike = "float32"
) -> np.ndarray:
    """Convert a class vector (integers) to a binary class matrix.

    The same as ``keras.utils.to_categorical`` of Keras 2.3.1, for use with
    ``categorical_crossentropy``.

    Args:
        y: class labels, integers from 0 to ``num_classes - 1``: a list, tuple, numpy
            array or eager tensor of any shape. Floats are accepted when they hold whole
            numbers (``2.0``).
        num_classes: total number of classes. ``None`` or ``0`` means ``max(y) + 1``.
        dtype: the dtype of the result, ``'float32'`` by default.

    Returns:
        A numpy array of shape ``y.shape + (num_classes,)``, where a trailing axis of
        size 1 is dropped first when ``y`` has two or more dimensions (so ``(n, 1)``
        labels give ``(n, num_classes)``).

    Raises:
        ValueError: a label is negative, not below ``num_classes``, or not a whole
            number; or ``y`` is empty and ``num_classes`` is not given.

    Differences:
        Keras 2 wrapped negative labels round to the last columns and truncated 1.5 to
        class 1 without a word; kutils raises ``ValueError`` for both. Keras 3 has no
        ``dtype`` argument and returns float64.

    Example:
        >>> to_categorical([0, 2, 1], num_classes=3)
        array([[1., 0., 0.],
               [0., 0., 1.],
               [0., 1., 0.]], dtype=float32)
    """
    labels = _as_label_array(y)
    input_shape = labels.shape
    if input_shape and input_shape[-1] == 1 and len(input_shape) > 1:
        input_shape = input_shape[:-1]
    labels = labels.reshape(-1)
    n = labels.shape[0]

    if num_classes is not None and (
        not isinstance(num_classes, numbers.Integral) or num_classes < 0
    ):
        msg = (
            f"num_classes must be a positive integer or None. Received: num_classes={num_classes!r}"
        )
        # Keras 2.3.1 raised TypeError for a num_classes of another type (3.0).
        error = ValueError if isinstance(num_classes, numbers.Integral) else ArgumentTypeError
        raise error(msg)
    if n:
        # In the labels' own dtype: a cast first would wrap uint64 labels above 2**63
        # round to negative numbers.
        _check_not_negative(labels, num_classes)
    if num_classes is None or num_classes == 0:
        if n == 0:
            msg = (
                "Cannot infer the number of classes from an empty label array: pass "
                "num_classes. Received: y with shape "
                f"{np.shape(labels)} and num_classes={num_classes!r}"
            )
            raise ValueError(msg)
        high = labels.max()
        if int(high) >= np.iinfo(np.intp).max:
            msg = (
                f"to_categorical found the label {high.item()!r}, too large to infer "
                "num_classes from (it would need that many columns). Check the labels or "
                f"pass num_classes. Received: num_classes={num_classes!r}, y with dtype "
                f"{labels.dtype}"
            )
            raise ValueError(msg)
        total = int(high) + 1
    else:
        total = int(num_classes)
        if n:
            _check_below(labels, num_classes)

    # np.zeros gets lazily zeroed pages from the OS, so only the rows written below are
    # touched: much faster than a filled buffer when num_classes is large.
    categorical = np.zeros((n, total), dtype=dtype)
    categorical[np.arange(n), labels.astype(np.intp, copy=False)] = 1
    return categorical.reshape((*input_shape, total))


def _as_label_array(y: Any) -> np.ndarray:
    """The labels as a numpy array of whole numbers, in their own dtype when numeric."""
    if hasattr(y, "numpy") and not isinstance(y, np.ndarray):
        y = y.numpy()  # eager TensorFlow / Keras tensors, without importing TensorFlow
    if y is None:
        msg = "to_categorical expects integer class labels. Received: y=None"
        raise ArgumentTypeError(msg)  # Keras 2.3.1 raised TypeError
    try:
        array = np.asarray(y)
        if array.dtype.kind == "O":
            # An object array of numbers (a pandas object column): Keras 2 accepted it.
            array = np.asarray(array.tolist())
    except (TypeError, ValueError) as exc:
        msg = (
            "to_categorical expects integer class labels (a list, tuple, numpy array or "
            f"tensor). Received: y of type {type(y).__name__}"
        )
        raise ValueError(msg) from exc
    kind = array.dtype.kind
    if kind in "iu":
        return array
    if kind == "b":
        return array.astype(np.int8)
    if kind in "US":  # Keras 2 accepted numeric strings such as '3'
        try:
            return array.astype(np.int64)
        except (ValueError, OverflowError) as exc:
            msg = f"to_categorical expects integer class labels. Received: y={array!r}"
            raise ValueError(msg) from exc
    if kind == "f":
        whole = np.isfinite(array) & (array == np.floor(array))
        if not whole.all():
            bad = array.reshape(-1)[~whole.reshape(-1)][0]
            msg = (
                f"to_categorical expects whole-number class labels, but found {bad!r}. "
                "Round or cast the labels to integers first. Received: y with dtype "
                f"{array.dtype}"
            )
            raise ValueError(msg)
        return array
    msg = f"to_categorical expects integer class labels. Received: y with dtype {array.dtype}"
    raise ValueError(msg)


def _check_not_negative(labels: np.ndarray, num_classes: int | None) -> None:
    low = labels.min()
    if low < 0:
        msg = (
            f"to_categorical found the negative label {low.item()!r}; labels must be in "
            f"[0, num_classes). Received: num_classes={num_classes!r}, y with dtype "
            f"{labels.dtype}"
        )
        raise ValueError(msg)


def _check_below(labels: np.ndarray, num_classes: int) -> None:
    high = labels.max()
    if high >= num_classes:
        msg = (
            f"to_categorical found the label {high.item()!r}, which is not below "
            "num_classes; labels must be in [0, num_classes). Pass a larger num_classes "
            f"or None to infer it. Received: num_classes={num_classes!r}, y with dtype "
            f"{labels.dtype}"
        )
        raise ValueError(msg)


def normalize(x: Any, axis: int = -1, order: float = 2) -> np.ndarray:
    """Normalize an array to unit norm along one axis.

    The same as ``keras.utils.normalize`` of Keras 2.3.1: vectors whose norm is zero
    are left as zeros (no NaN, no warning) and the input is never modified.

    Args:
        x: a numpy array, list, or eager tensor.
        axis: the axis along which to normalize; any axis, negative ones included.
        order: the order of the norm, as ``ord`` of ``numpy.linalg.norm``: 2 (the
            default) for L2, 1 for L1, ``numpy.inf`` for the largest absolute value.

    Returns:
        A new numpy array of the same shape (a 1-D input gives shape ``(1, n)``, as in
        Keras 2). Floating-point inputs (float16, float32, float64) keep their dtype;
        integer inputs give float64.

    Raises:
        ValueError: ``axis`` is outside the array's dimensions.

    Differences:
        Keras 3.15 treats ``axis=0`` as ``-1`` and returns a backend tensor for lists
        and tensors; kutils normalizes along the axis asked and always returns numpy.

    Example:
        >>> normalize([[3.0, 4.0], [0.0, 0.0]])
        array([[0.6, 0.8],
               [0. , 0. ]])
    """
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    array = np.asarray(x)
    if not isinstance(axis, numbers.Integral) or not -array.ndim <= axis < max(array.ndim, 1):
        msg = (
            f"axis must be an integer in [-{array.ndim}, {array.ndim}) for an input of "
            f"shape {array.shape}. Received: axis={axis!r}"
        )
        # Keras 2.3.1 raised TypeError for an axis that is not an integer (None).
        raise (ValueError if isinstance(axis, numbers.Integral) else ArgumentTypeError)(msg)
    # Keras 2.3.1's arithmetic, step for step: numpy's norm, then a division. A faster
    # formula (a reciprocal, einsum's summation order) differs in the last bit.
    kind = _row_norm_kind(array, int(axis), order)
    if kind is not None:
        return _normalize_rows(array, kind)
    norm = np.atleast_1d(np.linalg.norm(array, order, int(axis)))
    norm[norm == 0] = 1
    return np.divide(array, np.expand_dims(norm, int(axis)))


# normalize works through the rows in blocks of about this many bytes: a block and its
# squares stay in the CPU cache (L2, else L3) from squaring to dividing, and no temporary
# as large as the input is made. On a 200,000 x 512 float32 input, blocks of 512 KiB to
# 1 MiB took about 6% less CPU than 256 KiB, and 128 KiB about 8% more (many more calls).
_BLOCK_BYTES = 512 << 10


def _row_norm_kind(array: np.ndarray, axis: int, order: Any) -> str | None:
    """``'l2'``, ``'l1'`` or ``'max'`` when ``normalize`` may work block by block, else None.

    Blocks give numpy's exact result where each row is reduced by itself, in one pass
    over contiguous memory, by the loop numpy's norm uses: C-contiguous, aligned,
    native float16/32/64 data normalized along its last axis. ``order`` is matched with
    the tests of ``numpy.linalg.norm``, in its order.
    """
    if (
        array.dtype.type not in (np.float16, np.float32, np.float64)
        or not array.dtype.isnative
        or array.ndim < 2
        or axis % array.ndim != array.ndim - 1
        or array.size == 0
        or not (array.flags.c_contiguous and array.flags.aligned)
    ):
        return None
    try:
        if order == np.inf:
            return "max"
        if order == -np.inf or order == 0:
            return None
        if order == 1:
            return "l1"
        if order is None or order == 2:
            return "l2"
    except (TypeError, ValueError):  # an order numpy's norm rejects: let it say why
        return None
    return None


def _normalize_rows(array: np.ndarray, kind: str, block_bytes: int = _BLOCK_BYTES) -> np.ndarray:
    """Keras 2.3.1's normalize along the last axis of ``array``, a block of rows at a time.

    The same ufuncs as ``numpy.linalg.norm`` (``x * x``, ``add.reduce``, ``sqrt``; or
    ``abs`` with ``add.reduce`` or ``maximum.reduce``), then the zero fix and the
    division, on each block of whole rows; every row meets the same operations in the
    same order as in one call on the whole array, so the result is bit for bit the same.
    """
    width = array.shape[-1]
    rows = array.reshape(-1, width)
    out = np.empty_like(array)
    out_rows = out.reshape(-1, width)
    step = max(1, block_bytes // (width * array.itemsize))
    values = np.empty((min(step, len(rows)), width), dtype=array.dtype)
    norm = np.empty(len(values), dtype=array.dtype)
    column = norm[:, np.newaxis]
    for first in range(0, len(rows), step):
        block = rows[first : first + step]
        if len(block) < len(norm):  # the last block, shorter
            values, norm, column = values[: len(block)], norm[: len(block)], column[: len(block)]
        if kind == "l2":
            np.multiply(block, block, out=values)
            np.add.reduce(values, axis=1, out=norm)
            np.sqrt(norm, out=norm)
        else:
            np.absolute(block, out=values)
            if kind == "l1":
                np.add.reduce(values, axis=1, out=norm)
            else:
                np.maximum.reduce(values, axis=1, out=norm, initial=0)
        if not norm.all():
            norm[norm == 0] = 1
        np.divide(block, column, out=out_rows[first : first + step])
    return out

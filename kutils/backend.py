"""Keras 2 ``keras.backend`` functions whose Keras 3 namesake means something else.

Keras 3 moved the tensor functions of ``keras.backend`` to ``keras.ops`` and
``keras.random``. Most kept their meaning there, and ``kutils migrate`` rewrites
``K.mean`` to ``keras.ops.mean`` and so on. The functions here are the others: their
Keras 3 counterpart has another default (``keras.ops.concatenate`` joins on axis 0,
``K.concatenate`` on the last axis), other argument names (``keras.ops.clip(x, x_min,
x_max)``), another result (``keras.ops.argmax`` gives int32, ``K.argmax`` int64) or no
namesake at all (``K.batch_flatten``). Each function below takes the arguments of its
Keras 2.3.1 namesake and computes what it computed, with ``keras.ops``; ``kutils migrate``
rewrites ``K.clip(...)`` to ``kutils.backend.clip(...)``.

Example:
    >>> import numpy as np
    >>> from kutils import backend
    >>> x = np.array([[1.0, 2.0], [3.0, 4.0]], dtype="float32")
    >>> tuple(backend.concatenate([x, x]).shape)
    (2, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "argmax",
    "argmin",
    "batch_dot",
    "batch_flatten",
    "clip",
    "concatenate",
    "cumsum",
    "equal",
    "expand_dims",
    "flatten",
    "gather",
    "greater",
    "greater_equal",
    "hard_sigmoid",
    "int_shape",
    "l2_normalize",
    "less",
    "less_equal",
    "map_fn",
    "maximum",
    "minimum",
    "not_equal",
    "one_hot",
    "ones_like",
    "permute_dimensions",
    "pow",
    "relu",
    "repeat_elements",
    "reshape",
    "shape",
    "sqrt",
    "tile",
    "zeros_like",
]


def _ops() -> Any:
    from keras import ops

    return ops


def concatenate(tensors: Sequence[Any], axis: int = -1) -> Any:
    """Join ``tensors`` along ``axis``, the last one unless told (``keras.ops``: the first)."""
    return _ops().concatenate(list(tensors), axis=axis)


def expand_dims(x: Any, axis: int = -1) -> Any:
    """Add an axis of size 1 at ``axis``, the end unless told (``keras.ops``: required)."""
    return _ops().expand_dims(x, axis)


def argmax(x: Any, axis: int = -1) -> Any:
    """The int64 index of the largest value along ``axis`` (``keras.ops``: int32, flattened)."""
    ops = _ops()
    return ops.cast(ops.argmax(x, axis=axis), "int64")


def argmin(x: Any, axis: int = -1) -> Any:
    """The int64 index of the smallest value along ``axis`` (``keras.ops``: int32, flattened)."""
    ops = _ops()
    return ops.cast(ops.argmin(x, axis=axis), "int64")


def sqrt(x: Any) -> Any:
    """The square root of ``x`` with negative values taken as 0 (``keras.ops``: NaN)."""
    ops = _ops()
    x = ops.convert_to_tensor(x)
    return ops.sqrt(ops.clip(x, ops.zeros_like(x), float("inf")))


def maximum(x: Any, y: Any) -> Any:
    """The larger of ``x`` and ``y``, element by element (``keras.ops``: ``x1``, ``x2``)."""
    return _ops().maximum(x, y)


def minimum(x: Any, y: Any) -> Any:
    """The smaller of ``x`` and ``y``, element by element (``keras.ops``: ``x1``, ``x2``)."""
    return _ops().minimum(x, y)


def pow(x: Any, a: Any) -> Any:
    """``x`` to the power ``a`` (``keras.ops.power(x1, x2)``)."""
    return _ops().power(x, a)


def clip(x: Any, min_value: Any, max_value: Any) -> Any:
    """``x`` clipped to ``[min_value, max_value]`` as Keras 2 clipped it.

    ``None`` is no bound, and a ``max_value`` below ``min_value`` (both numbers) is raised
    to it; ``keras.ops.clip`` takes ``x_min`` and ``x_max`` and does neither.
    """
    if isinstance(min_value, (int, float)) and isinstance(max_value, (int, float)):
        max_value = max(max_value, min_value)
    if min_value is None:
        min_value = float("-inf")
    if max_value is None:
        max_value = float("inf")
    return _ops().clip(x, min_value, max_value)


def flatten(x: Any) -> Any:
    """``x`` as one flat vector."""
    return _ops().reshape(x, (-1,))


def batch_flatten(x: Any) -> Any:
    """``x`` as a matrix: its first axis kept, the others flattened into the second."""
    ops = _ops()
    rest = (int_shape(x) or (None, None))[1:]
    if all(dim is not None for dim in rest):
        size = 1
        for dim in rest:
            size *= dim  # type: ignore[operator]
        return ops.reshape(x, (-1, size))
    return ops.reshape(x, (-1, ops.prod(shape(x)[1:])))


def l2_normalize(x: Any, axis: int | Sequence[int] | None = None) -> Any:
    """``x`` divided by its L2 norm along ``axis`` (all axes when None).

    As TensorFlow's ``tf.nn.l2_normalize``, which Keras 2 called: the squared norm is
    at least 1e-12, so a zero vector stays zero.
    """
    ops = _ops()
    squares = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return ops.multiply(x, ops.rsqrt(ops.maximum(squares, 1e-12)))


def int_shape(x: Any) -> tuple[int | None, ...] | None:
    """The shape of ``x`` as a tuple of ints (None where unknown), or None if its rank is."""
    dims = getattr(x, "shape", None)
    if dims is None:
        dims = _ops().shape(x)
    if getattr(dims, "rank", 0) is None:
        return None
    return tuple(None if d is None else int(d) for d in dims)


def shape(x: Any) -> Any:
    """The shape of ``x`` as an int32 tensor, known at run time (``keras.ops``: a tuple)."""
    import tensorflow as tf

    return tf.shape(x)


def reshape(x: Any, shape: Any) -> Any:
    """``x`` reshaped to ``shape`` (``keras.ops.reshape(x, newshape)``)."""
    return _ops().reshape(x, shape)


def permute_dimensions(x: Any, pattern: Sequence[int]) -> Any:
    """``x`` with its axes in the order ``pattern`` (``keras.ops.transpose(x, axes)``)."""
    return _ops().transpose(x, tuple(pattern))


def gather(reference: Any, indices: Any) -> Any:
    """The rows ``indices`` of ``reference`` (``keras.ops.take(x, indices, axis=0)``)."""
    return _ops().take(reference, indices, axis=0)


def repeat_elements(x: Any, rep: int, axis: int) -> Any:
    """Each element of ``x`` repeated ``rep`` times along ``axis`` (``keras.ops.repeat``)."""
    return _ops().repeat(x, rep, axis=axis)


def ones_like(x: Any, dtype: Any = None, name: str | None = None) -> Any:
    """Ones of the shape of ``x``, of ``dtype`` or else ``floatx()`` (``keras.ops``: of x's).

    ``name`` is accepted and unused, as Keras 3 names no tensor.
    """
    from keras import backend

    return _ops().ones_like(x, dtype=dtype or backend.floatx())


def zeros_like(x: Any, dtype: Any = None, name: str | None = None) -> Any:
    """Zeros of the shape of ``x``, of ``dtype`` or else ``floatx()`` (``keras.ops``: of x's).

    ``name`` is accepted and unused, as Keras 3 names no tensor.
    """
    from keras import backend

    return _ops().zeros_like(x, dtype=dtype or backend.floatx())


def relu(x: Any, alpha: float = 0.0, max_value: float | None = None, threshold: float = 0.0) -> Any:
    """Keras 2's rectifier: leaky below ``threshold`` by ``alpha``, capped at ``max_value``.

    ``keras.ops.relu`` takes only ``x``; this computes Keras 2.3.1's formula.
    """
    ops = _ops()
    x = ops.convert_to_tensor(x)
    if alpha != 0.0 and max_value is None and threshold == 0.0:
        return ops.leaky_relu(x, negative_slope=alpha)
    negative = ops.relu(threshold - x) if alpha != 0.0 else None
    if threshold != 0.0:
        from keras import backend

        y = x * ops.cast(ops.greater(x, threshold), backend.floatx())
    else:
        y = ops.relu(x)
    if max_value is not None:
        y = ops.clip(y, 0.0, max_value)
    if negative is not None:
        y = y - alpha * negative
    return y


def equal(x: Any, y: Any) -> Any:
    """Whether ``x`` equals ``y``, element by element (``keras.ops``: ``x1``, ``x2``)."""
    return _ops().equal(x, y)


def not_equal(x: Any, y: Any) -> Any:
    """Whether ``x`` differs from ``y``, element by element (``keras.ops``: ``x1``, ``x2``)."""
    return _ops().not_equal(x, y)


def greater(x: Any, y: Any) -> Any:
    """Whether ``x > y``, element by element (``keras.ops``: ``x1``, ``x2``)."""
    return _ops().greater(x, y)


def greater_equal(x: Any, y: Any) -> Any:
    """Whether ``x >= y``, element by element (``keras.ops``: ``x1``, ``x2``)."""
    return _ops().greater_equal(x, y)


def less(x: Any, y: Any) -> Any:
    """Whether ``x < y``, element by element (``keras.ops``: ``x1``, ``x2``)."""
    return _ops().less(x, y)


def less_equal(x: Any, y: Any) -> Any:
    """Whether ``x <= y``, element by element (``keras.ops``: ``x1``, ``x2``)."""
    return _ops().less_equal(x, y)


def cumsum(x: Any, axis: int = 0) -> Any:
    """The running sum of ``x`` along ``axis``, the first unless told (``keras.ops``: flat)."""
    return _ops().cumsum(x, axis=axis)


def tile(x: Any, n: Any) -> Any:
    """``x`` repeated ``n[i]`` times along each axis ``i`` (``keras.ops.tile(x, repeats)``)."""
    return _ops().tile(x, n)


def one_hot(indices: Any, num_classes: int) -> Any:
    """The one-hot float encoding of integer ``indices`` (``keras.ops.one_hot(x, ...)``)."""
    return _ops().one_hot(indices, num_classes)


def hard_sigmoid(x: Any) -> Any:
    """Keras 2's hard sigmoid, ``clip(0.2 * x + 0.5, 0, 1)``.

    ``keras.ops.hard_sigmoid`` is ``relu6(x + 3) / 6``: slope 1/6, saturating at +-3
    instead of +-2.5.
    """
    ops = _ops()
    x = ops.convert_to_tensor(x)
    return ops.clip(ops.add(ops.multiply(x, 0.2), 0.5), 0.0, 1.0)


def batch_dot(x: Any, y: Any, axes: int | Sequence[int] | None = None) -> Any:
    """Keras 2.3.1's batchwise dot product of ``x`` and ``y`` (no ``keras.ops`` namesake).

    For each sample ``i`` of the batch (axis 0 of both), the dot product of ``x[i]`` and
    ``y[i]`` over axis ``axes[0]`` of ``x`` and ``axes[1]`` of ``y`` (an int: the same
    axis of both; None: the last of ``x`` with the last of a rank-2 ``y``, else its
    second to last). The result's axes are ``x``'s without the summed one, then ``y``'s
    without its batch axis and the summed one; a result of rank 1 becomes ``(batch, 1)``.

    This is the meaning Keras 2.2.5 gave ``batch_dot`` and 2.3.1 kept. Keras 2.2.4 and
    earlier computed something else when the ranks of ``x`` and ``y`` differ (a
    ``matmul`` over their last two axes): code written for those releases, such as a
    capsule layer's ``batch_dot(x, W, [2, 3])`` of a rank-3 ``x`` and a rank-4 ``W``,
    gets Keras 2.3.1's larger result here, or its error.

    Raises:
        ValueError: as Keras 2.3.1 did, for a rank below 2, different batch sizes, a
            summed axis 0 or of different lengths, or more than one axis per tensor.
    """
    x_shape = int_shape(x) or ()
    y_shape = int_shape(y) or ()
    received = f"Received: x.shape={x_shape}, y.shape={y_shape}, axes={axes}"
    if len(x_shape) < 2 or len(y_shape) < 2:
        raise ValueError(f"batch_dot needs tensors of rank 2 or more. {received}")
    if None not in (x_shape[0], y_shape[0]) and x_shape[0] != y_shape[0]:
        raise ValueError(f"batch_dot needs the same batch size for x and y. {received}")
    pair = _batch_dot_axes(axes, len(x_shape), len(y_shape), received)
    x_length, y_length = x_shape[pair[0]], y_shape[pair[1]]
    if None not in (x_length, y_length) and x_length != y_length:
        raise ValueError(
            f"batch_dot sums x's axis {pair[0]} (length {x_length}) with y's axis "
            f"{pair[1]} (length {y_length}): the lengths must be equal. {received}"
        )
    letters = "bcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    x_letters = "a" + letters[: len(x_shape) - 1]
    y_letters = ["a", *letters[len(x_shape) - 1 : len(x_shape) + len(y_shape) - 2]]
    y_letters[pair[1]] = x_letters[pair[0]]
    kept = x_letters.replace(x_letters[pair[0]], "")
    kept += "".join(y_letters[1 : pair[1]] + y_letters[pair[1] + 1 :])
    ops = _ops()
    result = ops.einsum(f"{x_letters},{''.join(y_letters)}->{kept}", x, y)
    return ops.expand_dims(result, 1) if len(kept) == 1 else result


def _batch_dot_axes(axes: Any, x_rank: int, y_rank: int, received: str) -> tuple[int, int]:
    """Keras 2.3.1's pair of summed axes of ``batch_dot``, both made non-negative."""
    if isinstance(axes, int):
        axes = (axes, axes)
    if axes is None:
        axes = (x_rank - 1, y_rank - 1 if y_rank == 2 else y_rank - 2)
    if any(isinstance(axis, (list, tuple)) for axis in axes):
        raise ValueError(f"batch_dot sums one axis of x and one of y. {received}")
    first, second = (int(axis) for axis in axes)
    first += x_rank if first < 0 else 0
    second += y_rank if second < 0 else 0
    if 0 in (first, second):
        msg = (
            "batch_dot cannot sum over the batch axis 0; to treat unbatched tensors as one "
            f"batch, add an axis with expand_dims(x, 0). {received}"
        )
        raise ValueError(msg)
    return first, second


def map_fn(fn: Any, elems: Any, name: str | None = None, dtype: Any = None) -> Any:
    """``fn`` applied to each slice ``elems[i]``, the results stacked (``tf.map_fn``).

    ``dtype`` is the results' dtype when it differs from ``elems``' (Keras 2's argument,
    TensorFlow's ``fn_output_signature``); ``keras.ops.map`` has neither ``dtype`` nor
    ``name``.
    """
    import tensorflow as tf

    return tf.map_fn(fn, elems, name=name, fn_output_signature=dtype)

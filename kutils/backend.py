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

"""to_categorical and normalize against the Keras 2.3.1 semantics."""

from __future__ import annotations

import numpy as np
import pytest

from kutils import normalize, to_categorical


@pytest.mark.parametrize(
    ("labels", "num_classes", "expected_shape"),
    [
        ([0, 1, 2], None, (3, 3)),
        (np.array([[0], [2]]), None, (2, 3)),  # (n, 1) drops the trailing axis
        (np.zeros((3, 2, 1), dtype=int), 4, (3, 2, 4)),
        (np.zeros((2, 1, 1), dtype=int), 4, (2, 1, 4)),  # only one axis is dropped
        (np.array([1]), 3, (1, 3)),  # rank 1 is never squeezed
        (np.array([[1]]), 3, (1, 3)),
        (np.zeros((2, 3), dtype=int), 5, (2, 3, 5)),
        (2, 4, (4,)),  # a scalar label
        ([], 3, (0, 3)),
        (np.zeros((0, 1), dtype=int), 3, (0, 3)),
        ([1, 2], 0, (2, 3)),  # num_classes=0 means max(y) + 1, as None does
    ],
)
def test_to_categorical_shapes(labels, num_classes, expected_shape):
    result = to_categorical(labels, num_classes)
    assert isinstance(result, np.ndarray)
    assert result.shape == expected_shape
    flat_labels = np.asarray(labels, dtype=int).reshape(-1)
    assert np.array_equal(
        result.reshape(-1, expected_shape[-1]).argmax(-1)[: flat_labels.size], flat_labels
    )
    assert result.sum() == flat_labels.size


def test_to_categorical_values():
    np.testing.assert_array_equal(
        to_categorical([0, 2, 1], 3), np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=np.float32)
    )


def test_to_categorical_default_dtype_is_float32():
    assert to_categorical([0, 1]).dtype == np.float32


@pytest.mark.parametrize("dtype", ["int32", "uint8", "float64", "bool", np.float16])
def test_to_categorical_honours_dtype(dtype):
    result = to_categorical([0, 1, 1], 2, dtype=dtype)
    assert result.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(result.astype(int), [[1, 0], [0, 1], [0, 1]])


@pytest.mark.parametrize(
    "labels",
    [(0, 1, 2), [0.0, 1.0, 2.0], np.array([0, 1, 2], dtype=np.uint8), ["0", "1", "2"]],
    ids=["tuple", "whole-floats", "uint8", "numeric-strings"],
)
def test_to_categorical_accepts_array_likes(labels):
    np.testing.assert_array_equal(to_categorical(labels), np.eye(3, dtype=np.float32))


def test_to_categorical_accepts_tensorflow_and_keras_tensors():
    import keras
    import tensorflow as tf

    for tensor in (tf.constant([[0], [2]]), keras.ops.convert_to_tensor([[0], [2]])):
        result = to_categorical(tensor, 3)
        assert isinstance(result, np.ndarray)
        np.testing.assert_array_equal(result, [[1, 0, 0], [0, 0, 1]])


@pytest.mark.parametrize(
    ("labels", "num_classes", "message"),
    [
        ([0, -1, 2], 3, "negative label -1"),
        ([0, 5], 3, "label 5"),
        ([0, 3], 3, "label 3"),
        ([0, 1.5], None, "1.5"),
        ([0, np.nan], 3, "nan"),
        ([], None, "empty"),
        ([0, 1], -2, "num_classes=-2"),
        ([0, 1], 2.5, "num_classes=2.5"),
        (["a", "b"], None, "integer class labels"),
        ([{"a": 1}], 2, "dtype object"),
    ],
)
def test_to_categorical_rejects_bad_labels(labels, num_classes, message):
    with pytest.raises(ValueError, match=message):
        to_categorical(labels, num_classes)


def test_to_categorical_error_names_num_classes():
    with pytest.raises(ValueError, match=r"num_classes=3"):
        to_categorical([4], 3)


def test_to_categorical_does_not_modify_input():
    labels = np.array([[2], [0]])
    to_categorical(labels)
    np.testing.assert_array_equal(labels, [[2], [0]])


def _reference_normalize(x, axis, order):
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis)


@pytest.mark.parametrize("order", [1, 2, np.inf, 3])
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalize_matches_the_definition_on_every_axis(order, axis, dtype):
    x = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(dtype)
    result = normalize(x, axis=axis, order=order)
    assert result.dtype == dtype
    np.testing.assert_allclose(result, _reference_normalize(x, axis, order), rtol=1e-5)


def test_normalize_axis_zero_normalizes_columns():
    # Keras 3.15 treats axis=0 as -1 and gets this wrong.
    np.testing.assert_allclose(
        normalize(np.array([[3.0, 4.0], [0.0, 5.0]]), axis=0),
        [[1.0, 4 / np.sqrt(41)], [0.0, 5 / np.sqrt(41)]],
    )
    assert normalize(np.ones((2, 3)), axis=0).shape == (2, 3)


def test_normalize_keeps_zero_vectors_without_warning():
    x = np.array([[0.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    with np.errstate(all="raise"):
        result = normalize(x)
    np.testing.assert_allclose(result, [[0.0, 0.0], [0.6, 0.8]], rtol=1e-6)
    assert not np.isnan(result).any()


def test_normalize_1d_input_gives_a_row_like_keras_2():
    np.testing.assert_allclose(normalize(np.array([3.0, 4.0])), [[0.6, 0.8]])


def test_normalize_does_not_modify_input():
    x = np.array([[3.0, 4.0]], dtype=np.float32)
    before = x.copy()
    result = normalize(x)
    np.testing.assert_array_equal(x, before)
    assert not np.shares_memory(result, x)


def test_normalize_lists_and_integers_give_float64_numpy():
    result = normalize([[3, 4]])
    assert isinstance(result, np.ndarray)
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, [[0.6, 0.8]])


def test_normalize_accepts_tensors_and_returns_numpy():
    import tensorflow as tf

    result = normalize(tf.constant([[3.0, 4.0]]))
    assert isinstance(result, np.ndarray)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, [[0.6, 0.8]])


@pytest.mark.parametrize("axis", [2, -3, None, 1.0])
def test_normalize_rejects_bad_axis(axis):
    with pytest.raises(ValueError, match=r"Received: axis="):
        normalize(np.ones((2, 3)), axis=axis)


@pytest.mark.parametrize("num_classes", [None, 0, 4])
def test_uint64_label_above_2_63_is_named_as_received_not_negative(num_classes):
    huge = 2**63 + 5
    labels = np.array([1, huge], dtype=np.uint64)
    with pytest.raises(ValueError) as caught:
        to_categorical(labels, num_classes)
    message = str(caught.value)
    assert "negative" not in message
    assert f"label {huge}," in message and "uint64" in message
    assert f"num_classes={num_classes!r}" in message


def test_uint64_labels_below_num_classes_work():
    result = to_categorical(np.array([2, 0], dtype=np.uint64), 3)
    np.testing.assert_array_equal(result, [[0, 0, 1], [1, 0, 0]])


@pytest.mark.parametrize("num_classes", [None, 0, 3])
@pytest.mark.parametrize("dtype", ["int8", "int16", "int64", "float32"])
def test_negative_label_is_reported_with_num_classes_as_given(dtype, num_classes):
    labels = np.array([0, -1, 2], dtype=dtype)
    with pytest.raises(ValueError) as caught:
        to_categorical(labels, num_classes)
    message = str(caught.value)
    received = "-1.0" if dtype == "float32" else "-1"
    assert f"negative label {received};" in message
    assert f"num_classes={num_classes!r}" in message
    assert f"dtype {dtype}" in message


def test_int8_label_near_the_dtype_limit_is_counted_without_overflow():
    result = to_categorical(np.array([127, 0], dtype=np.int8))
    assert result.shape == (2, 128) and result[0, 127] == 1 and result[1, 0] == 1

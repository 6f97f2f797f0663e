"""The utilities together: Sequence over HDF5Matrix, multi_gpu_model fed by both."""

from __future__ import annotations

import multiprocessing

import h5py
import keras
import numpy as np
import pytest
from conftest import mlp as _mlp

from kutils import HDF5Matrix, Sequence, multi_gpu_model

ROWS, FEATURES, CLASSES = 40, 6, 3


@pytest.fixture
def h5_file(tmp_path):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((ROWS, FEATURES)).astype("float32")
    y = rng.integers(0, CLASSES, ROWS).astype("int64")
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f["x"] = x
        f["y"] = y
    return path, x, y


class H5Sequence(Sequence):
    """A Keras 2 style sequence (no super().__init__()) over two HDF5Matrix objects."""

    def __init__(self, path, batch_size, start=0, end=None):
        self.x = HDF5Matrix(str(path), "x", start=start, end=end)
        self.y = HDF5Matrix(str(path), "y", start=start, end=end)
        self.batch_size = batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[rows], self.y[rows]


class H5ProcessSequence(H5Sequence):
    workers = 2
    use_multiprocessing = True


class NoneBatchSequence(Sequence):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        return None


def _sgd_compile(model):
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")


def _reference_and_parallel(x, y, gpus):
    """A model trained alone on (x, y) with plain SGD, and an untrained twin's multi_gpu_model."""
    reference, template = _mlp(), _mlp()
    _sgd_compile(reference)
    reference.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    parallel = multi_gpu_model(template, gpus=gpus, device_type="CPU")
    _sgd_compile(parallel)
    return reference, template, parallel


def _assert_same_weights(model, reference):
    for got, expected in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_sequence_over_hdf5_matrices_trains_with_spawned_process_workers(h5_file):
    path, x, _ = h5_file
    model = _mlp()
    _sgd_compile(model)
    history = model.fit(H5ProcessSequence(path, 8), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert np.isfinite(history.history["loss"]).all()
    np.testing.assert_allclose(
        model.predict(H5ProcessSequence(path, 8), verbose=0),
        model.predict(x, verbose=0),
        atol=1e-6,
    )
    assert multiprocessing.active_children() == []


def test_multi_gpu_model_on_streamed_hdf5_matrices_trains_like_the_template(h5_file):
    path, x, y = h5_file
    reference, template, parallel = _reference_and_parallel(x, y, gpus=2)
    with HDF5Matrix(str(path), "x") as x_h5, HDF5Matrix(str(path), "y") as y_h5:
        parallel.fit(x_h5, y_h5, batch_size=8, epochs=1, shuffle=False, verbose=0)
        _assert_same_weights(template, reference)
        np.testing.assert_allclose(
            parallel.predict(x_h5, batch_size=7, verbose=0),
            reference.predict(x, verbose=0),
            atol=1e-5,
        )
        history = parallel.fit(x_h5, y_h5, batch_size=8, epochs=1, shuffle="batch", verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_multi_gpu_model_on_a_kutils_sequence_trains_like_the_template(h5_file):
    path, x, y = h5_file
    reference, template, parallel = _reference_and_parallel(x, y, gpus=3)
    parallel.fit(
        H5Sequence(path, 8),
        validation_data=H5Sequence(path, 8, start=30),
        epochs=1,
        shuffle=False,
        verbose=0,
    )
    _assert_same_weights(template, reference)


def test_a_none_batch_from_a_sequence_raises_value_error():
    model = _mlp()
    _sgd_compile(model)
    with pytest.raises(ValueError, match="None"):
        model.fit(NoneBatchSequence(), epochs=1, verbose=0)

"""HDF5Dataset and streamed fit: batch orders, shuffles, workers, and the fit hook."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from hdf5_regression import regression_file, small_model

from kutils import HDF5Dataset, HDF5Matrix, _keras_compat
from kutils.hdf5_dataset import install_hdf5_streaming, legacy_fit_dataset

ROWS = 103  # not a multiple of the batch or block sizes below


@pytest.fixture
def files(tmp_path):
    """x rows hold their own row number (so order is visible); y is the row number."""
    path = tmp_path / "data.h5"
    rows = np.arange(ROWS)
    with h5py.File(path, "w") as file:
        file["x"] = np.repeat(rows[:, None], 4, axis=1).astype("float32")
        file.create_dataset("y", data=rows.astype("int64"), chunks=(8,), compression="gzip")
        file["image"] = np.zeros((ROWS, 6, 5, 3), dtype="uint8")
    return path


def matrices(path, start=0, end=None):
    return HDF5Matrix(path, "x", start, end), HDF5Matrix(path, "y", start, end)


def epoch_rows(dataset):
    """The row numbers of every batch of one epoch, checking x and y agree."""
    batches = []
    for i in range(len(dataset)):
        x, y = dataset[i]
        np.testing.assert_array_equal(x[:, 0], y)
        batches.append(y)
    return batches


# -- batch orders -----------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [False, "batch", True])
@pytest.mark.parametrize("batch_size", [1, 10, 32, ROWS, 500])
def test_every_row_is_seen_once_per_epoch(files, shuffle, batch_size):
    dataset = HDF5Dataset(*matrices(files), batch_size=batch_size, shuffle=shuffle, block_size=4)
    assert len(dataset) == math.ceil(ROWS / batch_size) == dataset.num_batches
    for _ in range(3):
        batches = epoch_rows(dataset)
        assert [len(b) for b in batches] == [
            min(batch_size, ROWS - i) for i in range(0, ROWS, batch_size)
        ]
        np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(ROWS))
        dataset.on_epoch_end()


def test_no_shuffle_reads_in_file_order(files):
    batches = epoch_rows(HDF5Dataset(*matrices(files, 3, 50), batch_size=10))
    np.testing.assert_array_equal(np.concatenate(batches), np.arange(3, 50))


def test_batch_shuffle_keeps_contiguous_batches_and_the_short_batch_last(files):
    dataset = HDF5Dataset(*matrices(files), batch_size=10, shuffle="batch", seed=3)
    orders = []
    for _ in range(4):
        batches = epoch_rows(dataset)
        for batch in batches:
            np.testing.assert_array_equal(batch, np.arange(batch[0], batch[0] + len(batch)))
        np.testing.assert_array_equal(batches[-1], np.arange(100, ROWS))
        orders.append([int(b[0]) for b in batches])
        dataset.on_epoch_end()
    assert orders[0] != list(range(0, ROWS, 10))
    assert len({tuple(order) for order in orders}) > 1  # a new order every epoch


def test_true_shuffle_fills_batches_with_random_blocks(files):
    dataset = HDF5Dataset(*matrices(files), batch_size=16, shuffle=True, block_size=4, seed=0)
    batches = epoch_rows(dataset)
    for batch in batches[:-1]:
        # 16 rows from whole blocks of 4 (or pieces of them at batch edges), read in file order
        assert 4 <= len(np.unique(batch // 4)) <= 5
        assert np.all(np.diff(batch) > 0)
    spread = [np.ptp(batch) for batch in batches[:-1]]
    assert max(spread) > 32  # blocks come from far apart, not neighbours
    first_blocks = [int(b[0]) // 4 for b in batches]
    assert first_blocks != sorted(first_blocks)


def test_block_size_one_shuffles_single_rows_over_batches(files):
    dataset = HDF5Dataset(*matrices(files), batch_size=10, shuffle=True, block_size=1, seed=0)
    batches = epoch_rows(dataset)
    assert not np.array_equal(np.concatenate(batches), np.arange(ROWS))


def test_default_block_size_is_about_512_kib_capped_by_the_batch(files):
    assert HDF5Dataset(*matrices(files), batch_size=64, shuffle=True).block_size == 64
    wide = HDF5Matrix(files, "image")  # 90 bytes a row: 5826 rows in 512 KiB
    assert HDF5Dataset(wide, batch_size=10**6).block_size == math.ceil((512 << 10) / 90)


@pytest.mark.parametrize("shuffle", ["batch", True])
def test_a_seed_repeats_the_orders(files, shuffle):
    def orders(seed):
        dataset = HDF5Dataset(*matrices(files), batch_size=8, shuffle=shuffle, seed=seed)
        result = []
        for _ in range(2):
            result.append(np.concatenate(epoch_rows(dataset)).tolist())
            dataset.on_epoch_end()
        return result

    assert orders(5) == orders(5)
    assert orders(5) != orders(6)


def test_without_a_seed_numpy_global_seed_repeats_the_orders(files):
    def order():
        dataset = HDF5Dataset(*matrices(files), batch_size=8, shuffle=True)
        return np.concatenate(epoch_rows(dataset)).tolist()

    np.random.seed(11)
    first = order()
    np.random.seed(11)
    assert order() == first


def test_numpy_arrays_nested_inputs_and_sample_weights(files):
    x, y = matrices(files)
    weights = np.linspace(0, 1, ROWS)
    dataset = HDF5Dataset(
        {"a": x, "b": np.arange(ROWS) * 10}, y, weights, batch_size=20, shuffle=True, seed=1
    )
    inputs, targets, sample_weight = dataset[2]
    np.testing.assert_array_equal(inputs["a"][:, 0], targets)
    np.testing.assert_array_equal(inputs["b"], targets * 10)
    np.testing.assert_allclose(sample_weight, weights[targets])


def test_predict_batches_hold_only_x(files):
    x, _ = matrices(files)
    batch = HDF5Dataset(x, batch_size=7)[1]
    assert len(batch) == 1
    np.testing.assert_array_equal(batch[0][:, 0], np.arange(7, 14))


def test_normalizer_runs_on_each_batch(files):
    x = HDF5Matrix(files, "x", normalizer=np.sqrt)
    (rows,) = HDF5Dataset(x, batch_size=ROWS)[0]
    np.testing.assert_allclose(rows[:, 0], np.sqrt(np.arange(ROWS)))


# -- bad arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_size": 0}, ValueError, "batch_size must be a positive int"),
        ({"batch_size": 2.0}, ValueError, "batch_size must be a positive int"),
        ({"block_size": -1}, ValueError, "block_size must be a positive int"),
        ({"shuffle": "yes"}, ValueError, "shuffle must be True, False or 'batch'"),
        ({"seed": 1.5}, TypeError, "seed must be an int or None"),
    ],
)
def test_bad_arguments_raise_clear_errors(files, kwargs, error, match):
    with pytest.raises(error, match=match):
        HDF5Dataset(*matrices(files), **kwargs)


def test_different_lengths_raise_value_error_listing_them(files):
    x, _ = matrices(files)
    with pytest.raises(ValueError, match=r"Received: x: 103, y: 50"):
        HDF5Dataset(x, np.zeros(50))


def test_sample_weight_without_y_raises_value_error(files):
    x, _ = matrices(files)
    with pytest.raises(ValueError, match="sample_weight needs targets"):
        HDF5Dataset(x, None, np.ones(ROWS))


def test_batch_index_out_of_range_raises_index_error(files):
    dataset = HDF5Dataset(*matrices(files), batch_size=50)
    with pytest.raises(IndexError, match="batch index 3 is out of range for an HDF5Dataset of 3"):
        dataset[3]


# -- Keras fit, evaluate and predict ----------------------------------------------------


@pytest.mark.parametrize("shuffle", [False, "batch", True])
def test_explicit_dataset_trains_evaluates_and_predicts(tmp_path, shuffle):
    path = tmp_path / "r.h5"
    x, y = regression_file(path, rows=240)
    model = small_model()
    train = HDF5Dataset(
        HDF5Matrix(path, "x"), HDF5Matrix(path, "y"), batch_size=16, shuffle=shuffle
    )
    history = model.fit(train, epochs=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] / 2
    predictions = model.predict(HDF5Dataset(HDF5Matrix(path, "x"), batch_size=32), verbose=0)
    np.testing.assert_allclose(predictions, model.predict(x, verbose=0), rtol=1e-5)
    loss = model.evaluate(HDF5Dataset(HDF5Matrix(path, "x"), HDF5Matrix(path, "y")), verbose=0)
    np.testing.assert_allclose(loss, model.evaluate(x, y, verbose=0), rtol=1e-5)


def test_thread_workers_train(tmp_path):
    path = tmp_path / "r.h5"
    regression_file(path, rows=240)
    train = HDF5Dataset(
        HDF5Matrix(path, "x"), HDF5Matrix(path, "y"), batch_size=16, shuffle=True, workers=2
    )
    history = small_model().fit(train, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


SPAWN_SCRIPT = """
import multiprocessing, sys
import numpy as np
import keras
from kutils import HDF5Dataset, HDF5Matrix

if __name__ == "__main__":
    multiprocessing.set_start_method({method!r}, force=True)
    path = sys.argv[1]
    x, y = HDF5Matrix(path, "x"), HDF5Matrix(path, "y")
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    train = HDF5Dataset(x, y, batch_size=16, shuffle=True, workers=2, use_multiprocessing=True)
    before = model.evaluate(HDF5Dataset(x, y, batch_size=64), verbose=0)
    history = model.fit(train, epochs=1, verbose=0)
    after = model.evaluate(HDF5Dataset(x, y, batch_size=64), verbose=0)
    assert after < before / 2, (before, after)
    print("trained", multiprocessing.get_start_method(), len(history.history["loss"]))
"""


@pytest.mark.parametrize("method", ["spawn", pytest.param("forkserver", marks=pytest.mark.slow)])
def test_process_workers_train_under_spawn_and_forkserver(tmp_path, method):
    path = tmp_path / "r.h5"
    regression_file(path, rows=240)
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SPAWN_SCRIPT.format(method=method)))
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, str(script), str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"trained {method} 1" in done.stdout


# -- the hook that makes fit(x_h5, y_h5) stream ----------------------------------------


def test_fit_hook_is_installed_once_and_wraps_keras(files):
    from keras.src.trainers import data_adapters

    HDF5Matrix(files, "x")
    wrapped = data_adapters.get_data_adapter
    assert wrapped._kutils_wraps
    install_hdf5_streaming()
    assert data_adapters.get_data_adapter is wrapped


@pytest.mark.parametrize("shuffle", [True, False, "batch"])
def test_fit_hook_streams_hdf5_matrices_with_the_fit_shuffle(files, shuffle):
    from keras.src.trainers import data_adapters

    adapter = data_adapters.get_data_adapter(*matrices(files), batch_size=None, shuffle=shuffle)
    assert isinstance(adapter, data_adapters.PyDatasetAdapter)
    assert isinstance(adapter.py_dataset, HDF5Dataset)
    assert adapter.py_dataset.shuffle == shuffle
    assert adapter.py_dataset.batch_size == 32
    assert adapter.shuffle is False


def test_fit_hook_leaves_other_data_to_keras(files):
    from keras.src.trainers import data_adapters

    adapter = data_adapters.get_data_adapter(np.zeros((4, 2)), np.zeros(4), batch_size=2)
    assert isinstance(adapter, data_adapters.ArrayDataAdapter)
    x, y = matrices(files)
    assert legacy_fit_dataset(x, list(range(ROWS)), None, 8, True) is None
    in_memory = HDF5Matrix(files, "x", stream=False)
    assert legacy_fit_dataset(in_memory, y, None, 8, True) is None


def test_unsupported_keras_falls_back_to_memory_with_a_warning(files, monkeypatch):
    monkeypatch.setattr(_keras_compat, "SUPPORTED_KERAS", ((9, 0), (9, 9)))
    monkeypatch.setattr(install_hdf5_streaming, "installed", False)
    with pytest.raises(_keras_compat.KerasInternalsChanged, match=r"supports Keras 9\.0 to 9\.9"):
        install_hdf5_streaming()
    with pytest.warns(RuntimeWarning, match=r"pass kutils\.HDF5Dataset"):
        HDF5Matrix(files, "x")


def test_legacy_fit_streams_several_inputs_with_class_weight(tmp_path):
    path = tmp_path / "two.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as file:
        file["a"] = rng.normal(size=(96, 3)).astype("float32")
        file["b"] = rng.normal(size=(96, 2)).astype("float32")
        file["label"] = (file["a"][:, :1] > 0).astype("int64")
    keras.utils.set_random_seed(0)
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.Concatenate()([a, b]))
    model = keras.Model([a, b], out)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    inputs = {"a": HDF5Matrix(path, "a"), "b": HDF5Matrix(path, "b")}
    labels = HDF5Matrix(path, "label")
    history = model.fit(
        inputs, labels, batch_size=16, epochs=5, class_weight={0: 1.0, 1: 2.0}, verbose=0
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.predict(inputs, batch_size=16, verbose=0).shape == (96, 2)

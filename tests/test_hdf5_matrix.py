"""HDF5Matrix on real HDF5 files: window, indexing, errors, handles, pickling, Keras 3."""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import operator
import os
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
from hdf5_regression import regression_file, small_model

from kutils import HDF5Matrix, _hdf5_handles

LAYOUTS = {
    "contiguous": {},
    "chunked": {"chunks": True},
    "gzip": {"chunks": True, "compression": "gzip", "compression_opts": 4},
}


def write(path, name="data", *, rows=12, sample_shape=(3,), dtype="float32", layout="contiguous"):
    """A file with ``name`` = arange data of the given shape; returns the numpy copy."""
    values = np.arange(rows * int(np.prod(sample_shape)), dtype=np.int64)
    values = (values % 251 if np.dtype(dtype) == np.uint8 else values).astype(dtype)
    values = values.reshape((rows, *sample_shape))
    with h5py.File(path, "a") as file:
        file.create_dataset(name, data=values, **LAYOUTS[layout])
    return values


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest(), os.stat(path).st_mtime_ns


def open_handles(path):
    """This process's shared handles on ``path``."""
    return [key for key in _hdf5_handles._handles if key[0] == os.path.realpath(path)]


@pytest.fixture
def h5(tmp_path):
    path = tmp_path / "data.h5"
    values = write(path)
    return str(path), values


# -- shape, dtype, window ---------------------------------------------------------------


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize(
    ("dtype", "sample_shape"),
    [("float32", (3,)), ("int64", (2,)), ("uint8", (4, 5, 3)), ("float32", ())],
)
def test_properties_follow_the_window(tmp_path, layout, dtype, sample_shape):
    path = tmp_path / "d.h5"
    values = write(path, dtype=dtype, sample_shape=sample_shape, layout=layout)
    m = HDF5Matrix(path, "data", start=2, end=9)
    assert len(m) == 7
    assert m.shape == (7, *sample_shape)
    assert m.dtype == np.dtype(dtype)
    assert m.ndim == 1 + len(sample_shape)
    assert m.size == 7 * int(np.prod(sample_shape))
    np.testing.assert_array_equal(np.asarray(m), values[2:9])
    assert np.asarray(m).dtype == np.dtype(dtype)


def test_end_none_means_the_dataset_length(h5):
    path, values = h5
    m = HDF5Matrix(path, "data", start=4)
    assert (m.start, m.end, len(m)) == (4, 12, 8)
    np.testing.assert_array_equal(m[:], values[4:])


def test_empty_window_behaves_like_an_empty_array(h5):
    path, _values = h5
    m = HDF5Matrix(path, "data", start=5, end=5)
    assert len(m) == 0
    assert m.shape == (0, 3)
    assert m.size == 0
    assert np.asarray(m).shape == (0, 3)
    assert m[:].shape == (0, 3)
    assert m[[]].shape == (0, 3)
    assert list(m) == []
    with pytest.raises(IndexError, match="index 0 is out of range for an HDF5Matrix of length 0"):
        m[0]


def test_iteration_yields_the_rows_of_the_window(h5):
    path, values = h5
    rows = list(HDF5Matrix(path, "data", start=3, end=10))
    np.testing.assert_array_equal(np.stack(rows), values[3:10])


def test_array_casts_to_the_requested_dtype(h5):
    path, values = h5
    out = np.asarray(HDF5Matrix(path, "data"), dtype=np.float64)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, values)


def test_array_refuses_copy_false(h5):
    path, _ = h5
    with pytest.raises(ValueError, match="Received: copy=False"):
        HDF5Matrix(path, "data").__array__(copy=False)


# -- indexing ---------------------------------------------------------------------------

# Keys and what they select on the numpy window (None: the key itself, as numpy).
INDEX_TABLE = [
    (0, None),
    (5, None),
    (-1, None),
    (-8, None),
    (np.int64(3), None),
    (True, 1),  # bool counts as an int, as in Keras 2
    (slice(None), None),
    (slice(2, 5), None),
    (slice(None, None, 2), None),
    (slice(1, -1, 3), None),
    (slice(-3, None), None),
    (slice(-100, 100), None),
    (slice(None, None, -1), None),
    (slice(6, 1, -2), None),
    (slice(5, 2), None),
    ([3, 1, 1, 0], None),
    ([7, -1, -8], None),
    ((4, 2), [4, 2]),  # a tuple of ints is a list of rows, as in Keras 2
    (range(7, 0, -3), [7, 4, 1]),
    (np.array([[1, 2], [0, 0]]), None),
    (np.array([], dtype=np.int64), None),
    ([], np.array([], dtype=np.int64)),
    (np.arange(8) % 3 == 0, None),
    ([False, True] * 4, np.array([False, True] * 4)),
    ((slice(None), 0), None),
    ((slice(1, 4), slice(None, None, -1)), None),
    ((2, slice(1, None)), None),
]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize(("key", "numpy_key"), INDEX_TABLE, ids=[repr(k) for k, _ in INDEX_TABLE])
def test_indexing_matches_numpy_on_the_window(tmp_path, layout, key, numpy_key):
    path = tmp_path / "d.h5"
    values = write(path, layout=layout)
    window = values[2:10]
    m = HDF5Matrix(path, "data", start=2, end=10)
    expected = window[key if numpy_key is None else numpy_key]
    result = m[key]
    assert isinstance(result, np.ndarray)
    assert result.shape == expected.shape
    np.testing.assert_array_equal(result, expected)


def test_scattered_unsorted_indices_are_read_by_runs(tmp_path):
    # Rows of 16 KiB spread over 48 MiB: too sparse for one covering read.
    path = tmp_path / "wide.h5"
    values = write(path, rows=3000, sample_shape=(4096,))
    m = HDF5Matrix(path, "data", start=10)
    key = [2989, 0, 1500, 1501, 0, 2000]
    np.testing.assert_array_equal(m[key], values[10:][key])


@pytest.mark.parametrize("key", [8, -9, 100, [0, 8], [2, -9], np.array([[0], [9]])])
def test_out_of_range_raises_index_error_naming_index_and_length(h5, key):
    path, _ = h5
    m = HDF5Matrix(path, "data", start=2, end=10)
    with pytest.raises(
        IndexError, match=r"index -?\d+ is out of range for an HDF5Matrix of length 8"
    ):
        m[key]


def test_bool_mask_of_the_wrong_length_raises_index_error(h5):
    path, _ = h5
    with pytest.raises(
        IndexError, match=r"shape \(8,\).*Received: a boolean index of shape \(12,\)"
    ):
        HDF5Matrix(path, "data", start=2, end=10)[np.ones(12, dtype=bool)]


@pytest.mark.parametrize("key", [None, 1.5, "a", [1.5, 2.0], [[0], [1, 2]]])
def test_bad_index_types_raise_type_error(h5, key):
    path, _ = h5
    with pytest.raises(TypeError, match="Received"):
        HDF5Matrix(path, "data")[key]


# -- normalizer -------------------------------------------------------------------------


def every_other_column_as_float64(rows):
    return rows[:, ::2].astype(np.float64)


def add_channel_axis(rows):
    return rows[..., None]


def test_normalizer_output_sets_shape_dtype_and_ndim(h5):
    path, _values = h5
    m = HDF5Matrix(path, "data", start=1, end=5, normalizer=every_other_column_as_float64)
    assert m.shape == (4, 2)
    assert m.dtype == np.float64
    m3 = HDF5Matrix(path, "data", normalizer=add_channel_axis)
    assert (m3.shape, m3.ndim) == ((12, 3, 1), 3)


@pytest.mark.parametrize("key", [0, -1, slice(0, 3), [3, 0, 0], np.arange(4) > 1])
def test_normalizer_is_applied_to_every_read(h5, key):
    path, values = h5
    m = HDF5Matrix(path, "data", start=1, end=5, normalizer=every_other_column_as_float64)
    expected = every_other_column_as_float64(values[1:5])[key]
    np.testing.assert_array_equal(m[key], expected)
    assert m[key].dtype == np.float64


def test_normalizer_returning_a_different_row_count_raises_value_error(h5):
    path, _ = h5
    with pytest.raises(ValueError, match="as many rows as it is given"):
        HDF5Matrix(path, "data", normalizer=lambda rows: rows[:0])


# -- bad arguments ----------------------------------------------------------------------


def test_missing_file_raises_file_not_found_error_naming_the_path(tmp_path):
    missing = tmp_path / "nope.h5"
    with pytest.raises(FileNotFoundError, match=r"nope\.h5") as info:
        HDF5Matrix(missing, "data")
    assert info.value.filename == str(missing)
    assert not missing.exists()


def test_folder_raises_is_a_directory_error(tmp_path):
    with pytest.raises(IsADirectoryError, match="not a folder"):
        HDF5Matrix(tmp_path, "data")


def test_file_that_is_not_hdf5_raises_os_error(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("not hdf5")
    with pytest.raises(OSError, match="is not an HDF5 file"):
        HDF5Matrix(path, "data")
    assert path.read_text() == "not hdf5"


def test_missing_dataset_raises_key_error_listing_the_datasets(tmp_path):
    path = tmp_path / "d.h5"
    write(path, "features")
    write(path, "group/labels")
    before = digest(path)
    with pytest.raises(KeyError, match=r"No dataset 'data'.*'features', 'group/labels'"):
        HDF5Matrix(path, "data")
    assert digest(path) == before
    assert not open_handles(path)


def test_group_instead_of_dataset_raises_type_error(tmp_path):
    path = tmp_path / "d.h5"
    write(path, "group/labels")
    with pytest.raises(TypeError, match=r"'group' .* is a Group, not a dataset.*'group/labels'"):
        HDF5Matrix(path, "group")
    assert not open_handles(path)


def test_scalar_dataset_raises_value_error(tmp_path):
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as file:
        file["scalar"] = 3.0
    with pytest.raises(ValueError, match=r"is a scalar.*Received: shape=\(\)"):
        HDF5Matrix(path, "scalar")


@pytest.mark.parametrize(
    ("start", "end"), [(-1, None), (13, None), (0, 13), (6, 5), (0, -1), (12, 11)]
)
def test_start_or_end_out_of_range_raises_value_error(h5, start, end):
    path, _ = h5
    before = digest(path)
    with pytest.raises(ValueError, match=rf"0 <= start <= end <= 12.*Received: start={start}"):
        HDF5Matrix(path, "data", start=start, end=end)
    assert digest(path) == before
    assert not open_handles(path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"start": 1.0}, "start must be an int"),
        ({"end": "5"}, "end must be an int or None"),
        ({"normalizer": "scale"}, "normalizer must be callable"),
        ({"dataset": 0}, "dataset must be the dataset's name"),
        ({"datapath": 3}, "datapath must be a str or os.PathLike"),
    ],
)
def test_arguments_of_the_wrong_type_raise_type_error(h5, kwargs, match):
    path, _ = h5
    arguments = {"datapath": path, "dataset": "data", **kwargs}
    with pytest.raises(TypeError, match=match):
        HDF5Matrix(**arguments)


# -- files and handles ------------------------------------------------------------------


def test_file_is_opened_read_only_and_never_modified(h5):
    path, _values = h5
    before = digest(path)
    m = HDF5Matrix(path, "data", start=1)
    m[[3, 1]], m[::2], np.asarray(m)
    assert m.data.file.mode == "r"
    m.close()
    assert digest(path) == before


def test_matrices_on_one_file_share_one_handle_whatever_the_spelling(h5, monkeypatch):
    path, _ = h5
    monkeypatch.chdir(os.path.dirname(path))
    a = HDF5Matrix(path, "data")
    b = HDF5Matrix("./" + os.path.basename(path), "data", start=3)
    assert a.data.file.id == b.data.file.id
    assert len(open_handles(path)) == 1
    a.close()
    b.close()


def test_close_keeps_the_file_open_for_the_other_matrices(h5):
    path, values = h5
    a, b = HDF5Matrix(path, "data"), HDF5Matrix(path, "data", start=2)
    file = a.data.file
    a.close()
    np.testing.assert_array_equal(b[0], values[2])
    b.close()
    assert not file.id.valid


def test_dropped_matrix_lets_go_of_the_file(h5):
    path, _ = h5
    m = HDF5Matrix(path, "data")
    file = m.data.file
    del m
    gc.collect()
    assert not file.id.valid
    assert not open_handles(path)


def test_closed_matrix_raises_value_error(h5):
    path, _ = h5
    m = HDF5Matrix(path, "data")
    m.close()
    m.close()  # twice is fine
    with pytest.raises(ValueError, match="was closed"):
        m[0]


def test_context_manager_closes_the_file(h5):
    path, values = h5
    with HDF5Matrix(path, "data") as m:
        np.testing.assert_array_equal(m[1], values[1])
        file = m.data.file
    assert not file.id.valid
    assert not open_handles(path)


# -- pickling and worker processes ------------------------------------------------------


def test_pickle_round_trip_reopens_the_file_lazily(h5):
    path, values = h5
    m = HDF5Matrix(path, "data", start=2, end=7, normalizer=every_other_column_as_float64)
    state = m.__getstate__()
    assert state["_handle"] is None
    copy = pickle.loads(pickle.dumps(m))
    assert (copy.shape, copy.dtype) == (m.shape, m.dtype)
    np.testing.assert_array_equal(copy[[4, 0]], every_other_column_as_float64(values[[6, 2]]))


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_matrix_reads_in_spawn_and_forkserver_workers(h5, method):
    path, values = h5
    m = HDF5Matrix(path, "data", start=2, end=9)
    with multiprocessing.get_context(method).Pool(1) as pool:
        rows = pool.apply(operator.getitem, (m, [5, 0, -1]))
        length = pool.apply(len, (m,))
    np.testing.assert_array_equal(rows, values[2:9][[5, 0, -1]])
    assert length == 7
    np.testing.assert_array_equal(m[0], values[2])  # the parent's handle is untouched


# -- Keras 3 fit, evaluate and predict --------------------------------------------------


class RowCounter:
    """A normalizer that records the largest number of rows it was given at once."""

    def __init__(self):
        self.largest = 0

    def __call__(self, rows):
        self.largest = max(self.largest, len(rows))
        return rows


@pytest.mark.parametrize("stream", [False, True], ids=["in_memory", "streamed"])
def test_fit_evaluate_predict_end_to_end(tmp_path, stream):
    path = tmp_path / "train.h5"
    x, y = regression_file(path, rows=256)
    counter = RowCounter()
    x_train = HDF5Matrix(path, "x", end=200, normalizer=counter, stream=stream)
    y_train = HDF5Matrix(path, "y", end=200, stream=stream)
    x_test = HDF5Matrix(path, "x", start=200, stream=stream)
    y_test = HDF5Matrix(path, "y", start=200, stream=stream)
    model = small_model()
    counter.largest = 0

    history = model.fit(x_train, y_train, batch_size=16, epochs=4, shuffle="batch", verbose=0)
    predictions = model.predict(x_test, verbose=0)
    loss = model.evaluate(x_test, y_test, verbose=0)

    assert history.history["loss"][-1] < history.history["loss"][0] / 2
    assert predictions.shape == (56, 1)
    np.testing.assert_allclose(predictions, model.predict(x[200:], verbose=0), rtol=1e-5)
    assert np.shape(loss) == () and loss > 0
    np.testing.assert_allclose(loss, model.evaluate(x[200:], y[200:], verbose=0), rtol=1e-5)
    # Streamed: the normalizer only ever saw one batch; in memory: the whole window.
    assert counter.largest == (16 if stream else 200)


def test_fit_streams_validation_data(tmp_path):
    path = tmp_path / "train.h5"
    regression_file(path, rows=256)
    counter = RowCounter()
    x_val = HDF5Matrix(path, "x", start=200, normalizer=counter)
    counter.largest = 0
    model = small_model()
    history = model.fit(
        HDF5Matrix(path, "x", end=200),
        HDF5Matrix(path, "y", end=200),
        validation_data=(x_val, HDF5Matrix(path, "y", start=200)),
        batch_size=8,
        epochs=1,
        verbose=0,
    )
    assert "val_loss" in history.history
    assert 0 < counter.largest <= 8


def test_legacy_upstream_io_utils_scenario(tmp_path):
    """Keras 2's test_io_utils: fit with shuffle='batch', predict and evaluate."""
    import keras

    path = tmp_path / "test.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as file:
        file["my_data"] = rng.random((200, 10)).astype("float32")
        file["my_labels"] = rng.random((200, 1)).astype("float32")
    x_train = HDF5Matrix(path, "my_data", start=0, end=150)
    y_train = HDF5Matrix(path, "my_labels", start=0, end=150)
    x_test = HDF5Matrix(path, "my_data", start=150, end=200)
    y_test = HDF5Matrix(path, "my_labels", start=150, end=200)
    assert len(x_train) == 150 and x_train.shape == (150, 10) and x_train.dtype == "float32"

    model = keras.Sequential(
        [keras.Input((10,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(loss="binary_crossentropy", optimizer="sgd")
    model.fit(x_train, y_train, batch_size=32, shuffle="batch", verbose=False)
    assert model.predict(x_test, batch_size=32, verbose=False).shape == (50, 1)
    score = model.evaluate(x_test, y_test, batch_size=32, verbose=False)
    assert score > 0


# -- a file replaced at the path while matrices are open -------------------------------


def replace_by_rename(path, values):
    fresh = str(path) + ".new"
    with h5py.File(fresh, "w") as file:
        file.create_dataset("data", data=values)
    os.replace(fresh, path)


def replace_by_delete_and_recreate(path, values):
    os.remove(path)
    with h5py.File(path, "w") as file:
        file.create_dataset("data", data=values)


@pytest.mark.parametrize("replace", [replace_by_rename, replace_by_delete_and_recreate])
def test_new_matrix_reads_the_file_now_at_the_path(h5, replace):
    path, old_values = h5
    old = HDF5Matrix(path, "data")
    new_values = np.full((5, 2), 7.5, "float32")
    replace(path, new_values)
    new = HDF5Matrix(path, "data")
    assert new.shape == (5, 2)
    np.testing.assert_array_equal(np.asarray(new), new_values)
    # The matrix opened before keeps reading the file it opened.
    assert old.shape == old_values.shape
    np.testing.assert_array_equal(np.asarray(old), old_values)
    np.testing.assert_array_equal(old[[3, 1]], old_values[[3, 1]])
    old_file, new_file = old.data.file, new.data.file
    assert old_file.id != new_file.id
    old.close()
    assert not old_file.id.valid and new_file.id.valid
    np.testing.assert_array_equal(new[4], new_values[4])
    new.close()
    assert not new_file.id.valid
    assert not open_handles(path)


def test_matrices_opened_after_a_replacement_share_the_new_handle(h5):
    path, _ = h5
    old = HDF5Matrix(path, "data")
    replace_by_rename(path, np.zeros((4, 3), "float32"))
    a, b = HDF5Matrix(path, "data"), HDF5Matrix(path, "data", start=1)
    assert a.data.file.id == b.data.file.id != old.data.file.id
    assert len(open_handles(path)) == 1
    for m in (old, a, b):
        m.close()


def test_copy_of_a_matrix_refuses_the_file_that_replaced_its_own(h5):
    path, values = h5
    m = HDF5Matrix(path, "data")
    copy = pickle.loads(pickle.dumps(m))  # as sent to a worker: it reopens by path
    replace_by_rename(path, np.zeros((4, 3), "float32"))
    with pytest.raises(OSError, match=r"was replaced after this HDF5Matrix opened it"):
        copy[0]
    np.testing.assert_array_equal(m[0], values[0])
    m.close()

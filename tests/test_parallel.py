"""The data-parallel core on 2 and 3 logical CPU devices (tests/conftest.py makes them)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import class_data as _data
from conftest import mlp as _mlp

from kutils.parallel import (
    DataParallel,
    data_parallel,
    local_devices,
    merge_ops,
    normalize_device,
)

DEVICE_SETS = {
    "2-devices": ["/cpu:1", "/cpu:2"],
    "3-devices": ["/cpu:0", "/cpu:1", "/cpu:2"],
}
device_sets = pytest.mark.parametrize("devices", list(DEVICE_SETS.values()), ids=list(DEVICE_SETS))


def _two_in_two_out() -> keras.Model:
    keras.utils.set_random_seed(3)
    a = keras.Input((4,), name="a")
    b = keras.Input((2,), name="b")
    h = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()([a, b]))
    out_x = keras.layers.Dense(3, activation="softmax", name="out_x")(h)
    out_y = keras.layers.Dense(1, name="out_y")(h)
    return keras.Model({"a": a, "b": b}, [out_x, out_y])


class SubclassedNet(keras.Model):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(8, activation="relu")
        self.head = keras.layers.Dense(3, activation="softmax")

    def call(self, inputs, training=None):
        return self.head(self.hidden(inputs))


def _subclassed() -> keras.Model:
    keras.utils.set_random_seed(4)
    model = SubclassedNet()
    model(np.zeros((1, 6), "float32"))
    return model


# ---------------------------------------------------------------------------------------
# Predictions and row order
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template():
    return _mlp()


@device_sets
@pytest.mark.parametrize("batch_size", [1, 7, 64, 65])
def test_predictions_equal_the_template(template, devices, batch_size):
    x, _ = _data()
    parallel = data_parallel(template, devices)
    expected = template.predict(x, batch_size=batch_size, verbose=0)
    got = parallel.predict(x, batch_size=batch_size, verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 10])
def test_call_keeps_row_order_for_every_split(template, rows):
    # 10 rows on 3 devices: [0:3], [3:6], [6:10]; fewer rows than devices: all on the last.
    x, _ = _data(rows)
    parallel = data_parallel(template, DEVICE_SETS["3-devices"])
    np.testing.assert_allclose(parallel(x).numpy(), template(x).numpy(), atol=1e-5)


def test_each_slice_runs_on_its_device_and_merges_on_the_cpu(template):
    parallel = data_parallel(template, ["/cpu:1", "/cpu:2"])
    graph = tf.function(parallel).get_concrete_function(tf.TensorSpec((None, 6), tf.float32)).graph
    matmul_devices = {op.device for op in graph.get_operations() if op.type == "MatMul"}
    concat_devices = {op.device for op in graph.get_operations() if op.type == "ConcatV2"}
    assert {normalize_device(d) for d in matmul_devices} == {"/cpu:1", "/cpu:2"}
    assert {normalize_device(d) for d in concat_devices} == {"/cpu:0"}


def test_each_replica_is_differentiated_on_its_device():
    # Keras 2 built gradients with colocate_gradients_with_ops=True; a tape would put
    # the whole backward pass on one device.
    parallel = data_parallel(_mlp(), ["/cpu:1", "/cpu:2"])
    parallel.compile("sgd", "sparse_categorical_crossentropy")
    x, y = _data(8)
    parallel.train_on_batch(x, y)
    graph = (
        tf.function(parallel.train_step)
        .get_concrete_function((tf.TensorSpec((None, 6)), tf.TensorSpec((None,), tf.int64)))
        .graph
    )
    per_device = {}
    for op in graph.get_operations():
        if op.type == "MatMul":
            device = normalize_device(op.device) if op.device else "unplaced"
            per_device[device] = per_device.get(device, 0) + 1
    # 2 Dense layers: 2 forward MatMuls per replica, and at least 3 backward ones.
    assert set(per_device) == {"/cpu:1", "/cpu:2"}
    assert per_device["/cpu:1"] == per_device["/cpu:2"] >= 5


# ---------------------------------------------------------------------------------------
# Training equals the template trained alone, and the template keeps the result
# ---------------------------------------------------------------------------------------


@device_sets
@pytest.mark.parametrize("batch_size", [16, 13])
def test_one_sgd_epoch_matches_the_template_trained_alone(devices, batch_size):
    x, y = _data(64)
    reference, template = _mlp(), _mlp()
    template.set_weights(reference.get_weights())
    reference.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    parallel = data_parallel(template, devices)
    parallel.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    reference.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    parallel.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    for got, expected in zip(template.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_run_eagerly_trains_like_the_template():
    x, y = _data(24)
    reference, template = _mlp(), _mlp()
    reference.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    parallel = data_parallel(template, DEVICE_SETS["2-devices"])
    parallel.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", run_eagerly=True)
    reference.fit(x, y, batch_size=10, epochs=1, shuffle=False, verbose=0)
    parallel.fit(x, y, batch_size=10, epochs=1, shuffle=False, verbose=0)
    for got, expected in zip(template.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_training_starts_from_weights_set_on_the_template():
    x, y = _data(16)
    template = _mlp()
    parallel = data_parallel(template, ["/cpu:1", "/cpu:2"])
    parallel.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    zeros = [np.zeros_like(w) for w in template.get_weights()]
    template.set_weights(zeros)
    parallel.train_on_batch(x, y)
    np.testing.assert_array_equal(
        parallel.predict(x, verbose=0), np.full((16, 3), 1 / 3, "float32")
    )


def test_saved_template_holds_the_trained_weights(tmp_path):
    x, y = _data(32)
    template = _mlp()
    before = template.get_weights()
    parallel = data_parallel(template, ["/cpu:1", "/cpu:2"])
    parallel.compile("adam", "sparse_categorical_crossentropy")
    parallel.fit(x, y, batch_size=8, epochs=1, verbose=0)
    parallel.train_on_batch(x, y)
    assert not np.allclose(template.get_weights()[0], before[0])
    template.save(tmp_path / "template.keras")
    loaded = keras.models.load_model(tmp_path / "template.keras")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), parallel.predict(x, verbose=0), atol=1e-6
    )


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_parallel_model_saves_and_loads_with_its_devices(tmp_path, suffix):
    # Keras 2's own test_serialization saved and reloaded the parallel model.
    x, y = _data(24)
    parallel = data_parallel(_two_in_two_out(), DEVICE_SETS["3-devices"])
    parallel.compile(
        "adam",
        loss=[keras.losses.SparseCategoricalCrossentropy(), keras.losses.MeanSquaredError()],
    )
    inputs = {"a": x[:, :4], "b": x[:, 4:6]}
    parallel.fit(inputs, [y, x[:, :1]], batch_size=8, epochs=1, verbose=0)
    parallel.save(tmp_path / f"parallel{suffix}")
    loaded = keras.models.load_model(tmp_path / f"parallel{suffix}")
    assert isinstance(loaded, DataParallel)
    assert (loaded.devices, loaded.merge_device) == (parallel.devices, parallel.merge_device)
    for got, expected in zip(
        loaded.predict(inputs, verbose=0), parallel.predict(inputs, verbose=0), strict=True
    ):
        np.testing.assert_allclose(got, expected, atol=1e-6)


# ---------------------------------------------------------------------------------------
# Layers with training behaviour, metrics
# ---------------------------------------------------------------------------------------


def _bn_dropout_model() -> keras.Model:
    keras.utils.set_random_seed(5)
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


def test_batch_normalization_and_dropout_train():
    x, y = _data(128)
    y = (x[:, 0] > 0).astype(int)  # learnable
    template = _bn_dropout_model()
    parallel = data_parallel(template, DEVICE_SETS["2-devices"])
    parallel.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    history = parallel.fit(x, y, batch_size=32, epochs=6, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    bn = template.layers[1]
    assert not np.allclose(bn.moving_mean.numpy(), 0.0)
    assert np.isfinite(bn.moving_variance.numpy()).all()


def test_batch_smaller_than_device_count_keeps_batch_norm_finite():
    x, y = _data(2)
    template = _bn_dropout_model()
    parallel = data_parallel(template, DEVICE_SETS["3-devices"])
    parallel.compile("sgd", "sparse_categorical_crossentropy")
    loss = parallel.train_on_batch(x, y)
    bn = template.layers[1]
    assert np.isfinite(loss)
    assert np.isfinite(bn.moving_mean.numpy()).all()
    assert np.isfinite(bn.moving_variance.numpy()).all()


@device_sets
def test_loss_and_accuracy_cover_the_whole_batch(template, devices):
    x, y = _data(65)
    template.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    parallel = data_parallel(template, devices)
    parallel.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    expected = template.evaluate(x, y, batch_size=65, verbose=0, return_dict=True)
    got = parallel.evaluate(x, y, batch_size=65, verbose=0, return_dict=True)
    assert got["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-6)
    assert got["loss"] == pytest.approx(expected["loss"], abs=1e-5)
    assert got["accuracy"] * 65 == pytest.approx(round(got["accuracy"] * 65), abs=1e-4)


# ---------------------------------------------------------------------------------------
# Model kinds and data kinds
# ---------------------------------------------------------------------------------------


def test_functional_with_named_inputs_and_outputs_trains_and_predicts():
    rng = np.random.default_rng(2)
    x = {"a": rng.random((21, 4), dtype=np.float32), "b": rng.random((21, 2), dtype=np.float32)}
    y = {"out_x": rng.integers(0, 3, 21), "out_y": rng.random((21, 1), dtype=np.float32)}
    template = _two_in_two_out()
    parallel = data_parallel(template, DEVICE_SETS["3-devices"])
    assert parallel.output_names == ["out_x", "out_y"]
    parallel.compile(
        "adam",
        loss={"out_x": "sparse_categorical_crossentropy", "out_y": "mse"},
        metrics={"out_x": "accuracy"},
    )
    history = parallel.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert {"out_x_loss", "out_y_loss", "out_x_accuracy"} <= set(history.history)
    got = parallel.predict(x, batch_size=5, verbose=0)
    expected = template.predict(x, batch_size=5, verbose=0)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, atol=1e-5)


def test_subclassed_model_trains_and_predicts():
    x, y = _data(30)
    template = _subclassed()
    parallel = data_parallel(template, DEVICE_SETS["2-devices"])
    parallel.compile("sgd", "sparse_categorical_crossentropy")
    before = template.get_weights()[0].copy()
    parallel.fit(x, y, batch_size=7, epochs=1, verbose=0)
    assert not np.allclose(template.get_weights()[0], before)
    np.testing.assert_allclose(
        parallel.predict(x, verbose=0), template.predict(x, verbose=0), atol=1e-5
    )


def test_fit_on_tf_data_with_validation_and_callbacks():
    x, y = _data(48)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(10)
    seen = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(logs))
    parallel = data_parallel(_mlp(), DEVICE_SETS["2-devices"])
    parallel.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    parallel.fit(
        dataset,
        validation_data=(x[:9], y[:9]),
        epochs=2,
        callbacks=[record],
        shuffle=False,
        verbose=0,
    )
    assert len(seen) == 2
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(seen[-1])


class _Batches(keras.utils.PyDataset):
    """A PyDataset, the base class of kutils.Sequence, with an uneven last batch."""

    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[rows], self.y[rows]


class _ArrayLike:
    """Only __array__, shape and len, like kutils.HDF5Matrix hands its data to Keras."""

    def __init__(self, data):
        self._data = data
        self.shape = data.shape

    def __len__(self):
        return len(self._data)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._data, dtype=dtype)


def test_fit_on_a_py_dataset_matches_the_template_trained_alone():
    x, y = _data(30)
    reference, template = _mlp(), _mlp()
    reference.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    parallel = data_parallel(template, DEVICE_SETS["3-devices"])
    parallel.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    reference.fit(_Batches(x, y, 8), epochs=1, shuffle=False, verbose=0)
    parallel.fit(
        _Batches(x, y, 8), validation_data=_Batches(x, y, 7), epochs=1, shuffle=False, verbose=0
    )
    for got, expected in zip(template.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(
        parallel.predict(_Batches(x, y, 8), verbose=0), reference.predict(x, verbose=0), atol=1e-5
    )


def test_fit_evaluate_predict_on_array_likes():
    x, y = _data(30)
    parallel = data_parallel(_mlp(), DEVICE_SETS["2-devices"])
    parallel.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = parallel.fit(_ArrayLike(x), _ArrayLike(y), batch_size=7, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert 0.0 <= parallel.evaluate(_ArrayLike(x), _ArrayLike(y), verbose=0)[1] <= 1.0
    assert parallel.predict(_ArrayLike(x), batch_size=4, verbose=0).shape == (30, 3)


def test_batch_methods_work_like_the_template(template):
    x, y = _data(11)
    template.compile("sgd", "sparse_categorical_crossentropy")
    parallel = data_parallel(template, DEVICE_SETS["3-devices"])
    parallel.compile("sgd", "sparse_categorical_crossentropy")
    np.testing.assert_allclose(
        parallel.predict_on_batch(x), template.predict_on_batch(x), atol=1e-5
    )
    got = parallel.test_on_batch(x, y, return_dict=True)
    expected = template.test_on_batch(x, y, return_dict=True)
    assert got["loss"] == pytest.approx(expected["loss"], abs=1e-5)
    assert np.isfinite(parallel.train_on_batch(x, y))


# ---------------------------------------------------------------------------------------
# tf.distribute
# ---------------------------------------------------------------------------------------


def test_strategy_trains_and_copies_the_weights_back_to_the_template(mirrored):
    x, y = _data(40)
    template = _mlp()
    before = template.get_weights()[0].copy()
    parallel = data_parallel(template, mirrored)
    parallel.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    parallel.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert not np.allclose(template.get_weights()[0], before)
    np.testing.assert_allclose(
        parallel.predict(x, batch_size=7, verbose=0), template.predict(x, verbose=0), atol=1e-5
    )


def test_strategy_starts_from_the_template_and_trains_it_on_batches(mirrored):
    x, y = _data(12)
    template = _subclassed()
    parallel = data_parallel(template, mirrored)
    parallel.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    template.set_weights([np.zeros_like(w) for w in template.get_weights()])
    np.testing.assert_allclose(parallel.predict(x, verbose=0), np.full((12, 3), 1 / 3), atol=1e-6)
    parallel.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy")
    parallel.train_on_batch(x, y)
    assert not np.allclose(template.get_weights()[-1], 0.0)
    got = parallel.evaluate(x, y, verbose=0)
    template.compile("sgd", "sparse_categorical_crossentropy")
    assert got == pytest.approx(template.evaluate(x, y, verbose=0), abs=1e-5)


def test_strategy_validation_during_fit_keeps_the_weights_being_trained(mirrored):
    # fit's validation pass calls evaluate, which copied the template's (old) weights
    # into the copy being trained: every epoch restarted from the first one's weights.
    x, y = _data(16)
    template = _mlp()
    parallel = data_parallel(template, mirrored)
    parallel.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy")
    history = parallel.fit(
        x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, validation_data=(x, y)
    )
    losses = history.history["loss"]
    assert losses[2] < losses[1] < losses[0], losses
    # The last validation ran on the weights of the third epoch, before its own step.
    assert history.history["val_loss"][2] < losses[0]


# Each loss, with a learning rate that makes steps of similar size.
UNEVEN_LOSSES = {
    "mean": (lambda: "sparse_categorical_crossentropy", 0.2),
    "sum": (lambda: keras.losses.SparseCategoricalCrossentropy(reduction="sum"), 0.02),
}


@pytest.mark.parametrize("loss", list(UNEVEN_LOSSES))
@pytest.mark.parametrize(
    ("rows", "batch_size", "weights"),
    [(60, 15, "sample"), (61, 16, "class"), (60, 15, "tf.data")],
    ids=["15-on-2-with-sample-weights", "short-last-batch-with-class-weights", "tf.data"],
)
def test_strategy_trains_on_uneven_batches_as_one_device(mirrored, loss, rows, batch_size, weights):
    # A global batch of 15 rows runs as 8 + 7 on the 2 replicas: each row must weigh
    # 1/15 in the gradient, as on one device, and fit must report one device's logs.
    x, y = _data(rows)
    kwargs = {"batch_size": batch_size, "epochs": 2, "shuffle": False, "verbose": 0}
    kwargs["validation_data"] = (x, y)  # evaluate's reported loss: as one device's too
    if weights == "sample":
        kwargs["sample_weight"] = np.linspace(0.2, 2.0, rows).astype("float32")
    elif weights == "class":
        kwargs["class_weight"] = {0: 1.0, 1: 2.0, 2: 0.5}
    else:
        x = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
        y, kwargs = None, {"epochs": 2, "shuffle": False, "verbose": 0}
    reference, template = _mlp(), _mlp()
    template.set_weights(reference.get_weights())
    parallel = data_parallel(template, mirrored)
    make_loss, rate = UNEVEN_LOSSES[loss]
    for model in (reference, parallel):
        model.compile(
            keras.optimizers.SGD(rate),
            make_loss(),
            metrics=["accuracy"],
            weighted_metrics=["sparse_categorical_crossentropy"],
        )
    expected = reference.fit(x, y, **kwargs).history
    got = parallel.fit(x, y, **kwargs).history
    for mine, single in zip(template.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(mine, single, rtol=0, atol=1e-5)
    assert got.keys() == expected.keys()
    if not _keras_reports_mirrored_logs_as_one_device(mirrored):
        pytest.skip(
            "this Keras's own fit under MirroredStrategy reports other losses and metrics "
            "than on one device (Keras 3.8 does, even for even batches): the weights above "
            "were compared, the logs cannot be"
        )
    for name, values in expected.items():
        np.testing.assert_allclose(got[name], values, rtol=1e-5, err_msg=name)


_MIRRORED_LOGS_EXACT: list[bool] = []


def _keras_reports_mirrored_logs_as_one_device(mirrored) -> bool:  # type: ignore[no-untyped-def]
    """Whether plain Keras, without kutils, fits under ``mirrored`` to one device's logs
    (even batches of 16 on 2 replicas). Keras 3.15 does; Keras 3.8 does not."""
    if not _MIRRORED_LOGS_EXACT:
        x, y = _data(48)
        reference = _mlp()
        with mirrored.scope():
            distributed = _mlp()
            distributed.set_weights(reference.get_weights())
        logs = []
        for model in (reference, distributed):
            model.compile(
                keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"]
            )
            history = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
            logs.append(history.history)
        exact = all(np.allclose(logs[1][k], v, rtol=1e-5, atol=0) for k, v in logs[0].items())
        _MIRRORED_LOGS_EXACT.append(exact)
    return _MIRRORED_LOGS_EXACT[0]


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        (None, "/cpu:0"),
        (tf.distribute.ReductionToOneDevice("/cpu:0"), "/cpu:0"),
        (
            tf.distribute.ReductionToOneDevice("/job:localhost/replica:0/task:0/device:CPU:2"),
            "/cpu:2",
        ),
        (tf.distribute.ReductionToOneDevice(), "/cpu:1"),
        (tf.distribute.NcclAllReduce(), "/cpu:1"),
    ],
)
def test_cross_device_ops_choose_the_merge_device(template, ops, expected):
    parallel = data_parallel(template, ["/cpu:1", "/cpu:2"], cross_device_ops=ops)
    assert isinstance(parallel, DataParallel)
    assert parallel.merge_device == expected


@pytest.mark.parametrize(
    ("cpu_merge", "devices", "kind", "target"),
    [
        (True, None, tf.distribute.ReductionToOneDevice, "/cpu:0"),
        (False, ["/gpu:0", "/gpu:1"], tf.distribute.NcclAllReduce, None),
        (False, ["/cpu:1", "/cpu:2"], tf.distribute.ReductionToOneDevice, "/cpu:1"),
    ],
)
def test_merge_ops_map_cpu_merge_to_cross_device_ops(cpu_merge, devices, kind, target):
    ops = merge_ops(cpu_merge, devices)
    assert type(ops) is kind
    assert getattr(ops, "reduce_to_device", None) == target


# ---------------------------------------------------------------------------------------
# Devices and bad arguments
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("/job:localhost/replica:0/task:0/device:GPU:0", "/gpu:0"),
        ("/device:XLA_GPU:0", "/xla_gpu:0"),
        ("GPU:1", "/gpu:1"),
        ("/cpu:2", "/cpu:2"),
        ("CPU:0", "/cpu:0"),
    ],
)
def test_normalize_device(name, expected):
    assert normalize_device(name) == expected


def test_local_devices_lists_the_logical_cpus():
    assert local_devices("CPU") == ["/cpu:0", "/cpu:1", "/cpu:2"]


def test_default_devices_are_the_cpus_without_a_gpu(template):
    expected = local_devices("GPU") or local_devices("CPU")
    assert data_parallel(template).devices == expected


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"devices": ["/cpu:1", "/cpu:7"]}, ValueError, r"\['/cpu:7'\] do not exist"),
        ({"devices": []}, ValueError, "at least one device"),
        ({"devices": "/cpu:1"}, TypeError, "list of device names"),
        ({"devices": ["cpu"]}, ValueError, "type:index"),
        ({"devices": ["/cpu:1"], "cross_device_ops": "nccl"}, TypeError, "CrossDeviceOps"),
        (
            {
                "devices": ["/cpu:1"],
                "cross_device_ops": tf.distribute.ReductionToOneDevice("/gpu:3"),
            },
            ValueError,
            "merges on /gpu:3, which does not exist",
        ),
    ],
)
def test_bad_arguments_raise_with_what_was_received(template, kwargs, error, message):
    with pytest.raises(error, match=message):
        data_parallel(template, **kwargs)


def test_cross_device_ops_with_a_strategy_is_rejected(template, mirrored):
    with pytest.raises(ValueError, match="carries its own"):
        data_parallel(template, mirrored, cross_device_ops=tf.distribute.NcclAllReduce())


def test_unbuilt_model_is_rejected():
    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="needs a built model"):
        data_parallel(model, ["/cpu:1", "/cpu:2"])


def test_non_model_is_rejected():
    with pytest.raises(TypeError, match="Received: model of type Dense"):
        data_parallel(keras.layers.Dense(2), ["/cpu:1", "/cpu:2"])


class NoConfigNet(keras.Model):
    def __init__(self) -> None:  # no **kwargs: Keras cannot rebuild it from its config
        super().__init__()
        self.head = keras.layers.Dense(2)

    def call(self, inputs):
        return self.head(inputs)


def test_strategy_with_an_uncopyable_model_raises_value_error(mirrored):
    model = NoConfigNet()
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match="could not be cloned"):
        data_parallel(model, mirrored)
    assert isinstance(data_parallel(model, ["/cpu:1", "/cpu:2"]), DataParallel)


def test_conftest_splits_the_cpu_only_once_tensorflow_is_imported():
    tests = Path(__file__).resolve().parent
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(tests)!r})\n"
        "import conftest\n"
        "print('tensorflow' in sys.modules)\n"
        "import keras, tensorflow as tf\n"
        "print(len(tf.config.list_logical_devices('CPU')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split() == ["False", "3"]


def test_a_generator_input_is_read_to_its_end_leaving_no_prefetch_thread_in_python(mirrored):
    # kutils ends each multi-worker call this way (see ShardedInput.running); it also
    # checks that TensorFlow's iterator internals are still where kutils reads them.
    from kutils import _iterator_drain

    produced: list[int] = []
    finished = threading.Event()

    def generate():
        try:
            for i in range(10):
                produced.append(i)
                yield np.full((2, 1), i, "float32")
        finally:
            finished.set()

    def dataset_fn(context):
        spec = tf.TensorSpec((None, 1), tf.float32)
        return tf.data.Dataset.from_generator(generate, output_signature=spec)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    iterator = iter(mirrored.distribute_datasets_from_function(dataset_fn, options=options))
    first = mirrored.experimental_local_results(next(iterator))
    assert [int(batch[0, 0]) for batch in first] == [0, 1]
    assert _iterator_drain.drain_distributed_iterator(iterator)
    assert finished.is_set()
    assert produced == list(range(10))


@pytest.mark.parametrize("shuffle", [True, "batch", False])
def test_shuffled_numpy_rows_read_as_hdf5_dataset_with_one_row_blocks_read_them(shuffle):
    # The data-parallel core reads shuffled numpy arrays with its own small reader; it
    # orders and reads the rows as HDF5Dataset(..., block_size=1) did before it.
    from kutils import HDF5Dataset
    from kutils._row_shards import _NumpyRows

    rng = np.random.default_rng(3)
    x = {"a": rng.normal(size=(23, 2)), "b": rng.normal(size=(23,))}
    y, weights = rng.normal(size=(23, 1)), rng.uniform(size=23)
    rows = _NumpyRows(x, y, weights, 5, shuffle)
    rows.seed = 11
    rows._plan_epoch()
    reference = HDF5Dataset(x, y, weights, batch_size=5, shuffle=shuffle, block_size=1, seed=11)
    assert len(rows) == len(reference) == 5
    for _ in range(3):
        for index in range(len(rows)):
            runs = rows._batch_rows(index)
            assert runs == reference._batch_rows(index)
            mine, theirs = rows.read_runs(runs), reference.read_runs(runs)
            for a, b in zip(keras.tree.flatten(mine), keras.tree.flatten(theirs), strict=True):
                np.testing.assert_array_equal(a, b)
        rows.on_epoch_end()
        reference.on_epoch_end()

"""multi_gpu_model: Keras 2.3.1 checks and messages, and the documented usage patterns.

There is no GPU here: ``device_type='CPU'`` makes ``gpus`` count the 3 logical CPU
devices that tests/conftest.py creates, so the same code paths run as on GPUs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import mlp

import kutils
from kutils import multi_gpu_model
from kutils.multi_gpu import DEVICE_TYPE_ENV, _require_tensorflow_backend, _resolve_device_type
from kutils.parallel import ParallelFunctional, local_devices, normalize_device


def _mlp(seed: int = 0) -> keras.Model:
    return mlp(seed, features=5, classes=2, activation="relu")


def _separable_data(rows: int = 40):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 5)).astype("float32")
    return x, (x[:, 0] > 0).astype(int)


def _variable_device(variable) -> str:
    return normalize_device(variable.value.device)


# ---------------------------------------------------------------------------------------
# Argument checks, with the Keras 2.3.1 wording
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gpus", "message"),
    [
        (
            1,
            "For multi-gpu usage to be effective, call `multi_gpu_model` with `gpus >= 2`. Received: `gpus=1`",
        ),
        (
            [0],
            "For multi-gpu usage to be effective, call `multi_gpu_model` with `len(gpus) >= 2`. Received: `gpus=[0]`",
        ),
        ((), None),  # falsy: counts the devices (3 logical CPUs), so it works
    ],
)
def test_fewer_than_two_devices_raise_the_legacy_error(gpus, message):
    model = _mlp()
    if message is None:
        assert isinstance(multi_gpu_model(model, gpus, device_type="CPU"), ParallelFunctional)
        return
    with pytest.raises(ValueError) as info:
        multi_gpu_model(model, gpus, device_type="CPU")
    assert str(info.value) == message


@pytest.mark.parametrize("gpus", ["2", 2.5])
def test_gpus_of_another_type_raise_type_error(gpus):
    with pytest.raises(TypeError, match=f"Received: gpus={gpus!r}"):
        multi_gpu_model(_mlp(), gpus, device_type="CPU")


def test_no_gpu_and_gpus_none_raises_with_the_gpu_count():
    if local_devices("GPU"):
        pytest.skip("this machine has GPUs")
    with pytest.raises(ValueError) as info:
        multi_gpu_model(_mlp())
    assert str(info.value) == (
        "For multi-gpu usage to be effective, call `multi_gpu_model` with `gpus >= 2`. "
        "Received: `gpus=0`"
    )


@pytest.mark.parametrize(
    ("gpus", "device_type", "expected", "available"),
    [
        (
            4,
            "CPU",
            "['/cpu:0', '/cpu:0', '/cpu:1', '/cpu:2', '/cpu:3']",
            "['/cpu:0', '/cpu:1', '/cpu:2']",
        ),
        ([1, 5], "CPU", "['/cpu:0', '/cpu:1', '/cpu:5']", "['/cpu:0', '/cpu:1', '/cpu:2']"),
        (2, "GPU", "['/cpu:0', '/gpu:0', '/gpu:1']", "['/cpu:0']"),
    ],
)
def test_missing_devices_raise_the_legacy_error(gpus, device_type, expected, available):
    if device_type == "GPU" and local_devices("GPU"):
        pytest.skip("this machine has GPUs")
    with pytest.raises(ValueError) as info:
        multi_gpu_model(_mlp(), gpus, device_type=device_type)
    assert str(info.value) == (
        f"To call `multi_gpu_model` with `gpus={gpus}`, we expect the following devices to "
        f"be available: {expected}. However this machine only has: {available}. "
        "Try reducing `gpus`."
    )


@pytest.mark.parametrize("backend", ["jax", "torch", "numpy", "openvino"])
def test_other_backend_raises_a_clear_error(backend):
    # Another backend cannot be loaded next to TensorFlow in this process, and each
    # needs jax or torch installed, so the check multi_gpu_model runs first is called
    # directly with each backend name.
    with pytest.raises(ValueError) as info:
        _require_tensorflow_backend(backend)
    assert str(info.value).startswith(
        "`multi_gpu_model` is only available with the TensorFlow backend. "
        f"Received: backend={backend!r}"
    )


def test_tensorflow_backend_passes_the_check():
    assert keras.backend.backend() == "tensorflow"
    _require_tensorflow_backend(keras.backend.backend())
    assert isinstance(multi_gpu_model(_mlp(), 2, device_type="CPU"), ParallelFunctional)


@pytest.mark.parametrize(
    ("gpus", "devices"),
    [
        (2, ["/cpu:0", "/cpu:1"]),
        (3, ["/cpu:0", "/cpu:1", "/cpu:2"]),
        ([2, 1], ["/cpu:2", "/cpu:1"]),
    ],
)
def test_gpus_choose_the_replica_devices_in_order(gpus, devices):
    parallel = multi_gpu_model(_mlp(), gpus, device_type="CPU")
    assert parallel.devices == devices
    assert parallel.merge_device == "/cpu:0"


def test_repeated_output_names_get_suffixes():
    # The Keras 2 Siamese test: one nested model called twice gives two 'nested' outputs.
    keras.utils.set_random_seed(0)
    nested = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)], name="nested")
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    added = keras.layers.Add(name="add")([nested(a), nested(b)])
    model = keras.Model([a, b], [added, nested(a), nested(b)])
    parallel = multi_gpu_model(model, 2, device_type="CPU")
    assert parallel.output_names == ["add", "nested_1", "nested_2"]
    rng = np.random.default_rng(1)
    x = [rng.random((9, 3), dtype=np.float32), rng.random((9, 3), dtype=np.float32)]
    y = [rng.random((9, 2), dtype=np.float32)] * 3
    parallel.compile("sgd", loss={"add": "mse", "nested_1": "mse", "nested_2": "mae"})
    history = parallel.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert {"add_loss", "nested_1_loss", "nested_2_loss"} <= set(history.history)


@pytest.mark.parametrize("gpus", [2, 3])
def test_batches_that_do_not_split_evenly_train_as_on_one_device(gpus):
    # 15 rows on 2 devices run as 8 + 7 (on 3: 5 + 5 + 5; the last batch of 13 as
    # 7 + 6 and 5 + 4 + 4): as in Keras 2, the outputs are concatenated and the loss is
    # computed once over the whole batch, so every row weighs as on one device.
    x, y = _separable_data(58)
    reference, model = _mlp(), _mlp()
    weights = np.linspace(0.5, 1.5, len(x)).astype("float32")
    parallel = multi_gpu_model(model, gpus, device_type="CPU")
    for each in (reference, parallel):
        each.compile(
            keras.optimizers.SGD(0.3), "sparse_categorical_crossentropy", metrics=["accuracy"]
        )
    kwargs = {"batch_size": 15, "epochs": 2, "shuffle": False, "verbose": 0}
    expected = reference.fit(x, y, sample_weight=weights, **kwargs).history
    got = parallel.fit(x, y, sample_weight=weights, **kwargs).history
    for mine, single in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(mine, single, rtol=0, atol=1e-6)
    for name, values in expected.items():
        np.testing.assert_allclose(got[name], values, rtol=1e-6, err_msg=name)


# ---------------------------------------------------------------------------------------
# cpu_merge and cpu_relocation
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cpu_merge", "merge_device"), [(True, "/cpu:0"), (False, "/cpu:1")])
def test_cpu_merge_chooses_where_results_are_concatenated(cpu_merge, merge_device):
    parallel = multi_gpu_model(_mlp(), [1, 2], cpu_merge=cpu_merge, device_type="CPU")
    assert parallel.merge_device == merge_device


def test_cpu_relocation_moves_the_weights_and_keeps_their_values():
    with tf.device("/cpu:2"):
        model = _mlp()
    values = model.get_weights()
    assert {_variable_device(v) for v in model.weights} == {"/cpu:2"}
    parallel = multi_gpu_model(model, [1, 2], cpu_relocation=True, device_type="CPU")
    assert {_variable_device(v) for v in model.weights} == {"/cpu:0"}
    for got, expected in zip(model.get_weights(), values, strict=True):
        np.testing.assert_array_equal(got, expected)
    x, _ = _separable_data(6)
    np.testing.assert_allclose(
        parallel.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )


def test_cpu_relocation_keeps_the_template_training_the_shared_weights():
    x, y = _separable_data()
    model = _mlp()
    model.predict(x, verbose=0)  # a predict function traced before the move
    parallel = multi_gpu_model(model, 2, cpu_relocation=True, device_type="CPU")
    parallel.compile("sgd", "sparse_categorical_crossentropy")
    parallel.fit(x, y, batch_size=8, epochs=1, verbose=0)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), parallel.predict(x, verbose=0), atol=1e-6
    )


# ---------------------------------------------------------------------------------------
# The three usage patterns of the Keras 2 docs
# ---------------------------------------------------------------------------------------


def test_docs_pattern_weights_under_cpu_then_save_the_template(tmp_path):
    x, y = _separable_data(64)
    with tf.device("/cpu:0"):
        model = _mlp()
    parallel_model = multi_gpu_model(model, gpus=3, device_type="CPU")
    parallel_model.compile(loss="sparse_categorical_crossentropy", optimizer="rmsprop")
    parallel_model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    model.save(tmp_path / "my_model.h5")
    loaded = keras.models.load_model(tmp_path / "my_model.h5")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), parallel_model.predict(x, verbose=0), atol=1e-5
    )


@pytest.mark.parametrize(("device_type", "parallel"), [("CPU", True), ("GPU", False)])
def test_docs_pattern_cpu_relocation_with_single_device_fallback(device_type, parallel):
    if device_type == "GPU" and local_devices("GPU"):
        pytest.skip("this machine has GPUs")
    x, y = _separable_data()
    model = _mlp()
    try:
        parallel_model = multi_gpu_model(model, cpu_relocation=True, device_type=device_type)
    except ValueError:
        parallel_model = model
    assert (parallel_model is not model) == parallel
    parallel_model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    history = parallel_model.fit(x, y, epochs=3, batch_size=10, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_docs_pattern_cpu_merge_false():
    x, y = _separable_data()
    model = _mlp()
    parallel_model = multi_gpu_model(model, gpus=[1, 2], cpu_merge=False, device_type="CPU")
    parallel_model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    history = parallel_model.fit(x, y, epochs=3, batch_size=10, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    np.testing.assert_allclose(
        parallel_model.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5
    )


@pytest.mark.parametrize(
    ("env", "expected"), [(None, "gpu"), ("CPU", "cpu"), ("cpu", "cpu"), ("GPU", "gpu")]
)
def test_device_type_default_reads_the_environment_variable(monkeypatch, env, expected):
    if env is None:
        monkeypatch.delenv(DEVICE_TYPE_ENV, raising=False)
    else:
        monkeypatch.setenv(DEVICE_TYPE_ENV, env)
    assert _resolve_device_type(None) == expected


def test_explicit_device_type_wins_over_the_environment_variable(monkeypatch):
    monkeypatch.setenv(DEVICE_TYPE_ENV, "GPU")
    parallel = multi_gpu_model(_mlp(), 2, device_type="CPU")
    assert isinstance(parallel, ParallelFunctional)


def test_environment_variable_lets_an_unchanged_call_use_logical_cpus(monkeypatch):
    monkeypatch.setenv(DEVICE_TYPE_ENV, "CPU")
    parallel = multi_gpu_model(_mlp(), gpus=2)
    assert isinstance(parallel, ParallelFunctional)


@pytest.mark.parametrize(
    ("device_type", "env", "message"),
    [
        ("TPU", None, "device_type must be 'GPU' or 'CPU'. Received: device_type='TPU'"),
        (None, "gpu0", "KUTILS_MULTI_GPU_DEVICE_TYPE must be 'GPU' or 'CPU'. Received:"),
    ],
)
def test_unknown_device_type_raises_value_error(monkeypatch, device_type, env, message):
    if env is None:
        monkeypatch.delenv(DEVICE_TYPE_ENV, raising=False)
    else:
        monkeypatch.setenv(DEVICE_TYPE_ENV, env)
    with pytest.raises(ValueError, match=re.escape(message)):
        multi_gpu_model(_mlp(), 2, device_type=device_type)


# ---------------------------------------------------------------------------------------
# The result is a functional model on the template's inputs, as in Keras 2
# ---------------------------------------------------------------------------------------


def _bn_mlp(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((5,), name="features"),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(2, activation="softmax", name="probs"),
        ],
        name="template",
    )


def test_result_is_a_functional_model_on_the_template_tensors():
    template = _bn_mlp()
    parallel = multi_gpu_model(template, 2, device_type="CPU")
    functional = type(keras.Model(template.inputs, template.outputs))
    assert isinstance(parallel, functional)
    # Keras 2 built Model(model.inputs, merged): the very input tensors of the template.
    assert len(parallel.inputs) == 1
    assert parallel.inputs[0] is template.inputs[0]
    assert parallel.input is parallel.inputs[0]
    assert parallel.input.name == "features"
    assert tuple(parallel.input.shape) == (None, 5)
    # One concatenate layer per output, named after the template's output.
    assert len(parallel.outputs) == 1
    assert parallel.output is parallel.outputs[0]
    assert tuple(parallel.output.shape) == tuple(template.output.shape) == (None, 2)
    assert parallel.output_names == ["probs"]
    assert type(parallel.get_layer("probs")).__name__ == "BatchConcat"


def test_layers_are_inputs_slices_template_and_merge_as_in_keras_2():
    template = _bn_mlp()
    parallel = multi_gpu_model(template, 3, device_type="CPU")
    layers = parallel.layers
    assert isinstance(layers[0], keras.layers.InputLayer)
    assert layers[0].output is template.inputs[0]  # the template's own input layer
    assert [type(layer).__name__ for layer in layers[1:4]] == ["BatchSlice"] * 3
    assert [layer.device for layer in layers[1:4]] == ["/cpu:0", "/cpu:1", "/cpu:2"]
    assert layers[-2] is template
    assert type(layers[-1]).__name__ == "BatchConcat"
    assert parallel.get_layer("template") is template


def test_multi_output_template_has_one_merge_layer_per_output():
    keras.utils.set_random_seed(0)
    x = keras.Input((4,), name="x")
    template = keras.Model(
        x, [keras.layers.Dense(2, name="a")(x), keras.layers.Dense(3, name="b")(x)], name="two"
    )
    parallel = multi_gpu_model(template, 2, device_type="CPU")
    assert parallel.layers[-3] is template
    assert [layer.name for layer in parallel.layers[-2:]] == ["a", "b"]
    assert [tuple(t.shape) for t in parallel.outputs] == [(None, 2), (None, 3)]


def test_summary_lists_the_template_and_its_weights():
    template = _bn_mlp()
    parallel = multi_gpu_model(template, 2, device_type="CPU")
    lines: list[str] = []
    parallel.summary(print_fn=lambda line, **_: lines.append(line))
    text = "\n".join(lines)
    assert "template" in text and "BatchSlice" in text and "BatchConcat" in text
    assert f"Total params: {template.count_params()}" in text


def test_each_slice_runs_on_its_device_and_merges_on_the_cpu():
    parallel = multi_gpu_model(_mlp(), [1, 2], device_type="CPU")
    graph = tf.function(parallel).get_concrete_function(tf.TensorSpec((None, 5), tf.float32)).graph
    matmul = {normalize_device(op.device) for op in graph.get_operations() if op.type == "MatMul"}
    concat = {normalize_device(op.device) for op in graph.get_operations() if op.type == "ConcatV2"}
    assert matmul == {"/cpu:1", "/cpu:2"}
    assert concat == {"/cpu:0"}


def test_each_replica_is_differentiated_on_its_device():
    parallel = multi_gpu_model(_mlp(), [1, 2], device_type="CPU")
    parallel.compile("sgd", "sparse_categorical_crossentropy")
    x, y = _separable_data(8)
    parallel.train_on_batch(x, y)
    graph = (
        tf.function(parallel.train_step)
        .get_concrete_function((tf.TensorSpec((None, 5)), tf.TensorSpec((None,), tf.int64)))
        .graph
    )
    per_device: dict[str, int] = {}
    for op in graph.get_operations():
        if op.type == "MatMul":
            device = normalize_device(op.device) if op.device else "unplaced"
            per_device[device] = per_device.get(device, 0) + 1
    assert set(per_device) == {"/cpu:1", "/cpu:2"}
    assert per_device["/cpu:1"] == per_device["/cpu:2"] >= 5


def test_weights_are_shared_with_the_template_both_ways():
    x, y = _separable_data()
    template = _bn_mlp()
    parallel = multi_gpu_model(template, 2, device_type="CPU")
    assert {id(v) for v in parallel.weights} == {id(v) for v in template.weights}
    # Template -> parallel: weights set on the template are what the parallel model uses.
    new = [w + 0.5 for w in template.get_weights()]
    template.set_weights(new)
    np.testing.assert_allclose(
        parallel.predict(x, verbose=0), template.predict(x, verbose=0), atol=1e-6
    )
    # Parallel -> template: training the parallel model trains the template.
    parallel.compile("sgd", "sparse_categorical_crossentropy")
    parallel.fit(x, y, batch_size=8, epochs=1, verbose=0)
    changed = [not np.allclose(a, b) for a, b in zip(template.get_weights(), new, strict=True)]
    assert any(changed)
    for got, expected in zip(parallel.get_weights(), template.get_weights(), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_batch_smaller_than_device_count_keeps_batch_norm_finite():
    x, y = _separable_data(2)
    template = _bn_mlp()
    parallel = multi_gpu_model(template, 3, device_type="CPU")
    parallel.compile("sgd", "sparse_categorical_crossentropy")
    loss = parallel.train_on_batch(x, y)
    bn = template.layers[1]
    assert np.isfinite(loss)
    assert np.isfinite(bn.moving_mean.numpy()).all()
    assert np.isfinite(bn.moving_variance.numpy()).all()


class _SaveTemplate(keras.callbacks.Callback):
    """The Keras 2 idiom: save the template, ``self.model.layers[-2]``, after each epoch."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.saved: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.model.layers[-2].save(self.path)
        self.saved.append(epoch)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_checkpoint_callback_saving_layers_minus_2_writes_a_loadable_template(tmp_path, suffix):
    x, y = _separable_data(64)
    template = _bn_mlp()
    parallel = multi_gpu_model(template, 2, device_type="CPU")
    parallel.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    callback = _SaveTemplate(str(tmp_path / f"template{suffix}"))
    history = parallel.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[callback])
    assert callback.saved == [0, 1, 2]
    assert history.history["loss"][-1] < history.history["loss"][0]
    loaded = keras.models.load_model(callback.path)
    assert loaded.name == "template"  # the template itself, not the parallel model
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), parallel.predict(x, verbose=0), atol=1e-5
    )


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_parallel_model_saves_and_loads_with_its_devices(tmp_path, suffix):
    x, y = _separable_data()
    parallel = multi_gpu_model(_bn_mlp(), [2, 1], cpu_merge=False, device_type="CPU")
    parallel.compile("sgd", "sparse_categorical_crossentropy")
    parallel.fit(x, y, batch_size=8, epochs=1, verbose=0)
    parallel.save(tmp_path / f"parallel{suffix}")
    loaded = keras.models.load_model(tmp_path / f"parallel{suffix}")
    assert isinstance(loaded, ParallelFunctional)
    assert (loaded.devices, loaded.merge_device) == (["/cpu:2", "/cpu:1"], "/cpu:2")
    assert loaded.layers[-2].name == "template"
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), parallel.predict(x, verbose=0), atol=1e-6
    )


def test_export_without_input_signature_writes_a_servable_saved_model(tmp_path):
    x, y = _separable_data()
    template = _bn_mlp()
    parallel = multi_gpu_model(template, 2, device_type="CPU")
    parallel.compile("sgd", "sparse_categorical_crossentropy")
    parallel.fit(x, y, batch_size=8, epochs=1, verbose=0)
    parallel.export(str(tmp_path / "served"))
    served = tf.saved_model.load(str(tmp_path / "served"))
    np.testing.assert_allclose(
        served.serve(tf.constant(x)).numpy(), template.predict(x, verbose=0), atol=1e-5
    )


def test_two_named_inputs_train_from_a_list_or_a_dict_like_the_template():
    keras.utils.set_random_seed(0)
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    joined = keras.layers.Concatenate()([a, b])
    template = keras.Model([a, b], keras.layers.Dense(1, name="out")(joined), name="two_in")
    twin = keras.models.clone_model(template)
    twin.set_weights(template.get_weights())
    parallel = multi_gpu_model(template, 2, device_type="CPU")
    assert [t.name for t in parallel.inputs] == ["a", "b"]
    assert [tuple(t.shape) for t in parallel.inputs] == [(None, 3), (None, 2)]
    assert parallel.layers[-2] is template
    rng = np.random.default_rng(2)
    xa, xb = rng.random((24, 3), dtype=np.float32), rng.random((24, 2), dtype=np.float32)
    y = rng.random((24, 1), dtype=np.float32)
    parallel.compile(keras.optimizers.SGD(0.1), "mse")
    twin.compile(keras.optimizers.SGD(0.1), "mse")
    parallel.fit({"a": xa, "b": xb}, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    twin.fit([xa, xb], y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(
        parallel.predict([xa, xb], verbose=0), twin.predict([xa, xb], verbose=0), atol=1e-5
    )


def test_a_saved_parallel_model_naming_a_missing_device_fails_to_load_clearly():
    parallel = multi_gpu_model(_mlp(), [1, 2], device_type="CPU")
    config = parallel.get_config()
    for layer in config["layers"]:
        if layer["class_name"].endswith("BatchSlice") and layer["config"]["index"] == 1:
            layer["config"]["device"] = "/cpu:7"
    with pytest.raises(ValueError, match=r"The devices \['/cpu:7'\] do not exist"):
        ParallelFunctional.from_config(config)


# ---------------------------------------------------------------------------------------
# A Keras 2 script, only its imports rewritten
# ---------------------------------------------------------------------------------------

SCRIPT = Path(__file__).parent / "scripts" / "keras2_multi_gpu_checkpoint.py"

_RUNNER = (
    "import runpy, sys, tensorflow as tf\n"
    "cpu = tf.config.list_physical_devices('CPU')[0]\n"
    "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def test_keras_2_script_saving_layers_minus_2_from_a_callback_runs_unchanged(tmp_path):
    original = SCRIPT.read_text()
    rewritten = re.sub(r"(?m)^(from|import) keras\.utils\b", r"\1 kutils", original)
    changed = [
        new
        for old, new in zip(original.splitlines(), rewritten.splitlines(), strict=True)
        if old != new
    ]
    assert changed == ["from kutils import multi_gpu_model, to_categorical"]
    script = tmp_path / "script.py"
    script.write_text(rewritten)
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(kutils.__file__).parents[1]),
        "KERAS_HOME": str(tmp_path / "keras-home"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "KERAS_BACKEND": "tensorflow",
        "KUTILS_MULTI_GPU_DEVICE_TYPE": "CPU",
    }
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Training using single GPU" not in result.stdout
    assert "BatchSlice" in result.stdout and "BatchConcat" in result.stdout  # the summary
    assert "parallel inputs: [(None, 8)]" in result.stdout
    assert "parallel output: (None, 3)" in result.stdout
    saved = sorted(p.name for p in tmp_path.glob("template_*.h5"))
    assert saved == [f"template_{epoch:02d}.h5" for epoch in range(1, 9)]
    accuracy = re.search(r"restored accuracy: ([0-9.]+)", result.stdout)
    assert accuracy, result.stdout[-2000:]
    assert float(accuracy.group(1)) > 0.6


# ---------------------------------------------------------------------------------------
# Inputs of another dtype than the template's Input: cast as Keras casts them
# ---------------------------------------------------------------------------------------


def _png_images(folder: Path, count: int = 12) -> np.ndarray:
    """Real uint8 images: PNG files written to ``folder`` and decoded again."""
    rng = np.random.default_rng(5)
    images = []
    for i in range(count):
        path = folder / f"image_{i}.png"
        path.write_bytes(tf.io.encode_png(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).numpy())
        images.append(tf.io.decode_png(tf.io.read_file(str(path)), channels=3).numpy())
    return np.stack(images)


def _uint8_images(folder: Path):
    keras.utils.set_random_seed(6)
    inputs = keras.Input((6, 6, 3))
    hidden = keras.layers.Conv2D(4, 3, activation="relu")(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = keras.layers.Dense(3, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(hidden)
    )
    x = _png_images(folder)
    y = np.arange(len(x)) % 3
    return keras.Model(inputs, outputs), x, y, "sparse_categorical_crossentropy"


def _int64_token_ids(folder: Path):
    keras.utils.set_random_seed(7)
    inputs = keras.Input((5,), dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(30, 4)(inputs))
    x = np.random.default_rng(7).integers(0, 30, (12, 5)).astype("int64")
    y = np.random.default_rng(8).random((12, 1))
    return keras.Model(inputs, keras.layers.Dense(1)(pooled)), x, y, "mse"


def _float64_numpy(folder: Path):
    x = np.random.default_rng(9).standard_normal((12, 5))  # float64, as numpy makes it
    return _mlp(9), x, (x[:, 0] > 0).astype("int64"), "sparse_categorical_crossentropy"


def _two_inputs(folder: Path):
    keras.utils.set_random_seed(10)
    a, b = keras.Input((3,), name="a"), keras.Input((6, 6, 3), name="b")
    pixels = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(b))
    joined = keras.layers.Concatenate()([a, pixels])
    model = keras.Model([a, b], keras.layers.Dense(1)(joined))
    x = [np.random.default_rng(10).random((12, 3)), _png_images(folder)]  # float64, uint8
    return model, x, np.random.default_rng(11).random((12, 1)), "mse"


DTYPE_CASES = {
    "uint8-images": _uint8_images,
    "int64-token-ids-to-int32": _int64_token_ids,
    "float64-numpy": _float64_numpy,
    "two-inputs-float64-and-uint8": _two_inputs,
}


def _parallel_form(form: str, template: keras.Model, request) -> keras.Model:
    from kutils.parallel import data_parallel

    if form == "multi_gpu_model":
        return multi_gpu_model(template, 2, device_type="CPU")
    if form == "data_parallel":
        return data_parallel(template, ["/cpu:1", "/cpu:2"])
    return data_parallel(template, request.getfixturevalue("mirrored"))


_EVALUATES_ALIKE: dict[int, bool] = {}


def _keras_evaluates_alike_under(strategy) -> bool:
    """Whether plain Keras under ``strategy`` reports the one-device loss (``evaluate``).

    Keras 3.8 does not (a plain Keras model under a two-device MirroredStrategy reports
    1.445 where the same model on one device reports 1.169; Keras 3.15 reports 1.169
    both ways): there a strategy model's ``evaluate`` cannot be held to the one-device
    value, whatever kutils does.
    """
    if id(strategy) not in _EVALUATES_ALIKE:
        x = np.random.default_rng(9).standard_normal((12, 5)).astype("float32")
        y = np.random.default_rng(8).random((12, 1)).astype("float32")

        def build() -> keras.Model:
            keras.utils.set_random_seed(10)
            inputs = keras.Input((5,))
            hidden = keras.layers.Dense(4, activation="tanh")(inputs)
            model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
            model.compile(keras.optimizers.SGD(0.1), "mse")
            return model

        alone = build().evaluate(x, y, batch_size=4, verbose=0)
        with strategy.scope():
            mirrored = build()
        under = mirrored.evaluate(x, y, batch_size=4, verbose=0)
        _EVALUATES_ALIKE[id(strategy)] = bool(np.isclose(alone, under, rtol=1e-5))
    return _EVALUATES_ALIKE[id(strategy)]


@pytest.mark.parametrize(
    "form", ["multi_gpu_model", "data_parallel", pytest.param("strategy", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("case", list(DTYPE_CASES))
def test_inputs_of_another_dtype_are_cast_as_keras_casts_them_on_every_call_path(
    tmp_path, request, case, form
):
    template, x, y, loss = DTYPE_CASES[case](tmp_path)
    twin = keras.models.clone_model(template)  # the plain Keras model: the reference
    twin.set_weights(template.get_weights())
    parallel = _parallel_form(form, template, request)

    tensors = keras.tree.map_structure(tf.constant, x)  # uint8/int64/float64 tensors
    for given in (x, tensors):
        np.testing.assert_allclose(parallel(given), twin(given), rtol=1e-5, atol=1e-6)
    parallel.compile(keras.optimizers.SGD(0.1), loss)
    twin.compile(keras.optimizers.SGD(0.1), loss)
    np.testing.assert_allclose(
        parallel.predict(x, batch_size=4, verbose=0),
        twin.predict(x, batch_size=4, verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )
    # The losses Keras reports under a strategy are Keras's own (see the helper); the
    # weights trained below are compared whatever the Keras version.
    losses_comparable = form != "strategy" or _keras_evaluates_alike_under(
        request.getfixturevalue("mirrored")
    )
    evaluated = parallel.evaluate(x, y, batch_size=4, verbose=0)  # takes the dtypes
    if losses_comparable:
        np.testing.assert_allclose(
            evaluated, twin.evaluate(x, y, batch_size=4, verbose=0), rtol=1e-5
        )
    trained_loss = parallel.train_on_batch(x, y)
    reference_loss = twin.train_on_batch(x, y)
    if losses_comparable:
        np.testing.assert_allclose(trained_loss, reference_loss, rtol=1e-5)
    parallel.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    twin.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for trained, reference in zip(template.get_weights(), twin.get_weights(), strict=True):
        np.testing.assert_allclose(trained, reference, rtol=1e-4, atol=1e-5)

"""kutils.load_model / model_from_json / load_weights on the zoo Keras 2.3.1 saved.

The zoo (tests/goldens/saved_models/) was written by the real Keras 2.3.1 with
tests/oracle/record_saved_models.py: each model saved with ``model.save`` and with
``to_json`` + ``save_weights``, its inputs, Keras 2.3.1's predictions, and every layer's
weights after one more training step. Each file is loaded here through kutils on Keras 3.
"""

from __future__ import annotations

import base64
import json
import marshal
import pathlib
import shutil

import h5py
import keras
import numpy as np
import pytest

import kutils
from kutils import saved_models
from kutils._keras2_weights import keras2_order

ZOO = pathlib.Path(__file__).parent / "goldens" / "saved_models"
MANIFEST = json.loads((ZOO / "manifest.json").read_text())
MODELS = {entry["name"]: entry for entry in MANIFEST["models"]}
COMPILED = [name for name, entry in MODELS.items() if entry["compiled"]]

# Tolerances against Keras 2.3.1 (float32 on another TensorFlow and another kernel).
PREDICTION_ATOL = 2e-5
STEP_ATOL = 2e-5

# Why a resumed step cannot give Keras 2.3.1's weights exactly (docs/saved_models.md).
# Optimizers whose Keras 3 update is another formula than Keras 2.3.1's:
DIFFERENT_UPDATE = {
    "RMSprop": "Keras 3 divides by sqrt(v + epsilon), Keras 2 by sqrt(v) + epsilon",
    "Adagrad": "Keras 3 divides by sqrt(a + epsilon), Keras 2 by sqrt(a) + epsilon",
    "Nadam": "Keras 3's momentum schedule is 0.96 ** t where Keras 2's was 0.96 ** (0.004 t)",
}
# Weights left out of the comparison: BatchNormalization's moving_variance (Keras 2
# updated it with the unbiased batch variance, Keras 3 with the biased one), and the
# Embedding of a model trained with Adam (Keras 3's TensorFlow optimizers update a row
# looked up several times in one batch differently; rows looked up once match).
NOT_COMPARED = {("BatchNormalization", 3), ("Embedding", 0)}
# Optimizers whose step reads the iteration count (bias correction, or decay).
READS_ITERATIONS = {"Adam", "Adamax", "Nadam"}


# -- the custom objects of the zoo, written for Keras 3 ---------------------------------


class ScaledDense(keras.layers.Layer):
    def __init__(self, units, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.scale = scale

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], self.units), initializer="glorot_uniform"
        )

    def call(self, inputs):
        return self.scale * keras.ops.matmul(inputs, self.kernel)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "scale": self.scale}


def swish_k2(x):
    return x * keras.ops.sigmoid(x)


def weighted_mse(y_true, y_pred):
    return 2.0 * keras.ops.mean(keras.ops.square(y_pred - y_true), axis=-1)


def mean_pred(y_true, y_pred):
    return keras.ops.mean(y_pred)


CUSTOM = {
    "ScaledDense": ScaledDense,
    "swish_k2": swish_k2,
    "weighted_mse": weighted_mse,
    "mean_pred": mean_pred,
}
LAMBDAS = {
    "double": lambda x: x * 2.0 + 1.0,
    "marker": lambda x: x * 3.0,
}


def custom_objects(name):
    entry = MODELS[name]
    objects = {key: CUSTOM[key] for key in entry["custom_objects"]}
    objects.update({key: LAMBDAS[key] for key in entry["lambda_layers"]})
    return objects


def arrays(name):
    with np.load(ZOO / f"{name}.npz") as data:
        return dict(data)


def numbered(data, prefix):
    return [data[f"{prefix}{i}"] for i in range(len([k for k in data if k.startswith(prefix)]))]


def load(name, way, **kwargs):
    files = MODELS[name]["files"]
    objects = custom_objects(name)
    if way == "h5":
        return kutils.load_model(str(ZOO / files["h5"]), custom_objects=objects, **kwargs)
    if way == "json+weights":
        model = kutils.model_from_json((ZOO / files["json"]).read_text(), custom_objects=objects)
        kutils.load_weights(model, str(ZOO / files["weights"]))
        return model
    # A CustomObjectScope instead of the argument, as Keras 2 users loaded them.
    with kutils.CustomObjectScope(objects):
        return kutils.load_model(str(ZOO / files["h5"]), compile=False)


def predictions(model, inputs):
    result = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    return result if isinstance(result, list) else [result]


# Every model the two ways Keras 2 saved it; those with custom objects also a third way,
# inside a CustomObjectScope instead of custom_objects=.
LOADS = [(name, way) for name in sorted(MODELS) for way in ("h5", "json+weights")] + [
    (name, "h5 in a CustomObjectScope")
    for name in sorted(MODELS)
    if MODELS[name]["custom_objects"] or MODELS[name]["lambda_layers"]
]


@pytest.mark.parametrize(("name", "way"), LOADS)
def test_zoo_model_loads_with_keras2_predictions(name, way):
    data = arrays(name)
    model = load(name, way)
    got = predictions(model, numbered(data, "x"))
    expected = numbered(data, "pred")
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        np.testing.assert_allclose(mine, theirs, atol=PREDICTION_ATOL, rtol=1e-4)


def _sublayers(layer):
    return layer.layers if isinstance(layer, keras.Model) else [layer]


def _compared_weights(model, data):
    """(layer name, index, Keras 3 value, Keras 2.3.1 value) of every compared weight.

    The recorder saved ``layer.get_weights()``: for a nested model, its layers' weights
    one layer after the other, each in Keras 2's order.
    """
    compared = []
    for key in (key for key in data if key.startswith("next/")):
        _, layer_name, index = key.split("/")
        owned = [
            ((type(sub).__name__, position), variable)
            for sub in _sublayers(model.get_layer(layer_name))
            for position, variable in enumerate(keras2_order(sub))
        ]
        kind, variable = owned[int(index)]
        if kind not in NOT_COMPARED:
            compared.append((layer_name, int(index), variable.numpy(), data[key]))
    return compared


def _reads_iterations(name):
    optimizer = MODELS[name]["optimizer"]
    with h5py.File(ZOO / MODELS[name]["files"]["h5"], "r") as file:
        config = json.loads(file.attrs["training_config"])["optimizer_config"]["config"]
    return optimizer in READS_ITERATIONS or config.get("decay", 0) > 0


def _step_mismatch(name, extra_iterations):
    data = arrays(name)
    model = load(name, "h5")
    model.optimizer.iterations.assign_add(extra_iterations)
    inputs, targets = numbered(data, "x"), numbered(data, "y")
    model.train_on_batch(
        inputs if len(inputs) > 1 else inputs[0], targets if len(targets) > 1 else targets[0]
    )
    compared = _compared_weights(model, data)
    assert compared
    for layer_name, index, mine, theirs in compared:
        if not np.allclose(mine, theirs, atol=STEP_ATOL, rtol=1e-4):
            worst = np.abs(mine - theirs).max()
            return f"{layer_name} weight {index} differs by up to {worst:.2e}"
    return None


RESUMABLE = [
    name
    for name in COMPILED
    if not MODELS[name]["stochastic"] and MODELS[name]["optimizer"] not in DIFFERENT_UPDATE
]


@pytest.mark.parametrize("name", sorted(RESUMABLE))
def test_zoo_model_resumes_training_with_keras2_next_step(name):
    mismatch = _step_mismatch(name, 0)
    if mismatch and _reads_iterations(name):
        # Keras 2.3.1 on TensorFlow 2 increments its iteration count and reads it in the
        # same graph step, unordered: some steps read the incremented count. Either
        # reading is a step Keras 2.3.1 can take.
        mismatch = _step_mismatch(name, 1)
    assert mismatch is None, f"{name}: {mismatch}"


@pytest.mark.parametrize("name", sorted(COMPILED))
def test_zoo_model_optimizer_state_is_restored(name):
    model = load(name, "h5")
    with h5py.File(ZOO / MODELS[name]["files"]["h5"], "r") as file:
        group = file["optimizer_weights"]
        stored = [group[n.decode()][()] for n in group.attrs["weight_names"]]
    optimizer = model.optimizer
    assert type(optimizer).__name__ == MODELS[name]["optimizer"]
    assert int(optimizer.iterations.numpy()) == int(stored[0]) == 3
    restored = {float(np.abs(v.numpy()).sum()) for v in optimizer.variables if v.shape != ()}
    slots = [value for value in stored[1:] if value.ndim and value.size > 1]
    # Every non-scalar slot Keras 3 keeps holds one of the file's values (SGD without
    # momentum and Adam without amsgrad keep fewer slots than Keras 2 stored).
    kept = [value for value in slots if float(np.abs(value).sum()) in restored]
    keras3_slots = [v for v in optimizer.variables if v.shape != () and v.path != "iterations"]
    assert len(kept) >= min(len(keras3_slots), 1)
    if MODELS[name]["optimizer"] in DIFFERENT_UPDATE:
        before = model.get_weights()
        data = arrays(name)
        x, y = numbered(data, "x"), numbered(data, "y")
        model.train_on_batch(x if len(x) > 1 else x[0], y if len(y) > 1 else y[0])
        assert int(optimizer.iterations.numpy()) == 4
        assert any(
            not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)
        )


# -- Lambda layers: the stored bytecode is never run unless asked -----------------------


def _keras2_file_with_current_bytecode(tmp_path, function):
    """lambda_marker.h5 with its Lambda's bytecode replaced by ``function``'s, in this
    Python's marshal format (Keras 2's func_dump), so it could run if a loader ran it."""
    path = tmp_path / "marker_model.h5"
    shutil.copy(ZOO / "lambda_marker.h5", path)
    code = base64.b64encode(marshal.dumps(function.__code__)).decode("ascii")
    with h5py.File(path, "r+") as file:
        config = json.loads(file.attrs["model_config"])
        config["config"]["layers"][1]["config"]["function"] = [code, None, None]
        file.attrs["model_config"] = json.dumps(config).encode("utf8")
    return path


def _writes_marker(x):
    path = __import__("os").environ["KUTILS_LAMBDA_MARKER"]
    __import__("pathlib").Path(path).write_text("the stored Lambda bytecode ran")
    return x * 3.0


def test_lambda_bytecode_is_not_run_by_default(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    monkeypatch.setenv("KUTILS_LAMBDA_MARKER", str(marker))
    path = _keras2_file_with_current_bytecode(tmp_path, _writes_marker)
    with pytest.raises(saved_models.LambdaNotSupplied, match=r"'marker'.*custom_objects"):
        kutils.load_model(str(path))
    assert not marker.exists()
    model = kutils.load_model(str(path), custom_objects={"marker": lambda x: x * 3.0})
    assert not marker.exists()
    data = arrays("lambda_marker")
    np.testing.assert_allclose(model.predict(data["x0"], verbose=0), data["pred0"], atol=1e-5)


def test_lambda_bytecode_runs_only_with_safe_mode_false(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    monkeypatch.setenv("KUTILS_LAMBDA_MARKER", str(marker))
    path = _keras2_file_with_current_bytecode(tmp_path, _writes_marker)
    model = kutils.load_model(str(path), safe_mode=False)
    assert marker.read_text() == "the stored Lambda bytecode ran"
    data = arrays("lambda_marker")
    np.testing.assert_allclose(model.predict(data["x0"], verbose=0), data["pred0"], atol=1e-5)


@pytest.mark.parametrize("name", ["lambda_layer", "lambda_marker"])
def test_lambda_without_its_function_names_the_layer(name):
    layer = MODELS[name]["lambda_layers"][0]
    with pytest.raises(saved_models.LambdaNotSupplied, match=f"'{layer}'.*safe_mode=False"):
        kutils.load_model(str(ZOO / f"{name}.h5"))
    json_text = (ZOO / f"{name}.json").read_text()
    with pytest.raises(saved_models.LambdaNotSupplied, match=f"'{layer}'"):
        kutils.model_from_json(json_text)


def test_python37_bytecode_with_safe_mode_false_says_how_to_supply_it():
    with pytest.raises(saved_models.LambdaNotSupplied, match=r"another Python version.*'double'"):
        kutils.load_model(str(ZOO / "lambda_layer.h5"), safe_mode=False)


# -- load_weights on models built in Keras 3 code ----------------------------------------


def _keras3_mlp():
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(6, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


def test_load_weights_by_order_into_a_model_built_in_keras3():
    model = _keras3_mlp()  # Keras 3 names its layers dense, dense_1: order decides
    kutils.load_weights(model, str(ZOO / "mlp_sgd_weights.h5"))
    data = arrays("mlp_sgd")
    np.testing.assert_allclose(model.predict(data["x0"], verbose=0), data["pred0"], atol=1e-5)


def test_load_weights_by_name_loads_matching_layers_only():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(6, activation="relu", name="dense_1"),
            keras.layers.Dense(3, name="new_head"),
        ]
    )
    head = model.get_layer("new_head").get_weights()
    kutils.load_weights(model, str(ZOO / "mlp_sgd.h5"), by_name=True)
    with h5py.File(ZOO / "mlp_sgd.h5", "r") as file:
        np.testing.assert_array_equal(
            model.get_layer("dense_1").get_weights()[0],
            file["model_weights/dense_1/dense_1/kernel:0"][()],
        )
    for before, after in zip(head, model.get_layer("new_head").get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)


def test_load_weights_by_name_skip_mismatch_warns_and_skips():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, name="dense_1")])
    kernel = model.get_layer("dense_1").get_weights()[0]
    with pytest.warns(UserWarning, match="dense_1.*Skipped"):
        kutils.load_weights(
            model, str(ZOO / "mlp_sgd_weights.h5"), by_name=True, skip_mismatch=True
        )
    np.testing.assert_array_equal(model.get_layer("dense_1").get_weights()[0], kernel)


def test_load_weights_of_another_architecture_names_both_layers():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5), keras.layers.Dense(3)])
    with pytest.raises(saved_models.WeightsMismatch, match=r"'dense_\d+'.*'dense_1'.*shape"):
        kutils.load_weights(model, str(ZOO / "mlp_sgd_weights.h5"))


def test_keras2_weights_file_named_weights_h5_still_loads(tmp_path):
    path = tmp_path / "model.weights.h5"  # Keras 3 reserves the suffix for its own format
    shutil.copy(ZOO / "mlp_sgd_weights.h5", path)
    model = _keras3_mlp()
    kutils.load_weights(model, str(path))
    data = arrays("mlp_sgd")
    np.testing.assert_allclose(model.predict(data["x0"], verbose=0), data["pred0"], atol=1e-5)


# -- files written by Keras 3, and errors -----------------------------------------------


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras3_files_go_to_keras_loader_unchanged(tmp_path, suffix):
    model = _keras3_mlp()
    if suffix == ".keras":  # (Keras 3's own .h5 loader fails on compiled files itself)
        model.compile("adam", "mse")
        model.fit(np.zeros((2, 4)), np.zeros((2, 3)), verbose=0)
    path = tmp_path / f"model{suffix}"
    model.save(path)
    loaded = kutils.load_model(str(path))
    x = arrays("mlp_sgd")["x0"]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert (
        keras.models.model_from_json(model.to_json()).count_params()
        == kutils.model_from_json(model.to_json()).count_params()
    )


def test_model_loaded_from_keras2_file_saves_and_reloads_as_keras(tmp_path):
    model = kutils.load_model(str(ZOO / "embedding_lstm.h5"))  # hard_sigmoid translated
    model.save(tmp_path / "converted.keras")
    again = kutils.load_model(str(tmp_path / "converted.keras"))
    data = arrays("embedding_lstm")
    np.testing.assert_allclose(
        again.predict(data["x0"], verbose=0), data["pred0"], atol=PREDICTION_ATOL
    )


def test_model_from_yaml_refuses_with_the_alternative():
    with pytest.raises(RuntimeError, match="model_from_json"):
        kutils.model_from_yaml("class_name: Sequential\n")


def test_weights_only_file_given_to_load_model_says_to_use_load_weights():
    with pytest.raises(ValueError, match="load_weights"):
        kutils.load_model(str(ZOO / "mlp_sgd_weights.h5"))


def test_unknown_custom_layer_says_how_to_pass_it():
    with pytest.raises(ValueError, match=r"custom_objects=.*ScaledDense"):
        kutils.load_model(str(ZOO / "custom_layer.h5"))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing\.h5"):
        kutils.load_model(str(tmp_path / "nothing.h5"))


def test_keras_own_loader_fails_on_the_keras2_files_kutils_loads():
    # Why kutils' loader exists: Keras 3 alone reads a Keras 2 Sequential file wrongly.
    with pytest.raises(Exception):  # noqa: B017  (Keras raises several types)
        model = keras.models.load_model(str(ZOO / "cnn_conv2d.h5"))
        data = arrays("cnn_conv2d")
        np.testing.assert_allclose(
            model.predict(data["x0"], verbose=0), data["pred0"], atol=PREDICTION_ATOL
        )


@pytest.mark.parametrize("by_name", [False, True])
@pytest.mark.parametrize(
    "name", ["functional_batchnorm_nested", "bidirectional_gru_timedistributed"]
)
def test_keras_model_load_weights_reads_keras2_files_into_translated_models(name, by_name):
    # docs/saved_models.md: Keras 3's own Model.load_weights needs no change once the
    # architecture is translated.
    model = kutils.model_from_json((ZOO / f"{name}.json").read_text())
    path = str(ZOO / f"{name}_weights.h5")
    model.load_weights(path, by_name=True) if by_name else model.load_weights(path)
    data = arrays(name)
    np.testing.assert_allclose(
        model.predict(data["x0"], verbose=0), data["pred0"], atol=PREDICTION_ATOL, rtol=1e-4
    )

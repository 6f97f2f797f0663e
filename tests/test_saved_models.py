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

# Weights whose next step cannot equal Keras 2.3.1's, with the reason (docs/saved_models.md).
# BatchNormalization: Keras 2 updated moving_variance with the unbiased batch variance
# (times n / (n - 1 - epsilon)); Keras 3 uses the biased one.
NOT_COMPARED_AFTER_STEP = {("BatchNormalization", 3)}
# Optimizers whose Keras 3 update is another formula than Keras 2.3.1's.
DIFFERENT_UPDATE = {
    # Keras 3's Nadam momentum schedule is beta_1 * (1 - 0.5 * 0.96 ** t); Keras 2.3.1's
    # was beta_1 * (1 - 0.5 * 0.96 ** (0.004 * t)).
    "Nadam": "momentum schedule",
}


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


@pytest.mark.parametrize("way", ["h5", "json+weights", "h5 in a CustomObjectScope"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_zoo_model_loads_with_keras2_predictions(name, way):
    data = arrays(name)
    model = load(name, way)
    got = predictions(model, numbered(data, "x"))
    expected = numbered(data, "pred")
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected):
        np.testing.assert_allclose(mine, theirs, atol=PREDICTION_ATOL, rtol=1e-4)


def _compared_weights(model, data):
    """(layer name, index, Keras 3 value, Keras 2.3.1 value) of every compared weight."""
    compared = []
    for key in (key for key in data if key.startswith("next/")):
        _, layer_name, index = key.split("/")
        layer = model.get_layer(layer_name)
        weights = keras2_order(layer)
        # keras2_order puts non-trainable weights last: find each weight's own layer type.
        kinds = dict(zip(map(id, _ordered_layer_weights(layer)), _kinds(layer)))
        variable = weights[int(index)]
        if kinds.get(id(variable)) in NOT_COMPARED_AFTER_STEP:
            continue
        compared.append((layer_name, int(index), variable.numpy(), data[key]))
    return compared


def _ordered_layer_weights(layer):
    if isinstance(layer, keras.Model):
        return [w for sub in layer.layers for w in sub.weights]
    return list(layer.weights)


def _kinds(layer):
    sublayers = layer.layers if isinstance(layer, keras.Model) else [layer]
    return [(type(sub).__name__, i) for sub in sublayers for i in range(len(sub.weights))]


@pytest.mark.parametrize("name", sorted(COMPILED))
def test_zoo_model_resumes_training_with_keras2_next_step(name):
    entry = MODELS[name]
    if entry["stochastic"]:
        pytest.skip("Dropout draws other random masks than Keras 2.3.1; see the next test")
    if entry["optimizer"] in DIFFERENT_UPDATE:
        pytest.skip(f"{entry['optimizer']}: Keras 3's {DIFFERENT_UPDATE[entry['optimizer']]}")
    data = arrays(name)
    model = load(name, "h5")
    inputs, targets = numbered(data, "x"), numbered(data, "y")
    model.train_on_batch(inputs if len(inputs) > 1 else inputs[0], targets if len(targets) > 1 else targets[0])
    compared = _compared_weights(model, data)
    assert compared
    for layer_name, index, mine, theirs in compared:
        np.testing.assert_allclose(
            mine, theirs, atol=STEP_ATOL, rtol=1e-4, err_msg=f"{name}: {layer_name} weight {index}"
        )

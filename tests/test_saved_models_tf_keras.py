"""kutils.load_model on files written by tf.keras (tf-keras 2.21, the Keras 2 line).

Recorded by tests/oracle/tf_keras_saved_models.py into tests/goldens/saved_models_tf_keras/:
tf.keras writes ``Custom>Adam`` optimizers with another slot layout (per weight, kinds
interleaved), ``time_major`` in RNN configurations and BatchNormalization axes as lists.
"""

from __future__ import annotations

import json
import pathlib
import warnings

import numpy as np
import pytest

import kutils
from kutils._keras2_weights import keras2_order

GOLDENS = pathlib.Path(__file__).parent / "goldens" / "saved_models_tf_keras"
MODELS = {m["name"]: m for m in json.loads((GOLDENS / "manifest.json").read_text())["models"]}


def _data(name):
    with np.load(GOLDENS / f"{name}.npz") as data:
        return dict(data)


def _inputs(data):
    inputs = [data[key] for key in sorted(key for key in data if key.startswith("x"))]
    return inputs if len(inputs) > 1 else inputs[0]


@pytest.mark.parametrize("way", ["h5", "json+weights"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_tf_keras_model_loads_with_its_predictions(name, way):
    if way == "h5":
        model = kutils.load_model(str(GOLDENS / f"{name}.h5"))
    else:
        model = kutils.model_from_json((GOLDENS / f"{name}.json").read_text())
        kutils.load_weights(model, str(GOLDENS / f"{name}_weights.h5"))
    data = _data(name)
    np.testing.assert_allclose(
        model.predict(_inputs(data), verbose=0), data["pred0"], atol=2e-5, rtol=1e-4
    )


@pytest.mark.parametrize("name", sorted(MODELS))
def test_tf_keras_model_resumes_with_tf_keras_next_step(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a state that was not restored warns
        model = kutils.load_model(str(GOLDENS / f"{name}.h5"))
    assert int(model.optimizer.iterations.numpy()) == 2
    data = _data(name)
    model.train_on_batch(_inputs(data), data["y0"])
    compared = 0
    for key in (key for key in data if key.startswith("next/")):
        _, layer_name, index = key.split("/")
        layer = model.get_layer(layer_name)
        if type(layer).__name__ == "Embedding":
            # Keras 3's TensorFlow optimizers update a row looked up several times in a
            # batch differently (docs/saved_models.md).
            continue
        sublayers = getattr(layer, "layers", [layer])
        weights = [w for sub in sublayers for w in keras2_order(sub)]
        np.testing.assert_allclose(
            weights[int(index)].numpy(), data[key], atol=2e-5, rtol=1e-4, err_msg=key
        )
        compared += 1
    assert compared

"""kutils.compile_model (Keras 2's metrics of a model with several outputs) and its
migrate rewrite. Its Keras 2.3.1 goldens are the ``flat_metrics`` and
``metrics_by_position`` cases of tests/test_class_weights.py."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import kutils
from kutils.migrate import migrate_source


def _two_outputs() -> keras.Model:
    inputs = keras.Input((4,))
    code = keras.layers.Dense(3, activation="tanh")(inputs)
    valid = keras.layers.Dense(1, activation="sigmoid", name="valid")(code)
    label = keras.layers.Dense(3, activation="softmax", name="label")(code)
    return keras.Model(inputs, [valid, label])


def _still() -> keras.optimizers.Optimizer:
    return keras.optimizers.SGD(0.0)  # the metrics then match a prediction after the step


def _data():
    rng = np.random.RandomState(4)
    x = rng.normal(0, 1, (6, 4)).astype("float32")
    return x, [np.array([[1], [0], [1], [0], [1], [1]], "float32"), np.eye(3)[[0, 1, 2, 2, 1, 0]]]


def test_one_list_of_metrics_goes_to_every_output():
    model = _two_outputs()
    kutils.compile_model(
        model, _still(), ["binary_crossentropy", "categorical_crossentropy"], ["mae"]
    )
    x, y = _data()
    logs = model.train_on_batch(x, y, return_dict=True)
    predicted = model.predict(x, verbose=0)
    for name, target, output in zip(["valid", "label"], y, predicted, strict=True):
        np.testing.assert_allclose(logs[f"{name}_mae"], np.mean(np.abs(target - output)), rtol=1e-5)


def test_a_metric_object_is_copied_for_each_output():
    model = _two_outputs()
    mse = keras.metrics.MeanSquaredError(name="mse")
    kutils.compile_model(
        model, _still(), ["binary_crossentropy", "categorical_crossentropy"], metrics=[mse]
    )
    x, y = _data()
    logs = model.train_on_batch(x, y, return_dict=True)
    predicted = model.predict(x, verbose=0)
    assert logs["valid_mse"] != logs["label_mse"]
    np.testing.assert_allclose(logs["label_mse"], np.mean((y[1] - predicted[1]) ** 2), rtol=1e-5)


def test_lists_per_output_and_one_output_are_keras_3s_own():
    model = _two_outputs()
    kutils.compile_model(
        model,
        "sgd",
        ["binary_crossentropy", "categorical_crossentropy"],
        metrics=[["accuracy"], ["mae"]],
    )
    x, y = _data()
    assert {"valid_accuracy", "label_mae"} <= set(model.train_on_batch(x, y, return_dict=True))
    single = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    kutils.compile_model(single, "sgd", "categorical_crossentropy", ["accuracy"])
    assert set(single.train_on_batch(x, np.eye(2)[[0, 1, 0, 1, 0, 1]], return_dict=True)) == {
        "loss",
        "accuracy",
    }


def test_sample_weight_mode_is_refused_with_what_to_do():
    with pytest.raises(ValueError, match="Received: sample_weight_mode='temporal'"):
        kutils.compile_model(_two_outputs(), "sgd", "mse", sample_weight_mode="temporal")


def test_anything_else_with_a_compile_method_has_it_called():
    class Wrapper:
        def compile(self, **kwargs):
            self.got = kwargs

    wrapper = Wrapper()
    kutils.compile_model(wrapper, "adam", "mse", ["mae"])
    assert wrapper.got == {
        "metrics": ["mae"],
        "optimizer": "adam",
        "loss": "mse",
        "loss_weights": None,
    }
    with pytest.raises(TypeError, match="Received: 3"):
        kutils.compile_model(3, "adam")


def test_migrate_rewrites_compile_calls_with_metrics_of_several_outputs():
    source = (
        "import keras\n"
        "import re\n"
        "self.discriminator.compile(loss=['binary_crossentropy', 'categorical_crossentropy'],\n"
        "    optimizer=optimizer, metrics=['accuracy'])\n"
        "self.combined.compile(loss=['binary_crossentropy'], optimizer=optimizer)\n"
        "d.compile(loss='mse', optimizer='adam', metrics=['mae'])\n"
        "d.compile(loss=['mse'], optimizer='adam', metrics=['mae'])\n"
        "d.compile('adam', 'mse', metrics=['mae'])\n"
        "model.compile('adam', 'mse', ['mae'])\n"
        "acgan.compile(loss=losses, optimizer='adam', metrics=['accuracy'])\n"
        "pattern = re.compile('x')\n"
    )
    text, findings, _ = migrate_source(source)
    assert findings == []
    assert text == (
        "import keras\n"
        "import re\n"
        "from kutils import compile_model\n"
        "compile_model(self.discriminator, loss=['binary_crossentropy', 'categorical_crossentropy'],\n"
        "    optimizer=optimizer, metrics=['accuracy'])\n"
        "self.combined.compile(loss=['binary_crossentropy'], optimizer=optimizer)\n"
        "d.compile(loss='mse', optimizer='adam', metrics=['mae'])\n"
        "d.compile(loss=['mse'], optimizer='adam', metrics=['mae'])\n"
        "d.compile('adam', 'mse', metrics=['mae'])\n"
        "compile_model(model, 'adam', 'mse', ['mae'])\n"
        "compile_model(acgan, loss=losses, optimizer='adam', metrics=['accuracy'])\n"
        "pattern = re.compile('x')\n"
    )
    assert migrate_source(text)[0] == text

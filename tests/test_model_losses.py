"""kutils.add_loss (Keras 2's symbolic ``Model.add_loss``) and its migrate rewrite.

The goldens (tests/goldens/add_loss/cases.json) were recorded by
tests/oracle/record_add_loss.py under Keras 2.3.1: Keras 2 snippets calling
``model.add_loss`` with tensors built from the model. Here each snippet is migrated with
``kutils migrate`` and run on Keras 3; it must compute what Keras 2.3.1 computed.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from snippet_goldens import assert_like_golden

import kutils
from kutils.migrate import migrate_source

HERE = Path(__file__).resolve().parent
GOLDEN = json.loads((HERE / "goldens" / "add_loss" / "cases.json").read_text())
CASES = GOLDEN["cases"]


def test_the_goldens_come_from_keras_2_3_1():
    assert GOLDEN["keras"] == "2.3.1"
    assert sorted(CASES) == ["alone", "list_and_number", "twice", "with_compiled_loss"]


def _run_migrated(name: str) -> dict:
    text, findings, _ = migrate_source(CASES[name]["snippet"])
    assert findings == []
    assert "from kutils import add_loss" in text and "add_loss(model, " in text
    scope: dict = {}
    exec(compile(text, f"<{name}>", "exec"), scope)
    return scope["result"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_migrated_snippet_computes_what_keras_2_3_1_computed(name):
    result = _run_migrated(name)
    assert_like_golden(result, CASES[name]["result"])


def test_the_goldens_tell_the_cases_apart():
    # The per-sample loss counts with its mean, the repeated tensor once: had either been
    # handled otherwise, these recorded values would not be what they are.
    evaluate = {name: case["result"]["evaluate"]["values"] for name, case in CASES.items()}
    assert len({round(value, 4) for value in evaluate.values()}) == len(CASES)


def _model():
    inputs = keras.Input((4,))
    code = keras.layers.Dense(3, activation="tanh", name="code")(inputs)
    outputs = keras.layers.Dense(2, name="out")(code)
    return inputs, code, outputs, keras.Model(inputs, outputs)


def _data():
    return np.random.RandomState(0).normal(0, 1, (8, 4)).astype("float32")


def test_the_loss_and_the_outputs_come_from_one_forward_pass():
    inputs = keras.Input((3,))
    noisy = keras.layers.GaussianNoise(1.0)(inputs)  # a new sample at every training pass
    outputs = keras.layers.Dense(3)(noisy)
    model = keras.Model(inputs, outputs)
    # mse(0, outputs) - mean(outputs**2) is 0 only when both see the same sample.
    kutils.add_loss(model, -keras.ops.mean(keras.ops.square(outputs)))
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((64, 3), "float32")
    loss = model.train_on_batch(x, np.zeros_like(x))
    assert abs(loss) < 1e-5


def test_the_model_still_predicts_only_its_outputs_and_keeps_its_weights():
    _, code, outputs, model = _model()
    kutils.add_loss(model, keras.ops.mean(keras.ops.square(code)))
    model.compile(optimizer="sgd")
    x = _data()
    assert model.predict(x, verbose=0).shape == (8, 2)
    assert model.outputs == [outputs]
    assert len(model.weights) == 4


def test_fit_minimizes_the_added_loss_and_logs_it():
    _, _, outputs, model = _model()
    kutils.add_loss(model, keras.ops.mean(keras.ops.square(outputs - 3.0)))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05))
    x = _data()
    before = model.evaluate(x, verbose=0)
    expected = float(np.mean((model.predict(x, verbose=0) - 3.0) ** 2))
    assert before == pytest.approx(expected, rel=1e-5)
    history = model.fit(x, epochs=5, batch_size=8, verbose=0).history["loss"]
    assert history[0] == pytest.approx(before, rel=1e-5)
    assert history[-1] < history[0]


def test_train_and_test_on_batch_return_the_batchs_own_loss_after_evaluate():
    # Keras 2.3.1 returned the batch's loss; Keras 3.8 returns the mean
    # since evaluate began, as it does not reset the loss tracker first.
    _, _, outputs, model = _model()
    kutils.add_loss(model, keras.ops.mean(keras.ops.square(outputs - 3.0)))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
    x = _data()
    model.evaluate(x * 4.0, verbose=0)
    expected = float(np.mean((model.predict(x, verbose=0) - 3.0) ** 2))
    assert float(model.test_on_batch(x)) == pytest.approx(expected, rel=1e-5)
    model.evaluate(x * 4.0, verbose=0)
    assert float(model.train_on_batch(x)) == pytest.approx(expected, rel=1e-5)


def _penalty(code, outputs):
    return keras.ops.mean(keras.ops.square(code)) + keras.ops.mean(keras.ops.abs(outputs))


def test_weights_files_are_those_of_the_model_without_the_loss(tmp_path):
    _, code, outputs, model = _model()
    kutils.add_loss(model, _penalty(code, outputs))
    model.compile(optimizer="sgd")
    model.fit(_data(), epochs=1, verbose=0)
    model.save_weights(tmp_path / "with.weights.h5")
    _, _, _, plain = _model()
    plain.load_weights(tmp_path / "with.weights.h5")
    x = _data()
    np.testing.assert_allclose(plain.predict(x, verbose=0), model.predict(x, verbose=0))
    plain.save_weights(tmp_path / "plain.weights.h5")
    _, code, outputs, again = _model()
    kutils.add_loss(again, _penalty(code, outputs))
    again.load_weights(tmp_path / "plain.weights.h5")
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_sequential_model_takes_a_loss_of_its_outputs():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    kutils.add_loss(model, keras.ops.mean(keras.ops.abs(model.outputs[0])))
    model.compile(optimizer="sgd")
    x = _data()
    expected = float(np.mean(np.abs(model.predict(x, verbose=0))))
    assert model.evaluate(x, verbose=0) == pytest.approx(expected, rel=1e-5)


def test_a_callable_is_called_at_each_step():
    inputs = keras.Input((4,))
    dense = keras.layers.Dense(2)
    model = keras.Model(inputs, dense(inputs))
    kutils.add_loss(model, lambda: keras.ops.sum(keras.ops.square(dense.kernel - dense.bias)))

    def penalty():
        return float(np.sum((dense.kernel.numpy() - dense.bias.numpy()) ** 2))

    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1))
    x = _data()
    assert model.evaluate(x, verbose=0) == pytest.approx(penalty(), rel=1e-5)
    before = penalty()
    model.train_on_batch(x)
    assert penalty() < before
    assert model.evaluate(x, verbose=0) == pytest.approx(penalty(), rel=1e-5)


def test_none_and_an_empty_list_add_nothing():
    _, _, _, model = _model()
    kutils.add_loss(model, None)
    kutils.add_loss(model, [])
    assert "call" not in vars(model)


def test_a_loss_from_another_input_is_refused_with_what_to_do():
    _, _, _, model = _model()
    other = keras.Input((4,))
    with pytest.raises(ValueError, match="computed from the model's own inputs"):
        kutils.add_loss(model, keras.ops.mean(other))


def test_inputs_argument_is_refused_because_keras_2_never_trained_on_it():
    inputs, _, outputs, model = _model()
    with pytest.raises(ValueError, match=r"never trained on.*Received: inputs="):
        kutils.add_loss(model, keras.ops.mean(outputs), inputs=[inputs])


def test_a_loss_of_another_type_is_refused_naming_it():
    _, _, _, model = _model()
    with pytest.raises(TypeError, match="Received: str 'mse'"):
        kutils.add_loss(model, "mse")


def test_symbolic_and_computed_tensors_in_one_list_are_refused():
    _, _, outputs, model = _model()
    with pytest.raises(TypeError, match="symbolic and computed tensors"):
        kutils.add_loss(model, [keras.ops.mean(outputs), keras.ops.ones(())])


def test_anything_else_with_an_add_loss_method_has_it_called():
    class Collector:
        def __init__(self):
            self.seen = []

        def add_loss(self, losses, inputs=None):
            self.seen.append((losses, inputs))

    collector = Collector()
    kutils.add_loss(collector, 1.5)
    kutils.add_loss(collector, 2.5, inputs="x")
    assert collector.seen == [(1.5, None), (2.5, "x")]
    with pytest.raises(TypeError, match="Received: 3"):
        kutils.add_loss(3, 1.0)


# -- the migrate rule ------------------------------------------------------------------


def test_migrate_rewrites_a_models_add_loss_and_leaves_a_layers_own():
    source = (
        "import keras\n"
        "model.add_loss(keras.ops.mean(x))\n"
        "models['vae'].add_loss([a, b])\n"
        "class Penalty(keras.layers.Layer):\n"
        "    def call(self, x):\n"
        "        self.add_loss(keras.ops.sum(x))\n"
        "        super().add_loss(keras.ops.sum(x))\n"
        "        return x\n"
    )
    text, findings, _ = migrate_source(source)
    assert findings == []
    assert text == (
        "import keras\n"
        "from kutils import add_loss\n"
        "add_loss(model, keras.ops.mean(x))\n"
        "add_loss(models['vae'], [a, b])\n"
        "class Penalty(keras.layers.Layer):\n"
        "    def call(self, x):\n"
        "        self.add_loss(keras.ops.sum(x))\n"
        "        super().add_loss(keras.ops.sum(x))\n"
        "        return x\n"
    )
    assert migrate_source(text)[0] == text


def test_migrate_uses_kutils_add_loss_when_the_file_has_its_own_add_loss():
    source = "import keras\ndef add_loss(a, b):\n    pass\nvae.add_loss(t)\n"
    text, findings, _ = migrate_source(source)
    assert findings == []
    assert "kutils.add_loss(vae, t)" in text
    assert "import kutils" in text

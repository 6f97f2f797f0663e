"""kutils.compile (Keras 2's compile: the weights trainable when it ran are those trained)
and its migrate rewrite.

The goldens (tests/goldens/trainable/cases.json) were recorded by
tests/oracle/record_trainable.py under Keras 2.3.1: the GAN pattern (a discriminator
compiled, then frozen for a combined model compiled after it). Here each snippet is
migrated with ``kutils migrate`` and run on Keras 3; it must compute what Keras 2.3.1
computed.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from snippet_goldens import assert_like_golden, migrate_and_run_pattern

import kutils
from kutils.migrate import migrate_source

HERE = Path(__file__).resolve().parent
GOLDEN = json.loads((HERE / "goldens" / "trainable" / "cases.json").read_text())
CASES = GOLDEN["cases"]


def test_the_goldens_come_from_keras_2_3_1():
    assert GOLDEN["keras"] == "2.3.1"
    assert sorted(CASES) == [
        "batch_normalization",
        "fit_after_freeze",
        "momentum_and_metric",
        "own_optimizers",
    ]


@pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`/`input_dim`")
@pytest.mark.parametrize("name", sorted(CASES))
def test_migrated_gan_trains_what_keras_2_3_1_trained(name):
    text, findings, _ = migrate_source(CASES[name]["snippet"])
    assert findings == []
    assert "from kutils import compile" in text
    assert ".compile(" not in text
    scope: dict = {}
    exec(compile(text, f"<{name}>", "exec"), scope)
    result = scope["result"]
    assert_like_golden(result, CASES[name]["result"])


def test_the_goldens_show_the_frozen_discriminator_training_in_its_own_steps():
    # Not a test of kutils: the Keras 2 behaviour the goldens hold, which Keras 3 alone
    # does not give (its discriminator would not change in its own steps).
    result = CASES["own_optimizers"]["result"]
    start = np.concatenate(
        [np.asarray(v).reshape(-1) for v in _initial_weights(CASES["own_optimizers"]["snippet"])]
    )
    after_d = np.asarray(result["weights_after_d_0"]["values"])
    after_g = np.asarray(result["weights_after_g_0"]["values"])
    d_size = 3 * 4 + 4 + 4 + 1
    assert not np.allclose(after_d[:d_size], start[:d_size])  # the discriminator trained
    np.testing.assert_array_equal(after_d[d_size:], start[d_size:])  # not the generator
    np.testing.assert_array_equal(after_g[:d_size], after_d[:d_size])  # frozen in combined
    assert not np.allclose(after_g[d_size:], after_d[d_size:])  # the generator trained


def _initial_weights(snippet: str) -> list:
    setup = snippet.split("def build_generator", 1)[0]
    scope: dict = {}
    exec(setup.replace("from keras.optimizers import SGD\n", ""), scope)
    return [*scope["d_weights"], *scope["g_weights"]]


def _gan(optimizer_d, optimizer_c):
    discriminator = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1)]
    )
    kutils.compile(discriminator, loss="mse", optimizer=optimizer_d)
    generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    z = keras.Input((2,))
    discriminator.trainable = False
    combined = keras.Model(z, discriminator(generator(z)))
    kutils.compile(combined, loss="mse", optimizer=optimizer_c)
    return discriminator, generator, combined


def test_an_optimizer_given_to_both_compiles_keeps_one_step_count():
    # Keras 2 (2.2.4; 2.3.1 under TensorFlow 2 fails on it) kept one `iterations` for an
    # optimizer compiled into several models, and made slots for each compile.
    optimizer = keras.optimizers.Adam(0.01)
    discriminator, generator, combined = _gan(optimizer, optimizer)
    rng = np.random.default_rng(0)
    before = [w.numpy().copy() for w in generator.weights]
    for _ in range(2):
        discriminator.train_on_batch(rng.normal(size=(4, 3)), np.ones((4, 1)))
        combined.train_on_batch(rng.normal(size=(4, 2)), np.ones((4, 1)))
    assert int(optimizer.iterations) == 4
    assert int(combined.optimizer.iterations) == 4
    assert combined.optimizer is not optimizer  # slots of its own for the generator
    assert all(
        not np.allclose(a, b.numpy()) for a, b in zip(before, generator.weights, strict=True)
    )


def test_train_and_test_on_batch_return_the_batchs_own_values_after_evaluate():
    # Keras 2.3.1 returned the batch's loss and metrics; Keras 3.8 returns
    # their means since evaluate began, as it does not reset the metrics first.
    discriminator = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    kutils.compile(discriminator, keras.optimizers.SGD(0.0), loss="mse", metrics=["mae"])
    x, y = np.random.RandomState(1).normal(size=(2, 8, 3)).astype("float32")
    y = y[:, :1]
    error = discriminator.predict(x, verbose=0) - y
    expected = [float(np.mean(error**2)), float(np.mean(np.abs(error)))]
    for step in (discriminator.test_on_batch, discriminator.train_on_batch):
        discriminator.evaluate(x * 5.0, y, verbose=0)
        np.testing.assert_allclose(step(x, y), expected, rtol=1e-5)


def test_outside_training_trainable_weights_are_keras_3s():
    discriminator, _, _ = _gan("sgd", "sgd")
    assert discriminator.trainable_weights == []
    assert len(discriminator.non_trainable_weights) == 4


def test_compiling_again_collects_the_weights_again():
    discriminator, _, _ = _gan("sgd", "sgd")
    kutils.compile(discriminator, loss="mse", optimizer="sgd")  # now frozen: nothing to train
    before = [w.numpy().copy() for w in discriminator.weights]
    with pytest.warns(UserWarning, match="does not have any trainable weights"):
        discriminator.train_on_batch(np.ones((4, 3)), np.zeros((4, 1)))
    assert all(
        np.array_equal(a, b.numpy()) for a, b in zip(before, discriminator.weights, strict=True)
    )


def test_the_compiled_model_saves_and_loads_as_its_keras_class(tmp_path):
    discriminator, _, _ = _gan("sgd", "sgd")
    discriminator.train_on_batch(np.ones((4, 3)), np.zeros((4, 1)))
    discriminator.save(tmp_path / "d.keras")
    loaded = keras.models.load_model(tmp_path / "d.keras")
    assert type(loaded) is keras.Sequential
    for ours, theirs in zip(discriminator.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_anything_else_with_a_compile_method_has_it_called():
    class Trainer:
        def compile(self, *args, **kwargs):
            self.called = (args, kwargs)

    trainer = Trainer()
    kutils.compile(trainer, "sgd", "mse", sample_weight_mode="temporal")
    assert trainer.called == (("sgd",), {"loss": "mse", "sample_weight_mode": "temporal"})


def test_an_object_without_compile_is_refused_naming_it():
    with pytest.raises(TypeError, match="Received: 3"):
        kutils.compile(3, "sgd", loss="mse")


def test_target_tensors_are_refused_naming_them():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    with pytest.raises(NotImplementedError, match="Received: target_tensors="):
        kutils.compile(model, "sgd", "mse", target_tensors=[keras.ops.ones((2, 1))])


def test_keras2_positional_metrics_are_the_metrics():
    # Keras 2's compile(optimizer, loss, metrics): Keras 3's third is loss_weights.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    kutils.compile(model, "sgd", "mse", ["mae"])
    logs = model.train_on_batch(np.ones((4, 3)), np.zeros((4, 1)), return_dict=True)
    assert sorted(logs) == ["loss", "mae"]


def test_migrate_rewrites_compile_only_in_files_that_set_trainable():
    frozen = (
        "import keras\n"
        "d.compile(loss='mse', optimizer=opt)\n"
        "d.trainable = False\n"
        "combined.compile(loss='mse', optimizer=opt)\n"
    )
    text, findings, _ = migrate_source(frozen)
    assert text == (
        "import keras\n"
        "from kutils import compile\n"
        "compile(d, loss='mse', optimizer=opt)\n"
        "d.trainable = False\n"
        "compile(combined, loss='mse', optimizer=opt)\n"
    )
    assert findings == []
    assert migrate_source(text)[0] == text  # idempotent
    untouched = "import keras\nd.compile(loss='mse', optimizer=opt)\nd.fit(x, y)\n"
    assert migrate_source(untouched)[0] == untouched


def test_migrate_uses_kutils_compile_when_the_file_has_its_own_compile():
    text, _, _ = migrate_source(
        "import keras\ncode = compile(src, 'f', 'exec')\nfor layer in m.layers:\n    layer.trainable = False\n"
        "m.compile(loss='mse')\n"
    )
    assert "kutils.compile(m, loss='mse')" in text
    assert "code = compile(src, 'f', 'exec')" in text


def test_migrate_leaves_an_imported_modules_compile_alone():
    source = (
        "import re\nimport regex as rx\nimport keras\nd.trainable = False\n"
        "pattern = re.compile('x', 2)\nother = rx.compile('x', 2, 3)\nd.compile(loss='mse')\n"
    )
    text, findings, _ = migrate_source(source)
    assert "pattern = re.compile('x', 2)\n" in text
    assert "other = rx.compile('x', 2, 3)\n" in text
    assert "compile(d, loss='mse')" in text
    assert findings == []


def test_migrate_leaves_a_models_own_self_compile_alone():
    source = "import keras\nclass M(keras.Model):\n    def go(self):\n        self.trainable = False\n        self.compile(loss='mse')\n"
    assert migrate_source(source)[0] == source


@pytest.mark.slow
def test_the_keras2_pattern_runs_after_migrate(tmp_path):
    text, ran = migrate_and_run_pattern("trainable_after_compile", tmp_path)
    assert "compile(critic," in text
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip().endswith("ok")


def test_under_a_strategy_the_optimizer_is_built_for_the_pinned_weights():
    import tensorflow as tf

    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        discriminator, _, combined = _gan("sgd", "sgd")
    kernel = discriminator.layers[0].kernel.numpy().copy()
    discriminator.train_on_batch(np.ones((4, 3)), np.zeros((4, 1)) + 5)
    assert len(discriminator.optimizer.variables) > 0
    assert not np.array_equal(discriminator.layers[0].kernel.numpy(), kernel)
    combined.train_on_batch(np.ones((4, 2)), np.ones((4, 1)))

"""kutils.train_on_batch (Keras 2's class_weight of a model with several outputs) and its
migrate rewrite.

The goldens (tests/goldens/class_weight/cases.json) were recorded by
tests/oracle/record_class_weight.py under Keras 2.3.1: Keras 2 snippets calling
``model.train_on_batch(..., class_weight=...)``. Here each snippet is migrated with
``kutils migrate`` and run on Keras 3; it must compute what Keras 2.3.1 computed.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from snippet_goldens import assert_like_golden

import kutils
from kutils.migrate import migrate_source

HERE = Path(__file__).resolve().parent
GOLDEN = json.loads((HERE / "goldens" / "class_weight" / "cases.json").read_text())
CASES = GOLDEN["cases"]
# Keras 2 applied no class weight in these cases, without a word; kutils says so.
IGNORED = {"one_output_list_of_two"}


def test_the_goldens_come_from_keras_2_3_1():
    assert GOLDEN["keras"] == "2.3.1"
    assert len(CASES) == 9


def _run_migrated(name: str) -> dict:
    text, findings, _ = migrate_source(CASES[name]["snippet"])
    # The metrics-per-output rewrite notes Keras 3's order of the metrics it returns;
    # kutils.train_on_batch returns Keras 2's (checked against the golden below).
    assert [f for f in findings if "metrics given per output" not in f[1]] == []
    # The snippets' predict calls are rewritten too, so the import may name both.
    assert re.search(r"^from kutils import [\w, ]*\btrain_on_batch\b", text, re.MULTILINE)
    assert ".train_on_batch(" not in text.replace("m.train_on_batch(x", "")
    scope: dict = {}
    expect_warning = name in IGNORED
    with pytest.warns(UserWarning, match="ignored") if expect_warning else contextlib.nullcontext():
        exec(compile(text, f"<{name}>", "exec"), scope)
    return scope["result"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_migrated_snippet_computes_what_keras_2_3_1_computed(name):
    result = _run_migrated(name)
    assert_like_golden(result, CASES[name]["result"])


def test_the_goldens_tell_the_weightings_apart():
    # Had the class weights been dropped, or applied to the other output, or not been
    # multiplied by the sample weights, the first step's losses would coincide.
    first = {
        name: tuple(round(v, 4) for v in case["result"]["train_on_batch"]["values"][0])
        for name, case in CASES.items()
        if "train_on_batch" in case["result"] and len(case["result"]["weights"]["values"]) == 31
    }
    # sparse and one-hot targets agree, and so do the losses with and without metrics
    losses = {name: values[:3] for name, values in first.items()}
    assert len(set(losses.values())) == len(losses) - 2
    assert losses["sparse_targets"] == losses["flat_metrics"] == losses["list_per_output"]


def _two_outputs() -> keras.Model:
    inputs = keras.Input((4,))
    code = keras.layers.Dense(3, activation="tanh")(inputs)
    valid = keras.layers.Dense(1, activation="sigmoid", name="valid")(code)
    label = keras.layers.Dense(3, activation="softmax", name="label")(code)
    model = keras.Model(inputs, [valid, label])
    model.compile(
        optimizer=keras.optimizers.SGD(0.0),
        loss=["binary_crossentropy", "categorical_crossentropy"],
    )
    return model


def _data():
    rng = np.random.RandomState(3)
    x = rng.normal(0, 1, (6, 4)).astype("float32")
    valid = np.array([[1], [0], [1], [0], [1], [0]], "float32")
    labels = np.eye(3, dtype="float32")[[0, 1, 2, 2, 1, 0]]
    return x, valid, labels


def test_class_weights_equal_the_sample_weights_keras_2_derived_from_them():
    model = _two_outputs()
    x, valid, labels = _data()
    cw_label = {0: 0.25, 1: 4.0, 2: 1.0}
    weighted = kutils.train_on_batch(model, x, [valid, labels], class_weight=[None, cw_label])
    per_sample = np.array([cw_label[c] for c in np.argmax(labels, axis=1)])
    by_hand = model.train_on_batch(x, [valid, labels], sample_weight=[np.ones(6), per_sample])
    plain = model.train_on_batch(x, [valid, labels])
    np.testing.assert_allclose(weighted, by_hand, rtol=1e-6)
    assert not np.allclose(weighted[2], plain[2])


def test_without_class_weight_the_call_is_keras_3s_own():
    model = _two_outputs()
    x, valid, labels = _data()
    sw = [np.linspace(1, 2, 6), np.ones(6)]
    ours = kutils.train_on_batch(model, x, [valid, labels], sample_weight=sw)
    np.testing.assert_allclose(ours, model.train_on_batch(x, [valid, labels], sample_weight=sw))


def test_the_values_returned_are_the_batchs_own_after_evaluate():
    # Keras 2.3.1 returned the batch's losses; Keras 3.8 returns their
    # means since evaluate began, as it does not reset the metrics first.
    model = _two_outputs()
    x, valid, labels = _data()
    cw_valid = {0: 1.0, 1: 3.0}
    weights = [np.array([cw_valid[v] for v in valid[:, 0]]), np.ones(6)]
    expected = model.evaluate(x, [valid, labels], sample_weight=weights, verbose=0)
    model.evaluate(x * 5.0, [valid, labels], verbose=0)
    ours = kutils.train_on_batch(model, x, [valid, labels], class_weight=[cw_valid, None])
    np.testing.assert_allclose(ours, expected, rtol=1e-5)


def test_a_missing_class_is_named_in_the_error():
    model = _two_outputs()
    x, valid, labels = _data()
    with pytest.raises(ValueError, match=r"classes \{2\} exist in the data"):
        kutils.train_on_batch(model, x, [valid, labels], class_weight=[None, {0: 1, 1: 1}])


def test_targets_of_rank_3_are_refused_as_keras_2_did():
    inputs = keras.Input((2, 4))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    y = np.eye(3, dtype="float32")[np.zeros((5, 2), int)]
    with pytest.raises(ValueError, match="3\\+ dimensional targets"):
        kutils.train_on_batch(model, np.ones((5, 2, 4)), y, class_weight={0: 1.0})


def test_a_class_weight_of_another_type_is_refused_naming_it():
    model = _two_outputs()
    x, valid, labels = _data()
    with pytest.raises(TypeError, match="Received: class_weight=3"):
        kutils.train_on_batch(model, x, [valid, labels], class_weight=3)


def test_a_dict_naming_no_output_warns_that_keras_2_ignored_it():
    model = _two_outputs()
    x, valid, labels = _data()
    with pytest.warns(UserWarning, match="none of its keys names an output"):
        ours = kutils.train_on_batch(model, x, [valid, labels], class_weight={0: 5.0, 1: 1.0})
    np.testing.assert_allclose(ours, model.train_on_batch(x, [valid, labels]), rtol=1e-6)


def test_anything_else_with_a_train_on_batch_method_has_it_called():
    class Trainer:
        def train_on_batch(self, x, y, sample_weight=None, class_weight=None):
            return ("own", x, y, sample_weight, class_weight)

    assert kutils.train_on_batch(Trainer(), 1, 2, class_weight={0: 1}) == (
        "own",
        1,
        2,
        None,
        {0: 1},
    )
    with pytest.raises(TypeError, match="Received: 3"):
        kutils.train_on_batch(3, 1, 2, class_weight={0: 1})


def test_migrate_rewrites_only_the_calls_that_pass_class_weight():
    source = (
        "import keras\n"
        "d_loss = self.discriminator.train_on_batch(imgs, [valid, labels], class_weight=[cw1, cw2])\n"
        "g_loss = self.combined.train_on_batch(noise, valid)\n"
        "model.train_on_batch(a, b, None, {0: 1})\n"
    )
    text, findings, _ = migrate_source(source)
    assert findings == []
    assert text == (
        "import keras\n"
        "from kutils import train_on_batch\n"
        "d_loss = train_on_batch(self.discriminator, imgs, [valid, labels], class_weight=[cw1, cw2])\n"
        "g_loss = self.combined.train_on_batch(noise, valid)\n"
        "train_on_batch(model, a, b, None, {0: 1})\n"
    )
    assert migrate_source(text)[0] == text  # idempotent


def test_migrate_uses_kutils_train_on_batch_when_the_file_has_its_own():
    source = "import keras\ndef train_on_batch(a, b):\n    pass\nm.train_on_batch(x, y, class_weight=cw)\n"
    text, _, _ = migrate_source(source)
    assert "import kutils" in text
    assert "kutils.train_on_batch(m, x, y, class_weight=cw)" in text


def test_accumulated_metrics_are_refused_with_what_to_do():
    model = _two_outputs()
    x, valid, labels = _data()
    with pytest.raises(NotImplementedError, match="Received: reset_metrics=False"):
        kutils.train_on_batch(
            model, x, [valid, labels], class_weight=[None, None], reset_metrics=False
        )


def test_metrics_come_in_keras_2s_order_output_by_output():
    # Keras 3's own train_on_batch sorts the metrics by name ("label_..." before
    # "valid_..."); Keras 2 listed them output by output, as the scripts index them.
    inputs = keras.Input((4,))
    code = keras.layers.Dense(3, activation="tanh")(inputs)
    valid = keras.layers.Dense(1, activation="sigmoid", name="valid")(code)
    label = keras.layers.Dense(3, activation="softmax", name="label")(code)
    model = keras.Model(inputs, [valid, label])
    model.compile(
        optimizer=keras.optimizers.SGD(0.0),
        loss=["binary_crossentropy", "categorical_crossentropy"],
        metrics=[["accuracy", "mae"], ["accuracy", "mae"]],
    )
    x, targets_valid, labels = _data()
    ours = kutils.train_on_batch(model, x, [targets_valid, labels], class_weight=[None, None])
    logs = model.train_on_batch(x, [targets_valid, labels], return_dict=True)
    order = ["loss", "valid_loss", "label_loss", "valid_accuracy", "valid_mae"]
    order += ["label_accuracy", "label_mae"]
    np.testing.assert_allclose(ours, [logs[key] for key in order], rtol=1e-6)

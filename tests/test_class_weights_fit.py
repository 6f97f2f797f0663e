"""kutils.fit (Keras 2's class_weight of fit, for models with several outputs) and its
migrate rewrite.

The goldens (tests/goldens/fit_class_weight/cases.json) were recorded by
tests/oracle/record_fit_class_weight.py under Keras 2.3.1: Keras 2 snippets calling
``model.fit(..., class_weight=...)``. Here each snippet is migrated with ``kutils
migrate`` and run on Keras 3; it must compute what Keras 2.3.1 computed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from snippet_goldens import assert_like_golden

import kutils
from kutils import _migrate_rules as rules
from kutils.migrate import migrate_source

HERE = Path(__file__).resolve().parent
GOLDEN = json.loads((HERE / "goldens" / "fit_class_weight" / "cases.json").read_text())
CASES = GOLDEN["cases"]


def test_the_goldens_come_from_keras_2_3_1():
    assert GOLDEN["keras"] == "2.3.1"
    assert len(CASES) == 4


def _run_migrated(name: str) -> dict:
    text, findings, _ = migrate_source(CASES[name]["snippet"])
    assert findings == []
    assert re.search(r"^from kutils import [\w, ]*\bfit\b", text, re.MULTILINE)
    assert "model.fit(" not in text
    assert migrate_source(text)[0] == text  # a second run changes nothing
    scope: dict = {}
    exec(compile(text, f"<{name}>", "exec"), scope)
    return scope["result"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_migrated_snippet_computes_what_keras_2_3_1_computed(name):
    assert_like_golden(_run_migrated(name), CASES[name]["result"])


def test_keras_3_alone_refuses_what_keras_2_trained():
    # The fault the rewrite fixes: Keras 3's own fit with one dict per output.
    scope: dict = {}
    setup = CASES["list_per_output"]["snippet"].split("model = build()")[0]
    exec(compile(migrate_source(setup)[0], "<setup>", "exec"), scope)
    model = scope["build"]()
    with pytest.raises((ValueError, TypeError)):
        model.fit(
            scope["x"],
            [scope["valid"], scope["labels"]],
            epochs=1,
            verbose=0,
            class_weight=[scope["cw_valid"], scope["cw_label"]],
        )


def _two_outputs() -> tuple[keras.Model, np.ndarray, list[np.ndarray]]:
    inputs = keras.Input((2,))
    heads = [
        keras.layers.Dense(1, activation="sigmoid", name="a")(inputs),
        keras.layers.Dense(2, activation="softmax", name="b")(inputs),
    ]
    model = keras.Model(inputs, heads)
    model.compile("sgd", ["binary_crossentropy", "categorical_crossentropy"])
    x = np.zeros((4, 2), "float32")
    return model, x, [np.array([[0], [1], [0], [1]], "float32"), np.eye(2)[[0, 1, 1, 0]]]


def test_a_missing_class_is_keras_2s_value_error():
    model, x, y = _two_outputs()
    with pytest.raises(ValueError, match="class"):
        kutils.fit(model, x, y, epochs=1, verbose=0, class_weight=[{0: 1.0}, None])


def test_several_outputs_with_a_generator_say_what_to_do():
    model, _, _ = _two_outputs()
    with pytest.raises(NotImplementedError, match=r"yielding \(x, \[y1, y2\], \[w1, w2\]\)"):
        kutils.fit(model, iter([]), class_weight=[{0: 1.0}, {0: 1.0}])


def test_keras_2_only_arguments_at_their_defaults_are_not_passed_to_keras_3():
    model, x, y = _two_outputs()
    history = kutils.fit(
        model, x, y, epochs=1, verbose=0, workers=1, max_queue_size=10, class_weight=[None, None]
    )
    assert len(history.history["loss"]) == 1
    with pytest.raises(TypeError, match="workers"):  # Keras 3's own refusal
        kutils.fit(model, x, y, epochs=1, verbose=0, workers=4, class_weight=[None, None])


def test_without_class_weight_the_call_is_keras_3s_own():
    model, x, y = _two_outputs()
    history = kutils.fit(model, x, y, 2, 2, 0)
    assert len(history.history["loss"]) == 2


def test_anything_else_with_a_fit_method_has_it_called():
    class Estimator:
        def fit(self, *args, **kwargs):
            return args, kwargs

    assert kutils.fit(Estimator(), 1, 2, epochs=3, class_weight="balanced") == (
        (1, 2),
        {"epochs": 3, "class_weight": "balanced"},
    )
    with pytest.raises(TypeError, match="takes a Keras model"):
        kutils.fit(object(), 1, 2)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "model.fit(x, [a, b], epochs=2, class_weight=[c1, c2])\n",
            "fit(model, x, [a, b], epochs=2, class_weight=[c1, c2])\n",
        ),
        (
            "m.fit(x, y, 32, 1, 0, None, 0.0, None, True, cw)  # Keras 2's order\n",
            "fit(m, x, y, 32, 1, 0, None, 0.0, None, True, cw)  # Keras 2's order\n",
        ),
    ],
)
def test_migrate_rewrites_the_fit_calls_that_pass_class_weight(body, expected):
    text, findings, _ = migrate_source("import keras\n" + body)
    assert text == "import keras\nfrom kutils import fit\n" + expected
    assert findings == []
    assert migrate_source(text)[0] == text


@pytest.mark.parametrize(
    "body",
    [
        "model.fit(x, y, epochs=3)\n",
        "model.fit(x, y, 32, 1, 0, None, 0.0, None, True)\n",
        "super().fit(x, y, class_weight=cw)\n",
    ],
)
def test_migrate_leaves_the_other_fit_calls(body):
    assert migrate_source("import keras\n" + body)[0] == "import keras\n" + body


def test_migrate_uses_kutils_fit_when_the_file_has_its_own_fit():
    body = "import keras\ndef fit(): pass\nmodel.fit(x, y, class_weight=cw)\n"
    text = migrate_source(body)[0]
    assert "kutils.fit(model, x, y, class_weight=cw)" in text


def test_the_rule_is_an_entry_of_the_rule_table():
    assert rules.by_kind("method-keyword")["fit"].keras3 == "kutils.fit"

"""kutils.predict (Keras 2.3.1's reading of predict's inputs) and its migrate rewrite.

The goldens (tests/goldens/predict/cases.json) were recorded by
tests/oracle/record_predict.py under Keras 2.3.1: Keras 2 snippets calling
``model.predict`` with 1-D arrays and inputs of different lengths. Here each snippet is
migrated with ``kutils migrate`` and run on Keras 3; it must compute what Keras 2.3.1
computed.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from snippet_goldens import assert_like_golden, migrate_and_run_pattern

import kutils
from kutils.migrate import migrate_source

HERE = Path(__file__).resolve().parent
GOLDEN = json.loads((HERE / "goldens" / "predict" / "cases.json").read_text())
CASES = GOLDEN["cases"]
# Keras 2 used the first input's samples without a word; kutils warns.
UNEQUAL = {"second_input_longer", "second_input_longer_batch_size", "dict_by_name"}


def test_the_goldens_come_from_keras_2_3_1():
    assert GOLDEN["keras"] == "2.3.1"
    assert len(CASES) == 9


def _run_migrated(name: str) -> dict:
    text, findings, _ = migrate_source(CASES[name]["snippet"])
    assert findings == []
    assert "from kutils import predict" in text
    assert ".predict(" not in text
    scope: dict = {}
    unequal = pytest.warns(UserWarning, match="different lengths")
    with warnings.catch_warnings():
        # Keras 3's advice about the Sequential's input_shape= (not about predict).
        warnings.filterwarnings("ignore", message="Do not pass an `input_shape`")
        with unequal if name in UNEQUAL else contextlib.nullcontext():
            exec(compile(text, f"<{name}>", "exec"), scope)
    return scope["result"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_migrated_snippet_computes_what_keras_2_3_1_computed(name):
    result = _run_migrated(name)
    assert_like_golden(result, CASES[name]["result"])


def test_the_goldens_are_those_of_the_first_inputs_samples():
    # The 1-D labels and their column give the same predictions; the longer second
    # input's first rows differ from `vectors`, so its case is not the same numbers.
    cases = {name: np.array(CASES[name]["result"]["predict"]["values"]) for name in UNEQUAL}
    one_d = np.array(CASES["one_d_int_labels"]["result"]["predict"]["values"])
    column = np.array(CASES["column_labels"]["result"]["predict"]["values"])
    np.testing.assert_allclose(one_d, column, rtol=1e-6)
    np.testing.assert_allclose(
        cases["second_input_longer"], cases["second_input_longer_batch_size"], rtol=1e-6
    )
    assert not np.allclose(cases["second_input_longer"], one_d)


def _two_inputs() -> keras.Model:
    label = keras.Input(shape=(1,), dtype="int32", name="label")
    vector = keras.Input(shape=(2,), name="vector")
    code = keras.layers.Flatten()(keras.layers.Embedding(5, 2)(label))
    return keras.Model([label, vector], keras.layers.Concatenate()([code, vector]))


def test_keras_3_alone_refuses_what_kutils_predict_accepts():
    model = _two_inputs()
    labels, vectors = np.arange(4), np.ones((7, 2), "float32")
    with pytest.raises(ValueError, match="cardinality"):
        model.predict([labels.reshape(-1, 1), vectors], verbose=0)
    with pytest.warns(UserWarning, match=r"label: 4, vector: 7|input 0: 4, input 1: 7"):
        predicted = kutils.predict(model, [labels, vectors])
    assert predicted.shape == (4, 4)
    embedding = model.layers[1].get_weights()[0] if model.layers[1].weights else None
    assert embedding is not None
    np.testing.assert_allclose(predicted[:, :2], embedding[labels], rtol=1e-6)
    np.testing.assert_allclose(predicted[:, 2:], vectors[:4], rtol=1e-6)


def test_the_warning_names_the_lengths_of_a_dict_by_input_name():
    model = _two_inputs()
    x = {"vector": np.ones((9, 2), "float32"), "label": np.arange(3)}
    with pytest.warns(UserWarning, match=r"\(label: 3, vector: 9 rows\)"):
        assert kutils.predict(model, x).shape == (3, 4)


def test_an_input_shorter_than_the_first_is_keras_2s_index_error():
    model = _two_inputs()
    with pytest.raises(IndexError, match=r"Received: lengths=\[6, 2\]"):
        kutils.predict(model, [np.arange(6), np.ones((2, 2), "float32")])


def test_inputs_of_one_length_say_nothing(recwarn):
    model = _two_inputs()
    assert kutils.predict(model, [np.arange(3), np.ones((3, 2), "float32")]).shape == (3, 4)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_a_generator_goes_to_predict_generator_as_in_keras_2():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False)])
    model.set_weights([np.array([[1.0], [2.0]], "float32")])

    def batches():
        while True:
            yield np.array([[1.0, 1.0], [0.0, 1.0]], "float32")

    predicted = kutils.predict(model, batches(), steps=2)
    np.testing.assert_allclose(predicted.ravel(), [3.0, 2.0, 3.0, 2.0])


def test_anything_else_with_a_predict_method_has_it_called_as_written():
    class Estimator:
        def predict(self, x, **given):
            return ("own", x, given)

    assert kutils.predict(Estimator(), [1, 2]) == ("own", [1, 2], {})
    assert kutils.predict(Estimator(), 5, batch_size=4) == ("own", 5, {"batch_size": 4})
    with pytest.raises(TypeError, match="Received: model=3"):
        kutils.predict(3, [1])


def test_migrate_rewrites_the_calls_keras_2s_predict_accepted():
    source = (
        "import keras\n"
        "class G:\n"
        "    def sample(self):\n"
        "        imgs = self.generator.predict([noise, sampled_labels])\n"
        "        return self.predict(imgs) + super().predict(imgs)\n"
        "out = net.predict([a, b], batch_size=8, verbose=1)\n"
        "first = model.predict(x=data)\n"
        "mean, std = gp.predict(X, return_std=True)\n"
        "spread = model.predict(*args)\n"
    )
    text, findings, _ = migrate_source(source)
    assert findings == []
    assert text == (
        "import keras\n"
        "from kutils import predict\n"
        "class G:\n"
        "    def sample(self):\n"
        "        imgs = predict(self.generator, [noise, sampled_labels])\n"
        "        return self.predict(imgs) + super().predict(imgs)\n"
        "out = predict(net, [a, b], batch_size=8, verbose=1)\n"
        "first = predict(model, x=data)\n"
        "mean, std = gp.predict(X, return_std=True)\n"
        "spread = model.predict(*args)\n"
    )
    assert migrate_source(text)[0] == text  # idempotent


def test_migrate_uses_kutils_predict_when_the_file_has_its_own():
    source = "import keras\ndef predict(a):\n    pass\ny = m.predict(x, 16)\n"
    text, _, _ = migrate_source(source)
    assert "import kutils" in text
    assert "y = kutils.predict(m, x, 16)\n" in text
    assert migrate_source(text)[0] == text


@pytest.mark.slow
def test_the_keras2_pattern_runs_after_migrate(tmp_path):
    text, ran = migrate_and_run_pattern("predict_unequal_inputs", tmp_path)
    assert "predict(net, [" in text
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip().endswith("ok")
    assert "(input 0: 4, input 1: 10 rows)" in ran.stderr


def test_keras_3_alone_fails_on_1d_labels_after_tracing_columns():
    # The acgan pattern (the golden case conditional_columns_then_one_d), unmigrated:
    # the failure kutils.predict avoids by giving Keras 3 the column Keras 2 made.
    scope: dict = {}
    snippet = CASES["conditional_columns_then_one_d"]["snippet"]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Do not pass an `input_shape`")
        with pytest.raises(ValueError, match="unknown TensorShape"):
            exec(compile(snippet, "<unmigrated>", "exec"), scope)

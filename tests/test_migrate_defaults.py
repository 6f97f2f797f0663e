"""kutils migrate writes out the Keras 2.3.1 defaults that Keras 3 changed.

Each case of ``tests/goldens/migrate_defaults/cases.json`` (recorded by
``tests/oracle/record_migrate_defaults.py`` under Keras 2.3.1) is Keras 2 code that leaves
an argument at its default, and what Keras 2.3.1 computed with it. The migrated code must
compute the same on Keras 3; the code as written must not (else the rule proves nothing).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kutils.migrate import migrate_source

FOLDER = Path(__file__).parent / "goldens" / "migrate_defaults"
CASES = json.loads((FOLDER / "cases.json").read_text())["cases"]
# Lines each case's migration must hold.
EXPECTED = {
    "optimizer_defaults": [
        "Adadelta(learning_rate=1.0)",
        "Adagrad(learning_rate=0.01, initial_accumulator_value=0.0)",
        "optimizers.Adagrad(learning_rate=0.1, initial_accumulator_value=0.0)",
        "keras.optimizers.Adamax(learning_rate=0.002)",
    ],
    "optimizer_names": [
        "optimizer=keras.optimizers.Adadelta(learning_rate=1.0))",
        "optimizer=keras.optimizers.Adagrad(learning_rate=0.01, initial_accumulator_value=0.0), metrics",
        'compile(optimizer=keras.optimizers.Adamax(learning_rate=0.002), loss="mse")',
        'compile(keras.optimizers.Adadelta(learning_rate=1.0), "mse")',
        "import keras",
    ],
    "gru_default": [
        "GRU(4, input_shape=(5, 2), reset_after=False)",
        "GRU(4, return_sequences=True, input_shape=(5, 2), reset_after=False)",
        "GRUCell(4, reset_after=False)",
    ],
}


def _run(text: str, name: str) -> dict:
    scope: dict = {"folder": str(FOLDER)}
    exec(compile(text, f"<{name}>", "exec"), scope)
    return scope["result"]


# Keras 3's Adagrad adds epsilon under the square root, sqrt(a + 1e-7), where Keras 2.3.1
# added it after, sqrt(a) + 1e-7: no argument makes the two equal, the steps differ by a
# few parts in 1e5 (docs/compat.md).
_ADAGRAD_TOLERANCE = 5e-5


def _close(key: str, value: np.ndarray, recorded: dict) -> bool:
    """Whether ``value`` is one of the results Keras 2.3.1 gave (see REPEAT when recording)."""
    tolerance = _ADAGRAD_TOLERANCE if key.startswith("adagrad") else 1e-6
    outcomes = [recorded["values"], *recorded.get("alternatives", [])]
    return any(np.allclose(value, seen, rtol=1e-6, atol=tolerance) for seen in outcomes)


def test_every_case_has_its_expectations():
    assert set(CASES) == set(EXPECTED)


@pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`:UserWarning")
@pytest.mark.parametrize("name", sorted(CASES))
def test_migrated_defaults_compute_what_keras_2_3_1_computed(name):
    text, findings, _ = migrate_source(CASES[name]["snippet"])
    assert findings == []
    for fragment in EXPECTED[name]:
        assert fragment in text, (fragment, text)
    result = _run(text, name)
    expected = CASES[name]["result"]
    assert sorted(result) == sorted(expected)
    for key, recorded in expected.items():
        value = np.asarray(result[key])
        assert list(value.shape) == recorded["shape"], key
        if value.dtype.kind == "f":
            assert value.dtype == np.dtype(recorded["dtype"]), key
            assert _close(key, value, recorded), (key, value.tolist(), recorded)
        else:
            assert value.tolist() == recorded["values"], key
    again, _, edits = migrate_source(text)
    assert again == text and edits == 0


@pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`:UserWarning")
@pytest.mark.parametrize("name", ["optimizer_defaults", "optimizer_names"])
def test_the_code_as_written_computes_otherwise_on_keras_3(name):
    snippet = CASES[name]["snippet"]
    if name == "optimizer_defaults":
        snippet = snippet.replace("lr=0.1", "learning_rate=0.1")  # Keras 3 rejects lr=
    result = _run(snippet, name)
    expected = CASES[name]["result"]
    for key in ("adadelta", "adagrad", "adamax"):
        value = np.asarray(result[key])
        assert not _close(key, value, expected[key]), key


@pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`:UserWarning")
def test_the_gru_as_written_builds_another_cell_on_keras_3():
    snippet = CASES["gru_default"]["snippet"]
    result = _run(snippet, "gru_default")
    assert result["gru_bias_shape"].tolist() == [2, 12]
    assert CASES["gru_default"]["result"]["gru_bias_shape"]["values"] == [12]


@pytest.mark.parametrize(
    "code, fixed",
    [
        ("GRU(8)", "GRU(8, reset_after=False)"),
        ("GRU(8, reset_after=True)", "GRU(8, reset_after=True)"),
        ("layers.GRU(8)", "layers.GRU(8, reset_after=False)"),
        ("Adadelta(0.5)", "Adadelta(0.5)"),
        ("Adadelta(lr=0.5)", "Adadelta(learning_rate=0.5)"),
        ("Adadelta(rho=0.9)", "Adadelta(rho=0.9, learning_rate=1.0)"),
        ("Nadam(lr=0.01)", "Nadam(learning_rate=0.01)"),
        ("Adam()", "Adam()"),
        ("SGD()", "SGD()"),
        ("RMSprop()", "RMSprop()"),
    ],
)
def test_a_default_is_written_only_where_the_call_leaves_it_out(code, fixed):
    header = (
        "from keras import layers\nfrom keras.layers import GRU\nfrom keras.optimizers import *\n"
    )
    header = header.replace("*", "Adadelta, Nadam, Adam, SGD, RMSprop")
    text, _, _ = migrate_source(f"{header}x = {code}\n")
    assert text == f"{header}x = {fixed}\n"


def test_the_defaults_are_written_into_a_multi_line_call_without_touching_its_layout():
    original = "from keras.layers import GRU\nx = GRU(  # units\n    8,\n    dropout=0.1,\n)\n"
    text, _, _ = migrate_source(original)
    assert text == original.replace("dropout=0.1,", "dropout=0.1, reset_after=False,")


def test_tf_keras_code_is_left_alone():
    # tf.keras 2.x had Keras 3's defaults already: the code computes the same on Keras 3.
    original = (
        "import tensorflow as tf\n"
        "from tensorflow.keras.layers import GRU\n"
        "from tensorflow.keras.optimizers import Adadelta\n"
        "a = GRU(8)\nb = Adadelta()\nc = tf.keras.layers.GRU(8)\n"
        "model.compile(optimizer='adadelta', loss='mse')\n"
    )
    text, findings, edits = migrate_source(original)
    assert (text, findings, edits) == (original, [], 0)


def test_unpacked_arguments_are_reported_not_rewritten():
    original = "from keras.layers import GRU\nx = GRU(8, **options)\n"
    text, findings, _ = migrate_source(original)
    assert text == original
    assert [(line, "cannot tell" in m and "reset_after=False" in m) for line, m in findings] == [
        (2, True)
    ]


def test_an_unsure_compile_is_reported_not_rewritten():
    original = "import keras\nrunner.compile('adadelta')\n"
    text, findings, _ = migrate_source(original)
    assert text == original
    assert len(findings) == 1 and "Adadelta" in findings[0][1]


def test_nadam_momentum_schedule_is_reported():
    original = "from keras.optimizers import Nadam\nopt = Nadam(lr=0.001, schedule_decay=0.01)\n"
    text, findings, _ = migrate_source(original)
    assert "Nadam(learning_rate=0.001, schedule_decay=0.01)" in text
    messages = " ".join(message for _, message in findings)
    assert "0.96 ** (0.004 * step)" in messages and "has no schedule_decay" in messages


def test_conv_lstm_recurrent_activation_is_reported_unless_given():
    code = "from keras.layers import ConvLSTM2D\nx = ConvLSTM2D(4, (3, 3){})\n"
    _, findings, _ = migrate_source(code.format(""))
    assert len(findings) == 1 and "kutils.backend.hard_sigmoid" in findings[0][1]
    _, findings, _ = migrate_source(code.format(", recurrent_activation='sigmoid'"))
    assert findings == []

"""kutils migrate on a layer's fixed batch (``batch_size=``, ``batch_input_shape=``).

What the rewritten code computes is proven against Keras 2.3.1 in
``tests/test_migrate_rules.py`` (cases ``stateful_batch_size`` and
``stateful_batch_input_shape``); here, the exact text of each rewrite, and the shapes of
code that are reported instead.
"""

from __future__ import annotations

import ast

import pytest

from kutils.migrate import migrate_source

HEAD = "from keras.models import Sequential\nfrom keras.layers import LSTM, Dense, Flatten\n"


def _migrate(body: str, head: str = HEAD) -> tuple[str, list[tuple[int, str]]]:
    text, findings, _ = migrate_source(head + body)
    ast.parse(text)
    again, _, edits = migrate_source(text)
    assert (again, edits) == (text, 0)  # idempotent
    return text[len(head) :] if text.startswith(head) else text, findings


def test_add_after_sequential_gets_an_input_with_the_batch_first():
    body = (
        "def build(n):\n"
        "    model = Sequential()\n"
        "    model.add(LSTM(4,\n"
        "                   input_shape=(3, 1),\n"
        "                   batch_size=n,\n"
        "                   stateful=True))\n"
        "    return model\n"
    )
    text, findings = _migrate(body)
    assert text == (
        "import keras\n"
        "def build(n):\n"
        "    model = Sequential()\n"
        "    model.add(keras.Input(shape=(3, 1), batch_size=n))\n"
        "    model.add(LSTM(4,\n"
        "                   stateful=True))\n"
        "    return model\n"
    )
    assert findings == []


def test_first_item_of_the_sequential_list_gets_the_input_before_it():
    body = "m = Sequential([LSTM(4, batch_input_shape=(2, 3, 1), stateful=True), Dense(1)])\n"
    text, findings = _migrate(body)
    assert text == (
        "import keras\n"
        "m = Sequential([keras.Input(batch_shape=(2, 3, 1)), LSTM(4, stateful=True), Dense(1)])\n"
    )
    assert findings == []


def test_layers_keyword_and_the_files_own_name_for_keras():
    head = "import tensorflow.keras as tk\n"
    body = "m = tk.Sequential(layers=[tk.layers.Dense(2, input_dim=3, batch_size=4)])\n"
    text, findings = _migrate(body, head)
    assert (
        text
        == "m = tk.Sequential(layers=[tk.Input(shape=(3,), batch_size=4), tk.layers.Dense(2)])\n"
    )
    assert findings == []


def test_keywords_first_among_the_arguments_and_a_trailing_comma():
    body = (
        "m = Sequential()\n"
        "m.add(Dense(input_shape=(3,), batch_size=4, units=2))\n"
        "n = Sequential([Flatten(batch_input_shape=(2, 3, 3),), Dense(1)])\n"
    )
    text, findings = _migrate(body)
    assert "m.add(keras.Input(shape=(3,), batch_size=4))\nm.add(Dense(units=2))\n" in text
    assert "Sequential([keras.Input(batch_shape=(2, 3, 3)), Flatten(), Dense(1)])" in text
    assert findings == []


def test_batch_input_shape_wins_over_input_shape_as_in_keras_2():
    body = (
        "m = Sequential([LSTM(4, input_shape=(9, 9), batch_size=7, batch_input_shape=(2, 3, 1))])\n"
    )
    text, _ = _migrate(body)
    assert "Sequential([keras.Input(batch_shape=(2, 3, 1)), LSTM(4)])" in text


def test_a_constant_dtype_goes_to_the_input_too():
    body = "m = Sequential([Dense(2, input_shape=(3,), batch_size=4, dtype='float64')])\n"
    text, _ = _migrate(body)
    assert (
        "keras.Input(shape=(3,), batch_size=4, dtype='float64'), Dense(2, dtype='float64')" in text
    )


def test_same_line_statements_are_joined_with_a_semicolon():
    body = "m = Sequential(); m.add(Dense(2, input_shape=(3,), batch_size=4))\n"
    text, _ = _migrate(body)
    assert text.endswith(
        "m = Sequential(); m.add(keras.Input(shape=(3,), batch_size=4)); m.add(Dense(2))\n"
    )


def test_crlf_file_keeps_its_line_endings():
    source = (
        HEAD + "m = Sequential()\n    \nm.add(Dense(2, input_shape=(3,), batch_size=4))\n"
    ).replace("\n", "\r\n")
    text, findings, _ = migrate_source(source)
    assert "\r\nm.add(keras.Input(shape=(3,), batch_size=4))\r\nm.add(Dense(2))\r\n" in text
    assert "\n" not in text.replace("\r\n", "")
    assert findings == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        # Keras 2 ignored these arguments off a Sequential's first layer.
        ("y = LSTM(4, batch_input_shape=(2, 3, 1))(x)\n", "not provably the first"),
        (
            "m = Sequential()\nm.add(Dense(3, input_shape=(2,)))\n"
            "m.add(LSTM(4, input_shape=(3, 1), batch_size=2))\n",
            "not provably the first",
        ),
        (
            "m = make()\nm.add(LSTM(4, input_shape=(3, 1), batch_size=2))\n",
            "not provably the first",
        ),
        ("m = Sequential([LSTM(4, input_shape=shape(), batch_size=2)])\n", "calls a function"),
        ("m = Sequential([LSTM(4, batch_size=2, **options)])\n", "unpacked"),
        ("m = Sequential([LSTM(4, batch_size=2)])\n", "without input_shape"),
        ("m = Sequential([Dense(4, input_shape=(3,), batch_size=2, dtype=kind)])\n", "dtype="),
        (
            "m = Sequential([LSTM(4,  # units\n    input_shape=(3, 1), batch_size=2)])\n",
            "a comment",
        ),
    ],
)
def test_shapes_it_cannot_prove_are_reported_with_the_fix(body, reason):
    text, findings, _ = migrate_source(HEAD + body)
    assert text == HEAD + body
    messages = [m for _, m in findings if "batch_" in m]
    assert len(messages) == 1, findings
    assert reason in messages[0]
    assert "keras.Input(" in messages[0]


def test_a_sequential_class_of_the_files_own_is_not_keras():
    source = (
        "from keras.layers import LSTM\n"
        "class Sequential(list):\n    pass\n"
        "m = Sequential([LSTM(4, input_shape=(3, 1), batch_size=2)])\n"
    )
    text, findings, _ = migrate_source(source)
    assert text == source
    assert [line for line, m in findings if "batch_size=" in m] == [4]


def test_inputs_keep_their_batch_arguments():
    source = (
        "from keras.layers import Input, InputLayer\n"
        "a = Input(shape=(3,), batch_size=2)\nb = InputLayer(batch_input_shape=(2, 3))\n"
    )
    assert migrate_source(source)[:2] == (source, [])


def test_reset_states_of_a_subclass_calling_its_parent_is_left_alone():
    source = (
        "from keras.layers import LSTM\n"
        "class Logged(LSTM):\n"
        "    def reset_states(self, states=None):\n"
        "        print('reset')\n"
        "        super().reset_states(states)\n"
        "layer = Logged(3, stateful=True)\n"
        "layer.reset_states()\n"
        "model.reset_states()\n"
    )
    text, findings, _ = migrate_source(source)
    assert "        super().reset_states(states)\n" in text
    assert "layer.reset_states()\n" in text  # an instance of the file's own class
    assert "reset_states(model)\n" in text
    assert findings == []

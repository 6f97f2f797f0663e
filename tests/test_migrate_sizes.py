"""kutils migrate's layer-size rule: numpy integers handed to a layer through a name.

Keras 3 refuses a numpy integer as the size of a ``Dense``, ``Embedding``, ``LSTM``,
``LSTMCell`` or ``RepeatVector`` (Keras 2.3.1 took one). ``Dense(np.prod(shape))`` is
covered with the keras.backend goldens (tests/test_migrate_backend.py); the values a
model built through names computes are compared with Keras 2.3.1's in
tests/test_migrate_rules.py (case ``layer_sizes_by_name``). Here: which names the rule
can show to be numpy integers, and that it leaves every other one alone.
"""

from __future__ import annotations

import pytest

from kutils.migrate import migrate_source

HEADER = "import numpy as np\nfrom keras.layers import Dense, Embedding, GRU, LSTM, LSTMCell, RepeatVector\n"


def _migrated(body: str) -> str:
    text, findings, _ = migrate_source(HEADER + body)
    assert findings == []
    assert migrate_source(text)[0] == text  # idempotent
    return text[len(HEADER) :]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (  # the Keras 2.3.1 example reuters_mlp.py's pattern
            "num_classes = np.max(y_train) + 1\nlayer = Dense(num_classes)\n",
            "num_classes = np.max(y_train) + 1\nlayer = Dense(int(num_classes))\n",
        ),
        (
            "def f(y):\n    n = np.max(y) + 1\n    return Dense(units=n)\n",
            "def f(y):\n    n = np.max(y) + 1\n    return Dense(units=int(n))\n",
        ),
        (  # a module name read in a function
            "n = np.prod(shape)\ndef f():\n    return LSTM(n)\n",
            "n = np.prod(shape)\ndef f():\n    return LSTM(int(n))\n",
        ),
        (  # every assignment a numpy integer, in branches
            "if a:\n    n = np.prod(s)\nelse:\n    n = np.max(y) // 2\nr = RepeatVector(n)\n",
            "if a:\n    n = np.prod(s)\nelse:\n    n = np.max(y) // 2\nr = RepeatVector(int(n))\n",
        ),
        (
            "m = n = np.sum(counts)\nk: int = np.int64(4)\ne = Embedding(n, output_dim=k)\n",
            "m = n = np.sum(counts)\nk: int = np.int64(4)\ne = Embedding(int(n), output_dim=int(k))\n",
        ),
        (  # a class body's own name
            "class Net:\n    n = np.prod(s)\n    cell = LSTMCell(n)\n",
            "class Net:\n    n = np.prod(s)\n    cell = LSTMCell(int(n))\n",
        ),
        (  # Keras-GAN's pattern: sizes kept on self in __init__
            "class G:\n"
            "    def __init__(self, shape):\n"
            "        self.flat = np.prod(shape)\n"
            "        self.classes = 10\n"
            "    def build(self):\n"
            "        return Embedding(self.classes, self.flat), Dense(self.flat)\n",
            "class G:\n"
            "    def __init__(self, shape):\n"
            "        self.flat = np.prod(shape)\n"
            "        self.classes = 10\n"
            "    def build(self):\n"
            "        return Embedding(self.classes, int(self.flat)), Dense(int(self.flat))\n",
        ),
    ],
)
def test_a_name_assigned_only_numpy_integers_is_wrapped_in_int(body, expected):
    assert _migrated(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "n = np.max(y) + 1\nn = 5\nlayer = Dense(n)\n",  # assigned another kind too
        "n = np.sqrt(m)\nlayer = Dense(n)\n",  # a float: Keras 2.3.1 refused it too
        "n = np.prod(s) / 2\nlayer = Dense(n)\n",
        "def f(n=np.prod(s)):\n    return Dense(n)\n",  # a parameter
        "for n in np.arange(1, 3):\n    Dense(n)\n",
        "n = np.prod(s)\nn += 1\nlayer = Dense(n)\n",
        "n, m = np.prod(s), 2\nlayer = Dense(n)\n",
        "from config import n\nlayer = Dense(n)\n",
        "n = np.prod(s)\nfrom config import *\nlayer = Dense(n)\n",
        "n = np.prod(s)\ndef g():\n    global n\n    n = 2.5\nlayer = Dense(n)\n",
        "n = np.prod(s)\nif (n := 2.5):\n    layer = Dense(n)\n",
        "def f():\n    n = np.prod(s)\nlayer = Dense(n)\n",  # another scope's n
        "layer = Dense(n)\n",  # bound nowhere in the file
        "def f(np):\n    n = np.prod(s)\n    return Dense(n)\n",  # np is not numpy here
        "n = np.prod(s)\nwith open(p) as n:\n    pass\nlayer = Dense(n)\n",
        "n = np.prod(s)\ndel n\nlayer = Dense(n)\n",
        "n = np.prod(s)\nlayer = GRU(n, reset_after=False)\n",  # Keras 2.3.1's GRU refused numpy integers
    ],
)
def test_a_name_not_shown_to_be_a_numpy_integer_is_left_alone(body):
    assert _migrated(body) == body


def _net(init: str, extra: str = "") -> str:
    return (
        "class G(Base):\n"
        f"{extra}"
        "    def __init__(self, shape):\n"
        f"{init}"
        "    def build(self):\n"
        "        return Dense(self.flat)\n"
    )


@pytest.mark.parametrize(
    "body",
    [
        _net("        self.flat = np.prod(shape)\n        self.flat += 1\n"),
        _net("        self.flat = np.prod(shape)\n        self.flat = 7.5\n"),
        _net("        self.flat, self.other = np.prod(shape), 1\n"),
        _net("        self.flat = np.prod(shape)\n", extra="    flat = 3.5\n"),  # class attribute
        _net("        self.flat = np.prod(shape)\n") + "net.flat = 2.5\n",  # stored elsewhere
        _net("        self.flat = np.prod(shape)\n        setattr(self, 'flat', 2.5)\n"),
        _net(
            "        def later():\n            self.flat = 2.5\n        self.flat = np.prod(shape)\n"
        ),
        _net("        self.flat = np.prod(shape)\n        self = other\n"),
        _net("        pass\n"),  # assigned nowhere in the file
        # read in a function nested in the method: self may be another object there
        "class G:\n"
        "    def __init__(self, shape):\n"
        "        self.flat = np.prod(shape)\n"
        "    def build(self):\n"
        "        return lambda self: Dense(self.flat)\n",
        # a decorated method: self may not be the instance
        "class G:\n"
        "    def __init__(self, shape):\n"
        "        self.flat = np.prod(shape)\n"
        "    @staticmethod\n"
        "    def build(self):\n"
        "        return Dense(self.flat)\n",
    ],
)
def test_an_attribute_not_shown_to_be_a_numpy_integer_is_left_alone(body):
    assert _migrated(body) == body


def test_the_rest_of_the_file_is_still_migrated_around_a_named_size():
    # The rule reads the assignments of the scopes it looks into; every other rewrite
    # of those scopes, before and after the layer, is still made.
    source = (
        "import numpy as np\n"
        "from keras.layers import Dense\n"
        "num_classes = np.max(y) + 1\n"
        "x = np.zeros(3, dtype=np.float)\n"
        "class Net:\n"
        "    def __init__(self):\n"
        "        self.units = np.prod((2, 3))\n"
        "    def train(self, model):\n"
        "        model.add(Dense(self.units))\n"
        "        model.add(Dense(num_classes))\n"
        "        return model.fit_generator(batches(), steps_per_epoch=2)\n"
    )
    text, findings, _ = migrate_source(source)
    assert findings == []
    assert text == (
        "import numpy as np\n"
        "from keras.layers import Dense\n"
        "from kutils import fit_generator\n"
        "num_classes = np.max(y) + 1\n"
        "x = np.zeros(3, dtype=float)\n"
        "class Net:\n"
        "    def __init__(self):\n"
        "        self.units = np.prod((2, 3))\n"
        "    def train(self, model):\n"
        "        model.add(Dense(int(self.units)))\n"
        "        model.add(Dense(int(num_classes)))\n"
        "        return fit_generator(model, batches(), steps_per_epoch=2)\n"
    )


@pytest.mark.parametrize(
    ("layer", "inputs", "output"),
    [
        ("Dense(size)", (3,), (None, 4)),
        ("Embedding(size, 2)", (3,), (None, 3, 2)),
        ("Embedding(5, size)", (3,), (None, 3, 4)),
        ("LSTM(size)", (5, 2), (None, 4)),
        ("RNN(LSTMCell(size))", (5, 2), (None, 4)),
        ("RepeatVector(size)", (3,), (None, 4, 3)),
    ],
)
def test_keras_3_refuses_a_numpy_integer_for_each_size_the_rule_wraps(layer, inputs, output):
    # Why each entry of the rule's table is there: the unwrapped size fails on Keras 3
    # (in the constructor or at the first call), and the int() the rule adds does not.
    import keras
    import numpy as np
    from keras.layers import LSTM, RNN, Dense, Embedding, LSTMCell, RepeatVector

    names = {"Dense": Dense, "Embedding": Embedding, "LSTM": LSTM, "RNN": RNN}
    names.update({"LSTMCell": LSTMCell, "RepeatVector": RepeatVector})

    def build(size: object) -> keras.Model:
        made = eval(layer, {**names, "size": size})
        return keras.Sequential([keras.Input(inputs), made])

    with pytest.raises((ValueError, TypeError), match="integer"):
        build(np.int64(4))
    assert build(int(np.int64(4))).output_shape == output

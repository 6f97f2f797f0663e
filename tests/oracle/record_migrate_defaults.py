"""Record what Keras 2.3.1 computes with the defaults that Keras 3 changed.

Run with the Keras 2.3.1 Python (``nox -s oracle -- defaults``, or by hand)::

    python3.7 tests/oracle/record_migrate_defaults.py [outdir]

Each snippet below is Keras 2 code that leaves an argument at its Keras 2.3.1 default
(``GRU(3)``, ``Adadelta()``, ``compile(optimizer='adagrad')``); run as it is, it leaves a
dict ``result`` of numpy arrays. This script runs each snippet under Keras 2.3.1 and writes
``cases.json`` into ``tests/goldens/migrate_defaults/`` (or ``outdir``), in the format of
``record_migrate_rules.py``, whose set-up and helpers it shares.
``tests/test_migrate_defaults.py`` migrates each snippet, runs it on Keras 3 and compares.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from record_migrate_rules import _SETUP, describe, run

SNIPPETS = {
    # Three optimizer steps (12 rows, batches of 4) from fixed weights on fixed data.
    "optimizer_defaults": """
import keras
from keras.models import Sequential
from keras.layers import Dense
from keras import optimizers
from keras.optimizers import Adadelta, Adagrad

def train(optimizer):
    model = Sequential([Dense(2, input_shape=(4,))])
    model.set_weights([w0, b0])
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x[:12], y[:12], batch_size=4, epochs=1, shuffle=False, verbose=0)
    return model.get_weights()

result = {}
for name, make in [("adadelta", lambda: Adadelta()),
                   ("adagrad", lambda: Adagrad()),
                   ("adagrad_lr", lambda: optimizers.Adagrad(lr=0.1)),
                   ("adamax", lambda: keras.optimizers.Adamax())]:
    kernel, bias = train(make())
    result[name] = kernel
    result[name + "_bias"] = bias
""",
    "optimizer_names": """
from keras.models import Sequential
from keras.layers import Dense
models = [Sequential([Dense(2, input_shape=(4,))]) for _ in range(4)]
for model in models:
    model.set_weights([w0, b0])
models[0].compile(loss="mse", optimizer="adadelta")
models[1].compile(loss="mse", optimizer='adagrad', metrics=["mae"])
models[2].compile(optimizer="adamax", loss="mse")
models[3].compile("Adadelta", "mse")
result = {}
for name, model in zip(["adadelta", "adagrad", "adamax", "positional"], models):
    model.fit(x[:12], y[:12], batch_size=4, epochs=1, shuffle=False, verbose=0)
    result[name] = model.get_weights()[0]
""",
    # Fixed weights of each shape the layer builds (reset_after changes the bias shape).
    "gru_default": """
from keras.models import Sequential
from keras.layers import GRU, GRUCell, RNN
seq = rng.normal(0, 1, (3, 5, 2)).astype("float32")
result = {}
for name, layer in [("gru", GRU(4, input_shape=(5, 2))),
                    ("gru_sequences", GRU(4, return_sequences=True, input_shape=(5, 2))),
                    ("cell", RNN(GRUCell(4), input_shape=(5, 2)))]:
    model = Sequential([layer])
    weights = [rng.uniform(-1, 1, w.shape).astype("float32") for w in model.get_weights()]
    model.set_weights(weights)
    result[name] = model.predict(seq)
    result[name + "_bias_shape"] = np.array(weights[-1].shape)
""",
}


# Keras 2.3.1's Adamax reads the optimizer's iteration count without ordering the read
# after the count's increment in the same step (see record_migrate_rules.py): the same
# code gives one of a few results. These cases are run this many times and every distinct
# result is recorded.
REPEAT = {"optimizer_defaults": 20, "optimizer_names": 20}


def record(snippet, folder, repeat):
    """``describe`` of each result, with the other results of repeated runs, if any."""
    described = {key: describe(value) for key, value in sorted(run(snippet, folder).items())}
    for _ in range(repeat - 1):
        for key, value in run(snippet, folder).items():
            other = describe(value)["values"]
            known = [described[key]["values"], *described[key].get("alternatives", [])]
            if not any(np.allclose(other, seen, rtol=0, atol=1e-6) for seen in known):
                described[key].setdefault("alternatives", []).append(other)
    return described


def main():
    outdir = (
        sys.argv[1]
        if len(sys.argv) > 1
        else os.path.join(os.path.dirname(__file__), "..", "goldens", "migrate_defaults")
    )
    os.makedirs(outdir, exist_ok=True)
    warnings.simplefilter("ignore")
    import keras

    assert keras.__version__ == "2.3.1", keras.__version__
    cases = {}
    for name, snippet in SNIPPETS.items():
        described = record(snippet, outdir, REPEAT.get(name, 1))
        cases[name] = {"snippet": _SETUP + snippet, "result": described}
        print(name, "recorded")
    with open(os.path.join(outdir, "cases.json"), "w") as handle:
        json.dump({"keras": keras.__version__, "cases": cases}, handle, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()

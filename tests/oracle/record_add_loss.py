"""Record what Keras 2.3.1 computes with a loss added to a model from its own tensors.

Run with the Keras 2.3.1 Python (``nox -s oracle``, or by hand)::

    python3.7 tests/oracle/record_add_loss.py [outdir]

Each snippet below is Keras 2 code that calls ``model.add_loss`` with a symbolic tensor
(or a list with a number) built from a small model with fixed weights, compiles it with
or without a loss, and leaves a dict ``result``: ``evaluate`` before training (several
batches), the loss ``train_on_batch`` returns with SGD of a fixed learning rate, the loss
``test_on_batch`` gives after that step, the kernel after it, the ``fit`` history, and
the predictions. This script runs each under Keras 2.3.1 and writes ``cases.json`` into
``tests/goldens/add_loss/`` (or ``outdir``). ``tests/test_model_losses.py`` migrates each
snippet with ``kutils migrate`` (which rewrites ``model.add_loss(t)`` into
``add_loss(model, t)``), runs it on Keras 3 and compares. No snippet samples at random.
"""

from __future__ import annotations

from _snippets import record

# The model every snippet builds: fixed weights, fixed data.
SETUP = """
import numpy as np
from keras import backend as K
from keras.layers import Dense, Input
from keras.models import Model
from keras.optimizers import SGD

rng = np.random.RandomState(5)
x = rng.normal(0, 1, (16, 4)).astype("float32")
y = rng.normal(0, 1, (16, 2)).astype("float32")
weights = [
    rng.uniform(-1, 1, (4, 3)).astype("float32"),
    rng.uniform(-0.5, 0.5, 3).astype("float32"),
    rng.uniform(-1, 1, (3, 2)).astype("float32"),
    rng.uniform(-0.5, 0.5, 2).astype("float32"),
]


def build():
    inputs = Input((4,))
    code = Dense(3, activation="tanh")(inputs)
    outputs = Dense(2)(code)
    model = Model(inputs, outputs)
    model.set_weights(weights)
    return inputs, code, outputs, model


def measure(model, targets):
    evaluated = model.evaluate(x, targets, batch_size=6, verbose=0)
    trained = model.train_on_batch(x, targets)
    return {
        "evaluate": np.float32(evaluated),
        "train_on_batch": np.float32(trained),
        "test_on_batch": np.float32(model.test_on_batch(x, targets)),
        "kernel": model.get_weights()[0],
        "history": np.array(
            model.fit(x, targets, batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"],
            "float32",
        ),
        "predict": model.predict(x),
    }
"""

SNIPPETS = {
    # The Keras 2 VAE's pattern: the only loss is added, compile has none.
    "alone": """
inputs, code, outputs, model = build()
model.add_loss(K.mean(K.square(outputs - 1.0)) + 0.1 * K.mean(K.abs(code)))
model.compile(optimizer=SGD(lr=0.1))
result = measure(model, None)
""",
    # A per-sample loss (not a scalar) next to the compiled loss: Keras 2 took the mean.
    "with_compiled_loss": """
inputs, code, outputs, model = build()
model.add_loss(0.5 * K.sum(K.square(code), axis=-1))
model.compile(optimizer=SGD(lr=0.1), loss="mse")
result = measure(model, y)
""",
    # A list holding a tensor and a number.
    "list_and_number": """
inputs, code, outputs, model = build()
model.add_loss([K.mean(K.abs(outputs)), 0.25])
model.compile(optimizer=SGD(lr=0.05))
result = measure(model, None)
""",
    # Two calls add up; adding the same tensor again counts it once.
    "twice": """
inputs, code, outputs, model = build()
penalty = K.mean(K.square(inputs[:, :2] - outputs))
model.add_loss(penalty)
model.add_loss(0.01 * K.sum(K.abs(code)))
model.add_loss(penalty)
model.compile(optimizer=SGD(lr=0.1), loss="mae")
result = measure(model, y)
""",
}


def main():
    record("add_loss", SETUP, SNIPPETS)


if __name__ == "__main__":
    main()

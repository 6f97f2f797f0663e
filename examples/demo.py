"""The main job: a training script written the Keras 2 way, run on Keras 3 through kutils.

The only edits against a Keras 2.3 script are the imports (``from keras.utils import``
became ``from kutils import``). It grows into the full legacy example as utilities land.
Run it with ``nox -s demo`` (or ``python examples/demo.py`` where kutils is installed).
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from keras.layers import Activation, Dense
from keras.models import Sequential, load_model

from kutils import CustomObjectScope, normalize, to_categorical


def swish(x):
    """A custom activation, the kind Keras 2 scripts registered by hand."""
    return x * keras.ops.sigmoid(x)


def make_data(n, num_classes, rng):
    centers = rng.normal(scale=3.0, size=(num_classes, 16))
    labels = rng.integers(0, num_classes, size=n)
    x = centers[labels] + rng.normal(size=(n, 16))
    return x.astype("float32"), labels


def main() -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()

    num_classes = 4
    rng = np.random.default_rng(0)
    x, labels = make_data(args.samples, num_classes, rng)
    x = normalize(x, axis=-1, order=2)
    y = to_categorical(labels, num_classes)

    model = Sequential()
    model.add(Dense(32, input_shape=(16,)))
    model.add(Activation(swish))
    model.add(Dense(num_classes, activation="softmax"))
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=args.epochs, validation_split=0.2, verbose=2)

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.h5")
        model.save(path)
        with CustomObjectScope({"swish": swish}):
            restored = load_model(path)
    _, accuracy = restored.evaluate(x, y, verbose=0)
    chance = 1.0 / num_classes
    print(
        f"accuracy after {args.epochs} epochs, reloaded through CustomObjectScope: "
        f"{accuracy:.3f} (chance: {chance:.3f})"
    )
    if accuracy <= chance + 0.2:
        raise SystemExit("the model did not learn: accuracy is close to chance")
    return accuracy


if __name__ == "__main__":
    main()

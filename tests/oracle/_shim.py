"""The only side-specific code of the oracle: which library the recording scripts call.

Under Keras 2.3.1 (Python 3.7) the names come from ``keras.utils`` and the legacy modules
``keras.utils.<module>``, and the generator functions are the ``Model`` methods. Under
Keras 3 they come from ``kutils``. Everything else in tests/oracle/ is the same code on
both sides.
"""

from __future__ import annotations

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras

SIDE = "keras2" if keras.__version__.startswith("2.") else "kutils"
layers = keras.layers
Sequential = keras.Sequential

if SIDE == "keras2":
    import keras.utils as utils

    def legacy(name):
        """``keras.utils.<name>`` (np_utils, generic_utils, ...)."""
        return importlib.import_module("keras.utils." + name)

    def fit_generator(model, *args, **kwargs):
        return model.fit_generator(*args, **kwargs)

    def evaluate_generator(model, *args, **kwargs):
        return model.evaluate_generator(*args, **kwargs)

    def predict_generator(model, *args, **kwargs):
        return model.predict_generator(*args, **kwargs)

    def reset_names():
        keras.backend.clear_session()

    def sgd(learning_rate):
        return keras.optimizers.SGD(lr=learning_rate)

else:
    import kutils as utils

    def legacy(name):
        """``kutils.<name>``: the legacy module path a migrated script imports."""
        return importlib.import_module("kutils." + name)

    fit_generator = utils.fit_generator
    evaluate_generator = utils.evaluate_generator
    predict_generator = utils.predict_generator

    def reset_names():
        keras.backend.clear_session()

    def sgd(learning_rate):
        return keras.optimizers.SGD(learning_rate=learning_rate)


def seed(value):
    """Seed every random source a case may use (numpy, Python, the backend)."""
    import random

    import numpy as np

    random.seed(value)
    np.random.seed(value)
    if SIDE == "keras2":
        import tensorflow as tf

        tf.random.set_seed(value)
    else:
        keras.utils.set_random_seed(value)

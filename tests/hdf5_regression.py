"""A small regression problem in an HDF5 file, shared by the HDF5Matrix and HDF5Dataset tests."""

from __future__ import annotations

import h5py
import numpy as np


def regression_file(path, rows):
    """Write x (rows x 8 float32) and y = x @ w to ``path``; return them as numpy."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1))).astype("float32")
    with h5py.File(path, "w") as file:
        file["x"], file["y"] = x, y
    return x, y


def small_model():
    """A seeded linear model compiled with plain SGD on the mean squared error."""
    import keras

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model

"""Shared test set-up: quiet TensorFlow, a private Keras home, 3 logical CPU devices, and
the fixtures several test files use."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import tempfile
from types import ModuleType
from typing import Any

import pytest

# Keras reads KERAS_HOME once, when it is first imported, and writes keras.json there:
# point it at a throw-away folder before any test imports Keras.
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="kutils-keras-home-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# The data-parallel tests run on logical CPU devices (/cpu:0, /cpu:1, /cpu:2) carved out of
# the host CPU. TensorFlow accepts that split only before its runtime starts (the first
# op, tensor or layer), so it is made the moment `tensorflow` finishes importing, by
# whichever test imports it first. A run that never imports TensorFlow never pays for it.
LOGICAL_CPUS = 3


def _split_host_cpu(tf: ModuleType) -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    if tf.config.get_logical_device_configuration(cpu) is None:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * LOGICAL_CPUS
        )


class _AfterTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loader of `tensorflow` to run a hook after it."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one shot; also keeps the look-up below from recursing
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original_exec = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original_exec(module)
            _split_host_cpu(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if "tensorflow" in sys.modules:  # imported by a plugin before us: still before any op
    _split_host_cpu(sys.modules["tensorflow"])
else:
    sys.meta_path.insert(0, _AfterTensorFlowImport())


# ---------------------------------------------------------------------------------------
# Fixtures shared by several test files
# ---------------------------------------------------------------------------------------


@pytest.fixture
def server() -> Any:
    """A loopback HTTP server (tests/loopback_http.py), scripted per path by the test."""
    import threading

    from loopback_http import LoopbackServer

    srv = LoopbackServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


# ---------------------------------------------------------------------------------------
# Models and data shared by several test files (imported: ``from conftest import mlp``)
# ---------------------------------------------------------------------------------------


def mlp(seed: int = 0, features: int = 6, classes: int = 3, activation: str = "tanh") -> Any:
    """A small seeded Sequential classifier: ``features`` -> Dense(8) -> ``classes`` softmax."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(8, activation=activation),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )


def class_data(rows: int = 65, features: int = 6, classes: int = 3, seed: int = 1) -> Any:
    """``(x, y)``: standard-normal float32 features and random integer labels."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features)).astype("float32")
    y = rng.integers(0, classes, rows)
    return x, y


def nested_model() -> Any:
    """A Sequential and a functional model used as layers of a functional chain."""
    import keras
    from keras import Input, layers

    encoder = keras.Sequential(
        [Input((6,), name="enc_input"), layers.Dense(4, name="enc_dense")], name="encoder"
    )
    head_input = Input((4,), name="head_input")
    head = keras.Model(head_input, layers.Dense(1, name="head_dense")(head_input), name="head")
    features = Input((6,), name="features")
    return keras.Model(features, head(encoder(features)), name="nested")


@pytest.fixture(scope="session")
def mirrored() -> Any:
    """One ``MirroredStrategy`` on /cpu:1 and /cpu:2, shared by every test of the run.

    Two strategy objects in one process number their collective all-reduces alike and
    collide when model sizes differ, so no test file makes its own.
    """
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(["/cpu:1", "/cpu:2"])

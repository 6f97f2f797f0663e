"""Shared test set-up: quiet TensorFlow and a private Keras home for the whole run."""

from __future__ import annotations

import os
import tempfile

# Keras reads KERAS_HOME once, when it is first imported, and writes keras.json there:
# point it at a throw-away folder before any test imports Keras.
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="kutils-keras-home-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

"""print_summary and model_to_dot against Keras 3's own, measured side by side in one run.

Model: a functional network of 300 Dense layers in 100 residual blocks (branches and
merges, so print_summary takes its 98-column "Connected to" layout). kutils prints the
Keras 2.3.1 table with print_fn called per line; Keras 3's Model.summary renders a rich
table and calls print_fn once. model_to_dot builds the pydot graph in both libraries
(no graphviz involved). No target: the figures show the cost of the Keras 2 layout.
Each figure is the best of several alternating runs, so both sides see the same load.
"""

from __future__ import annotations

import gc
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("COLUMNS", "120")  # Keras 3 sizes its table to the terminal

import keras
from keras import layers

import kutils

REPEATS = 3
BLOCKS = 100


def residual_model() -> keras.Model:
    inputs = keras.Input((16,), name="inputs")
    x = inputs
    for block in range(BLOCKS):
        branch = layers.Dense(16, name=f"block{block}_a")(x)
        branch = layers.Dense(16, name=f"block{block}_b")(branch)
        x = layers.Add(name=f"block{block}_add")([x, branch])
    outputs = layers.Dense(1, name="output")(x)
    return keras.Model(inputs, outputs, name="residual")


def best_time(function) -> float:
    times = []
    for _ in range(REPEATS):
        gc.collect()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def compare(label: str, ours, theirs) -> None:
    best_ours, best_theirs = [], []
    for _ in range(REPEATS):  # alternate, so load on the machine hits both alike
        best_theirs.append(best_time(theirs))
        best_ours.append(best_time(ours))
    t_ours, t_theirs = min(best_ours), min(best_theirs)
    print(
        f"{label}: kutils {t_ours:.3f} s, keras 3 {t_theirs:.3f} s, ratio {t_ours / t_theirs:.2f}"
    )


def main() -> None:
    print(
        f"load average (1, 5, 15 min) at start: {' '.join(f'{load:.2f}' for load in os.getloadavg())}"
    )
    model = residual_model()
    print(f"{len(model.layers)} layers, {model.count_params():,} parameters")

    def discard(_text: str) -> None:
        return None

    compare(
        "summary",
        lambda: kutils.print_summary(model, print_fn=discard),
        lambda: model.summary(print_fn=discard),
    )
    compare(
        "model_to_dot",
        lambda: kutils.model_to_dot(model, show_shapes=True).to_string(),
        lambda: keras.utils.model_to_dot(model, show_shapes=True).to_string(),
    )
    print(
        f"load average (1, 5, 15 min) at end: {' '.join(f'{load:.2f}' for load in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()

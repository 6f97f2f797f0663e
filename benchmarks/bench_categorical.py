"""to_categorical and normalize against keras.utils, measured side by side in one run.

Targets: to_categorical of 1,000,000 labels into 1,000 classes in at most 0.6x the time of
keras.utils.to_categorical; normalize of a 200,000 x 512 float32 array in at most 0.75x
the time of keras.utils.normalize. Each figure is the best of several alternating runs,
so both sides see the same machine load.
"""

from __future__ import annotations

import gc
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import kutils

REPEATS = 3


def best_time(function, *args):
    """The best wall time and the best CPU time (``time.process_time``) of REPEATS calls."""
    walls, cpus = [], []
    for _ in range(REPEATS):
        gc.collect()
        start, cpu = time.perf_counter(), time.process_time()
        result = function(*args)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
        del result
    return min(walls), min(cpus)


def compare(label, ours, theirs, args, target):
    best_ours, best_theirs = [], []
    for _ in range(REPEATS):  # alternate, so load on the machine hits both alike
        best_theirs.append(best_time(theirs, *args))
        best_ours.append(best_time(ours, *args))
    t_ours, t_theirs = min(w for w, _ in best_ours), min(w for w, _ in best_theirs)
    c_ours, c_theirs = min(c for _, c in best_ours), min(c for _, c in best_theirs)
    ratio = t_ours / t_theirs
    verdict = "ok" if ratio <= target else "MISSED"
    print(
        f"{label}: kutils {t_ours:.3f} s (cpu {c_ours:.3f} s), keras.utils {t_theirs:.3f} s "
        f"(cpu {c_theirs:.3f} s), ratio {ratio:.2f} (target <= {target}) {verdict}, cpu "
        f"ratio {c_ours / c_theirs:.2f}; load average "
        f"{' '.join(f'{load:.2f}' for load in os.getloadavg())}"
    )
    return ratio


def main() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 1000, size=1_000_000)
    compare(
        "to_categorical 1,000,000 labels x 1,000 classes",
        lambda y: kutils.to_categorical(y, 1000),
        lambda y: keras.utils.to_categorical(y, 1000),
        (labels,),
        0.6,
    )
    x = rng.random((200_000, 512), dtype=np.float32)
    compare("normalize 200,000 x 512 float32", kutils.normalize, keras.utils.normalize, (x,), 0.75)


if __name__ == "__main__":
    main()

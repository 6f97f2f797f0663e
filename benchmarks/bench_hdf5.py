"""HDF5Matrix and HDF5Dataset on a float32 file of at least 2 GiB, made by this script.

Targets, each printed as a ratio from this one run:

- contiguous batch reads through HDF5Matrix: at least 0.9x the throughput of slicing the
  h5py dataset directly;
- a shuffled epoch (HDF5Dataset, shuffle=True): at least 0.7x the throughput of a
  contiguous epoch (shuffle=False);
- one fit epoch streamed from the file (model.fit(x_h5, y_h5, shuffle='batch')): at most
  1.3x the time of the same fit on the same data already in memory, with peak RSS growth
  below 25% of the data size.

The two sides of each comparison run alternately, best of REPEATS. The file is written
first, so it is in the page cache for both sides (the machine has far more memory than
2 GiB); this measures kutils's overhead, not the disk. Each fit runs in a fresh process
so its peak RSS is its own. The data folder is deleted at the end; set
KUTILS_BENCH_DIR to put it somewhere other than the system temporary folder, and
KUTILS_BENCH_ROWS to try a smaller file (rows of 1024 float32, 4 KiB each).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import h5py
import numpy as np

FEATURES = 1024
ROWS = int(os.environ.get("KUTILS_BENCH_ROWS", 524_288))  # 524,288 x 4 KiB = 2 GiB
BATCH = 1024
REPEATS = 3
FIT_REPEATS = 2


def make_file(path: Path) -> None:
    rng = np.random.default_rng(0)
    block = 16_384
    with h5py.File(path, "w") as file:
        x = file.create_dataset("x", shape=(ROWS, FEATURES), dtype="float32")
        y = file.create_dataset("y", shape=(ROWS, 1), dtype="float32")
        weights = rng.standard_normal((FEATURES, 1), dtype=np.float32) / 32
        for first in range(0, ROWS, block):
            stop = min(first + block, ROWS)
            rows = rng.standard_normal((stop - first, FEATURES), dtype=np.float32)
            x[first:stop] = rows
            y[first:stop] = rows @ weights


def timed(function) -> tuple[float, float]:
    """Wall seconds and CPU seconds (``time.process_time``: this process, all threads)."""
    start, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - start, time.process_time() - cpu


def best(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """The best wall time and the best CPU time of several runs."""
    return min(wall for wall, _ in runs), min(cpu for _, cpu in runs)


def best_alternating(first, second, repeats=REPEATS):
    a, b = [], []
    for _ in range(repeats):
        a.append(timed(first))
        b.append(timed(second))
    return best(a), best(b)


def contiguous_reads(path: Path):
    from kutils import HDF5Matrix

    matrix = HDF5Matrix(path, "x", stream=False)
    with h5py.File(path, "r") as file:
        dataset = file["x"]

        def raw() -> None:
            for first in range(0, ROWS, BATCH):
                dataset[first : first + BATCH]

        def ours() -> None:
            for first in range(0, ROWS, BATCH):
                matrix[first : first + BATCH]

        raw()  # warm the page cache
        t_raw, t_ours = best_alternating(raw, ours)
    matrix.close()
    return t_raw, t_ours


def epochs(path: Path) -> dict[str, tuple[float, float]]:
    from kutils import HDF5Dataset, HDF5Matrix

    x, y = HDF5Matrix(path, "x"), HDF5Matrix(path, "y")
    datasets = {
        mode: HDF5Dataset(x, y, batch_size=BATCH, shuffle=mode, seed=0)
        for mode in (False, True, "batch")
    }

    def run(mode):
        def epoch() -> None:
            dataset = datasets[mode]
            for i in range(len(dataset)):
                dataset[i]
            dataset.on_epoch_end()

        return epoch

    times: dict[str, list[tuple[float, float]]] = {str(mode): [] for mode in datasets}
    for _ in range(REPEATS):
        for mode in datasets:
            times[str(mode)].append(timed(run(mode)))
    return {mode: best(values) for mode, values in times.items()}


# -- fit, one process per run --------------------------------------------------------------


def rss() -> int:
    """This process's resident set size in bytes (Linux /proc; psutil elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil

        return int(psutil.Process().memory_info().rss)


def fit_child(path: str, mode: str) -> None:
    """Run in a fresh process: one timed fit epoch; prints JSON on its last line."""
    import keras

    from kutils import HDF5Matrix

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    x_h5, y_h5 = HDF5Matrix(path, "x"), HDF5Matrix(path, "y")
    # Trace the train function on a few batches first, so the timed epoch is steady state.
    warm = slice(0, 8 * BATCH)
    model.fit(x_h5[warm], y_h5[warm], batch_size=BATCH, epochs=1, verbose=0)

    baseline = rss()
    load_seconds = 0.0
    if mode == "memory":
        start = time.perf_counter()
        x, y = np.asarray(x_h5), np.asarray(y_h5)
        load_seconds = time.perf_counter() - start
    else:
        x, y = x_h5, y_h5

    peak = [rss()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            peak[0] = max(peak[0], rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle="batch", verbose=0)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    peak[0] = max(peak[0], rss())
    print(json.dumps({"seconds": seconds, "load": load_seconds, "growth": peak[0] - baseline}))


def fit_runs(path: Path) -> dict[str, dict[str, float]]:
    results: dict[str, list[dict[str, float]]] = {"memory": [], "stream": []}
    for _ in range(FIT_REPEATS):
        for mode in ("memory", "stream"):
            done = subprocess.run(
                [sys.executable, __file__, "--fit-child", str(path), mode],
                capture_output=True,
                text=True,
                check=True,
                timeout=1800,
            )
            results[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        mode: {
            "seconds": min(r["seconds"] for r in runs),
            "load": min(r["load"] for r in runs),
            "growth": max(r["growth"] for r in runs),
        }
        for mode, runs in results.items()
    }


def main() -> None:
    folder = Path(
        tempfile.mkdtemp(prefix="kutils-bench-hdf5-", dir=os.environ.get("KUTILS_BENCH_DIR"))
    )
    path = folder / "data.h5"
    try:
        start = time.perf_counter()
        make_file(path)
        size = os.path.getsize(path)
        data_bytes = ROWS * FEATURES * 4
        print(
            f"file: {ROWS:,} x {FEATURES} float32 ({data_bytes / 2**30:.2f} GiB of x, "
            f"{size / 2**30:.2f} GiB on disk), written in {time.perf_counter() - start:.1f} s"
        )

        print(f"load average: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
        (t_raw, c_raw), (t_ours, c_ours) = contiguous_reads(path)
        gib = data_bytes / 2**30
        print(
            f"contiguous reads, batch {BATCH}: h5py {gib / t_raw:.2f} GiB/s ({t_raw:.2f} s, "
            f"cpu {c_raw:.3f} s), HDF5Matrix {gib / t_ours:.2f} GiB/s ({t_ours:.2f} s, cpu "
            f"{c_ours:.3f} s); throughput ratio {t_raw / t_ours:.2f} (target >= 0.9), cpu "
            f"ratio {c_raw / c_ours:.2f}"
        )

        times = epochs(path)
        (t_plain, c_plain), (t_shuffled, c_shuffled) = times["False"], times["True"]
        print(
            f"HDF5Dataset epoch (x and y), batch {BATCH}: shuffle=False {t_plain:.2f} s (cpu "
            f"{c_plain:.3f} s), shuffle=True {t_shuffled:.2f} s (cpu {c_shuffled:.3f} s), "
            f"shuffle='batch' {times['batch'][0]:.2f} s (cpu {times['batch'][1]:.3f} s); "
            f"shuffled/contiguous throughput ratio {t_plain / t_shuffled:.2f} (target >= 0.7), "
            f"cpu ratio {c_plain / c_shuffled:.2f}"
        )
        print(f"load average: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")

        fits = fit_runs(path)
        memory, stream = fits["memory"], fits["stream"]
        print(
            f"fit, 1 epoch, batch {BATCH}: in memory {memory['seconds']:.2f} s (plus "
            f"{memory['load']:.2f} s to load the arrays), streamed {stream['seconds']:.2f} s; "
            f"time ratio {stream['seconds'] / memory['seconds']:.2f} (target <= 1.3)"
        )
        print(
            f"peak RSS growth during fit: in memory {memory['growth'] / 2**20:,.0f} MiB "
            f"({memory['growth'] / data_bytes:.0%} of the data, arrays included), streamed "
            f"{stream['growth'] / 2**20:,.0f} MiB ({stream['growth'] / data_bytes:.1%} of the "
            "data; target < 25%)"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--fit-child":
        fit_child(sys.argv[2], sys.argv[3])
    else:
        main()

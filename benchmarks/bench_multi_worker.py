"""data_parallel on MultiWorkerMirroredStrategy: two local workers against one process.

Prints the time per training step (same model, same global batches) of:

* one process, the plain Keras model, no strategy;
* two worker processes on 127.0.0.1 through ``kutils.data_parallel`` with
  ``multi_worker_strategy()`` (Keras ``fit``);
* the same two workers running hand-written MultiWorkerMirroredStrategy code (a
  ``tf.function`` that takes the next batch of a distributed dataset's iterator and runs
  ``strategy.run`` on it, as TensorFlow's guide recommends), since Keras 3.15's own
  ``fit`` fails under that strategy.

Target: kutils at most 1.05x the hand-written code. Each worker alternates the kutils and
hand-written sides on the same strategy, after one untimed run of each. Before every timed
call the workers meet at an untimed all-reduce; a call's time is the cluster's, from the
later of the two starts to the later of the two ends, and the median of REPEATS calls is
printed with the spread. (Timed by each worker alone, back to back, a call's work that
follows its last all-reduce on one worker, such as freeing the hand-written side's
iterator, was counted in the other worker's next call, which waited for it at its first
all-reduce.) Both are timed with long fit calls
(256 steps) and short ones (16 steps), where a per-call cost would weigh more (kutils
copies the weights to and from the template; the hand-written side makes a new
iterator per call, as a loop of one ``fit`` per epoch would). Two processes on the 2-core test machine
share its CPUs, so the two-worker figures measure overhead, not speed-up.

Scaling section: with GPUs present, the script then runs the two workers again with
1 to N GPUs each, N being half the machine's GPUs (every worker uses GPUs of its own,
one replica per GPU) and
prints, per device count, each worker's devices, how the global batch is split into
per-replica sub-batches (read from the distributed dataset), the time per step of the
kutils and hand-written sides, their ratio, and the speed-up in samples per second over
one device per worker with its efficiency (speed-up / devices). ``--scaling-devices
cpu:N`` runs the same section on N logical CPU devices per worker, so the code a GPU
cluster runs is exercised here; those figures are overhead, not speed-up.
``--scaling-devices gpu:N`` limits it to N GPUs per worker.

Run: python benchmarks/bench_multi_worker.py [--scaling-devices cpu:N|gpu|gpu:N]
[--scaling-only] [--quick] (from the repository root). ``--quick`` uses few samples and
one timed run: a check that the script works, not a measurement.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEATS = 5
SHORT_STEPS = 16  # a short fit call, where the per-call cost shows
SAMPLES, FEATURES, CLASSES, BATCH = 65536, 64, 10, 256
TARGET = 1.05
QUICK_SUB_BATCH = 16  # --quick: the scaling section's rows per replica
ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in ROLES:
        return _role(sys.argv[1], Path(sys.argv[2]), sys.argv[3:])
    args = _parse_args()
    if not args.scaling_only:
        _compare(args.quick)
    _scaling(args.scaling, args.quick)
    return 0


ROLES = ("single", "worker", "scale")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scaling-devices",
        metavar="KIND[:N]",
        help="run the scaling section on 'cpu:N' logical CPU devices per worker, 'gpu' or "
        "'gpu:N' (default: every GPU, skipped when there is none)",
    )
    parser.add_argument("--scaling-only", action="store_true", help="skip the comparison")
    parser.add_argument("--quick", action="store_true", help="few samples, one timed run")
    args = parser.parse_args()
    args.scaling = None
    if args.scaling_devices is not None:
        kind, _, count = args.scaling_devices.lower().partition(":")
        if kind not in ("cpu", "gpu") or not (count.isdigit() or (kind == "gpu" and not count)):
            parser.error(
                f"--scaling-devices takes cpu:N, gpu or gpu:N. Received: {args.scaling_devices!r}"
            )
        if count and int(count) < 1:
            parser.error(f"--scaling-devices needs at least 1 device. Received: {count!r}")
        args.scaling = (kind, int(count or 0))
    return args


def _compare(quick: bool) -> None:
    """The kutils and hand-written sides on two workers, and one process, as in the docs."""
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        flag = str(int(quick))
        _run([[sys.executable, __file__, "single", str(out / "single.json"), flag]], [None])
        one = json.loads((out / "single.json").read_text())["plain"]
        calls = _cluster_calls(_run_cluster("worker", out, [flag]))
    steps = _samples("worker", quick) // BATCH
    repeats = 1 if quick else REPEATS
    load_after = os.getloadavg()
    print(
        f"load average (1, 5, 15 min) at start: {_load(load_before)}, at end: {_load(load_after)}"
    )
    print(f"MLP {FEATURES}-256-256-{CLASSES}, global batch {BATCH}; median of {repeats} runs")
    print(f"one process, plain Keras fit:       {one * 1e3:8.2f} ms/step")
    for label, key in ((f"{steps} steps per fit", ""), (f"{SHORT_STEPS} steps per fit", "short_")):
        kutils = statistics.median(calls[key + "kutils"])
        hand = statistics.median(calls[key + "hand"])
        print(f"{label}:")
        print(f"  two workers, kutils data_parallel: {kutils * 1e3:8.2f} ms/step", end="")
        print(f"  (calls: {_spread(calls[key + 'kutils'])})")
        print(f"  two workers, hand-written MWMS:    {hand * 1e3:8.2f} ms/step", end="")
        print(f"  (calls: {_spread(calls[key + 'hand'])})")
        print(f"  kutils / hand-written:       {kutils / hand:.3f}x (target <= {TARGET}x)")
        print(f"  kutils / one process:        {kutils / one:.3f}x")
        print(f"  hand-written / one process:  {hand / one:.3f}x")


def _cluster_calls(results: list[dict]) -> dict[str, list[float]]:
    """Each timed call's seconds per step for the cluster, from the later start to the later end.

    ``results`` holds each worker's ``calls``: per side, its steps per call and the
    ``[start, end]`` wall-clock times of every call. The workers run on one machine, so
    their clocks agree.
    """
    calls: dict[str, list[float]] = {}
    for name, side in results[0]["calls"].items():
        spans = zip(*(result["calls"][name]["spans"] for result in results), strict=True)
        calls[name] = [
            (max(end for _, end in call) - max(start for start, _ in call)) / side["steps"]
            for call in spans
        ]
    return calls


def _spread(per_step: list[float]) -> str:
    low, mid, high = (
        value * 1e3 for value in (min(per_step), statistics.median(per_step), max(per_step))
    )
    return f"min {low:.1f} / median {mid:.1f} / max {high:.1f}"


def _load(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{value:.2f}" for value in load)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run(commands: list[list[str]], tf_configs: list[str | None]) -> None:
    procs = []
    try:
        for command, tf_config in zip(commands, tf_configs, strict=True):
            env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
            env.pop("TF_CONFIG", None)
            if tf_config:
                env["TF_CONFIG"] = tf_config
            procs.append(subprocess.Popen(command, env=env))
        for proc in procs:
            if proc.wait(timeout=900) != 0:
                raise SystemExit(f"{proc.args} failed with exit code {proc.returncode}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _run_cluster(role: str, out: Path, extra: list[str]) -> list[dict]:
    """Run ``role`` on two workers on 127.0.0.1; each worker's JSON result, in order."""
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    configs: list[str | None] = [
        json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})
        for i in range(2)
    ]
    paths = [out / f"{role}{i}.json" for i in range(2)]
    _run([[sys.executable, __file__, role, str(path), *extra] for path in paths], configs)
    return [json.loads(path.read_text()) for path in paths]


def _scaling(request: tuple[str, int] | None, quick: bool) -> None:
    """Two workers with 1 to N local devices each, the same lines on GPUs and on CPUs."""
    kind, count = request or ("gpu", 0)
    if kind == "gpu":
        import tensorflow as tf  # this process only lists them; the workers use them

        gpus = len(tf.config.list_physical_devices("GPU"))
        if request is None and not gpus:
            print(
                "GPU scaling: no GPU on this machine, skipped "
                "(--scaling-devices cpu:N runs it on N logical CPU devices per worker)"
            )
            return
        each = gpus // 2  # the two workers get GPUs of their own
        if not each or count > each:
            raise SystemExit(
                f"--scaling-devices asks for {count or 'all'} GPU(s) for each of 2 workers; "
                f"this machine has {gpus}, so at most {each} each. "
                f"Received: --scaling-devices gpu{f':{count}' if count else ''}"
            )
        count = count or each
        print(f"GPU scaling: two workers on 127.0.0.1, 1 to {count} GPU(s) of their own each")
    else:
        print(
            f"GPU scaling, run on 1 to {count} logical CPU devices per worker (two workers "
            "on 127.0.0.1 sharing the host's cores: overhead, not speed-up)"
        )
    first: dict | None = None
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(1, count + 1):
            results = _run_cluster("scale", Path(tmp), [f"{kind}:{n}", str(int(quick))])
            calls = _cluster_calls(results)
            results[0].update({side: statistics.median(calls[side]) for side in calls})
            first = first or results[0]
            _print_scaling(n, results, first)


def _print_scaling(n: int, results: list[dict], first: dict) -> None:
    mine = results[0]
    print(f"  {n} device(s) per worker, {mine['replicas']} replicas in all:")
    for index, result in enumerate(results):
        print(f"    worker {index} devices: {', '.join(result['devices'])}")
    splits = ", ".join(
        f"{' + '.join(map(str, r['sub_batches']))} rows on worker {i}"
        for i, r in enumerate(results)
    )
    print(f"    global batch {mine['global_batch']}, per-replica sub-batches: {splits}")
    kutils, hand = mine["kutils"], mine["hand"]
    print(
        f"    kutils {kutils * 1e3:.2f} ms/step, hand-written {hand * 1e3:.2f} ms/step, "
        f"kutils / hand-written {kutils / hand:.3f}x"
    )
    for side in ("kutils", "hand"):
        rate = mine["global_batch"] / mine[side]
        speed_up = rate / (first["global_batch"] / first[side])
        label = "kutils" if side == "kutils" else "hand-written"
        print(
            f"    {label}: speed-up {speed_up:.2f}x over 1 device per worker "
            f"(samples/s), efficiency {speed_up / n:.2f}"
        )


def _role(role: str, out: Path, extra: list[str]) -> int:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import numpy as np

    quick = extra[-1] == "1"
    if role != "scale":  # the comparison runs on the CPU, as in docs/performance.md
        import tensorflow as tf

        tf.config.set_visible_devices([], "GPU")
    samples = _samples(role, quick)
    repeats = 1 if quick else REPEATS
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, FEATURES)).astype("float32")
    y = rng.integers(0, CLASSES, size=samples)
    if role == "single":
        result: dict = {"plain": _single(x, y, repeats)}
    elif role == "worker":
        result = _worker(x, y, repeats)
    else:
        kind, _, count = extra[0].partition(":")
        result = _scale(x, y, kind, int(count), QUICK_SUB_BATCH if quick else BATCH, repeats)
    out.write_text(json.dumps(result))
    return 0


def _samples(role: str, quick: bool) -> int:
    """Rows of the data: ``--quick`` keeps 32 long and 16 short steps, or 512 rows to scale."""
    if not quick:
        return SAMPLES
    return 512 if role == "scale" else 2 * SHORT_STEPS * BATCH


def _mlp():  # type: ignore[no-untyped-def]
    import keras

    return keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(CLASSES),
        ]
    )


def _loss():  # type: ignore[no-untyped-def]
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _single(x, y, repeats: int) -> float:  # type: ignore[no-untyped-def]
    import keras

    model = _mlp()
    model.compile(keras.optimizers.SGD(0.01), _loss())
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    times = [
        _timed(lambda: model.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0))
        for _ in range(repeats)
    ]
    return statistics.median(times) / (len(x) // BATCH)


def _worker(x, y, repeats: int) -> dict:  # type: ignore[no-untyped-def]
    import keras

    from kutils.parallel import data_parallel, multi_worker_strategy

    strategy = multi_worker_strategy()
    parallel = data_parallel(_mlp(), strategy)
    parallel.compile(keras.optimizers.SGD(0.01), _loss())

    def kutils_epoch() -> None:
        parallel.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)

    distribute, hand_epoch = _hand_written(strategy, BATCH)
    dataset = distribute(x, y)
    short = SHORT_STEPS * BATCH
    short_dataset = distribute(x[:short], y[:short])
    sides = {
        "kutils": (kutils_epoch, len(x) // BATCH),
        "hand": (lambda: hand_epoch(dataset, len(x) // BATCH), len(x) // BATCH),
        "short_kutils": (
            lambda: parallel.fit(x[:short], y[:short], batch_size=BATCH, shuffle=False, verbose=0),
            SHORT_STEPS,
        ),
        "short_hand": (lambda: hand_epoch(short_dataset, SHORT_STEPS), SHORT_STEPS),
    }
    return {"calls": _timed_calls(strategy, sides, repeats)}


def _hand_written(strategy, batch: int):  # type: ignore[no-untyped-def]
    """The hand-written side on ``strategy``: a dataset distributor and an epoch runner."""
    import keras
    import tensorflow as tf

    with strategy.scope():
        model = _mlp()
        optimizer = keras.optimizers.SGD(0.01)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

    def distribute(x, y):  # type: ignore[no-untyped-def]
        return strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
        )

    def replica_step(xb, yb):  # type: ignore[no-untyped-def]
        with tf.GradientTape() as tape:
            per_example = loss_fn(yb, model(xb, training=True))
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=batch)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    @tf.function
    def step(iterator):  # type: ignore[no-untyped-def]
        # TensorFlow's recommended form: the batch is taken inside the function.
        xb, yb = next(iterator)
        losses = strategy.run(replica_step, args=(xb, yb))
        return strategy.reduce("SUM", losses, axis=None)

    def epoch(batches, steps: int) -> None:  # type: ignore[no-untyped-def]
        iterator = iter(batches)
        for _ in range(steps):
            step(iterator)

    return distribute, epoch


def _timed_calls(strategy, sides: dict, repeats: int) -> dict:  # type: ignore[no-untyped-def]
    """Each side's steps per call and the wall-clock spans of ``repeats`` alternating calls.

    The workers meet before every call, so that a call starts when every worker has
    finished the previous one (its work after its last all-reduce included).
    """
    import tensorflow as tf

    @tf.function(autograph=False)
    def meet():  # type: ignore[no-untyped-def]
        # An all-reduce returns on each worker once every worker has reached it.
        one = strategy.run(lambda: tf.distribute.get_replica_context().all_reduce("SUM", 1.0))
        return strategy.reduce("SUM", one, axis=None)

    calls = {name: {"steps": steps, "spans": []} for name, (_, steps) in sides.items()}
    for run, _ in sides.values():
        run()  # untimed: traces the functions
    for _ in range(repeats):
        for name, (run, _) in sides.items():
            meet().numpy()
            start = time.time()  # wall clock: compared across the worker processes
            run()
            calls[name]["spans"].append([start, time.time()])
    return calls


def _scale(x, y, kind: str, count: int, sub_batch: int, repeats: int) -> dict:  # type: ignore[no-untyped-def]
    """One worker of the scaling section, on ``count`` local GPUs or logical CPUs."""
    import keras
    import tensorflow as tf

    if kind == "cpu":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count
        )
        _replicas_on_logical_cpus(count)
    else:  # the two workers share the machine: worker i takes GPUs i*count to i*count+count-1
        first = json.loads(os.environ["TF_CONFIG"])["task"]["index"] * count
        gpus = tf.config.list_physical_devices("GPU")[first : first + count]
        tf.config.set_visible_devices(gpus, "GPU")
    from kutils.parallel import data_parallel, multi_worker_strategy

    strategy = multi_worker_strategy()
    batch = sub_batch * strategy.num_replicas_in_sync  # the same rows per replica for every count
    steps = len(x) // batch
    x, y = x[: steps * batch], y[: steps * batch]
    parallel = data_parallel(_mlp(), strategy)
    parallel.compile(keras.optimizers.SGD(0.01), _loss())
    distribute, hand_epoch = _hand_written(strategy, batch)
    dataset = distribute(x, y)
    sides = {
        "kutils": (lambda: parallel.fit(x, y, batch_size=batch, shuffle=False, verbose=0), steps),
        "hand": (lambda: hand_epoch(dataset, steps), steps),
    }
    calls = _timed_calls(strategy, sides, repeats)

    @tf.function
    def rows(iterator):  # type: ignore[no-untyped-def]
        xb, _ = next(iterator)
        return strategy.run(lambda part: tf.shape(part)[0], args=(xb,))

    sub_batches = strategy.experimental_local_results(rows(iter(dataset)))
    return {
        "devices": list(strategy.extended.worker_devices),
        "replicas": strategy.num_replicas_in_sync,
        "global_batch": batch,
        "sub_batches": [int(rows_) for rows_ in sub_batches],
        "calls": calls,
    }


def _replicas_on_logical_cpus(count: int) -> None:
    """Make MultiWorkerMirroredStrategy put ``count`` replicas on this worker's logical CPUs.

    Without GPUs, the strategy makes one replica per worker on CPU:0, whatever the
    logical devices; this replaces its choice of local devices (a TensorFlow internal,
    checked first) with CPU:0 to CPU:count-1, so that the scaling section runs here the
    code it runs on GPUs. With GPUs it is not used.
    """
    from tensorflow.python.distribute import collective_all_reduce_strategy as mwms

    extended = mwms.CollectiveAllReduceExtended
    original = getattr(extended, "_initialize_local_devices", None)
    expected = ["self", "cluster_resolver", "worker_device"]
    if original is None or list(inspect.signature(original).parameters) != expected:
        raise SystemExit(
            "--scaling-devices cpu:N needs MultiWorkerMirroredStrategy's "
            f"_initialize_local_devices{tuple(expected)}, which this TensorFlow does not "
            "have; run the scaling section on GPUs instead. Received: "
            f"{original and inspect.signature(original)}"
        )

    def local_devices(self, cluster_resolver, worker_device):  # type: ignore[no-untyped-def]
        return tuple(f"{worker_device}/device:CPU:{i}" for i in range(count)), "CPU"

    extended._initialize_local_devices = local_devices


def _timed(run) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())

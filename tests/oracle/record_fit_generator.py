"""Oracle cases for ``fit_generator``, ``evaluate_generator`` and ``predict_generator``.

Each scenario trains a deterministic model (one Dense unit, zero initial weights, SGD
with learning rate 0.1, mean squared error) on a Sequence or generator whose batches
are fixed numbers, and records, as separate cases: the order in which batches and
``on_epoch_end`` were read, the callback events with their log keys, the ``params``
each ``set_params`` call received, the batch and epoch logs' values, the history, the
stdout (under a frozen clock) and the trained weights. Floats are rounded to 5 decimals
(TensorFlow 2.1 and 2.21 may differ in the last bits of a float32 step).
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np

import _oracle
import _shim

AREA = "fit_generator"
N_BATCHES = 5


def _batch(i):
    x = np.array([[i + 1.0, 1.0], [0.5 * i, -1.0]], dtype="float32")
    y = np.array([[0.2 * i], [1.0 - 0.1 * i]], dtype="float32")
    return x, y


class Recorder:
    """Everything a scenario observed."""

    def __init__(self):
        self.reads = []
        self.events = []
        self.params = []
        self.batch_logs = []
        self.epoch_logs = []


class Batches(_shim.utils.Sequence):
    def __init__(self, recorder, n=N_BATCHES, tag="train"):
        self.recorder = recorder
        self.n = n
        self.tag = tag

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        self.recorder.reads.append(f"{self.tag}[{int(index)}]")
        return _batch(int(index))

    def on_epoch_end(self):
        self.recorder.reads.append(f"{self.tag}.on_epoch_end")


def generator(recorder, tag="gen"):
    i = 0
    while True:
        recorder.reads.append(f"{tag}[{i % N_BATCHES}]")
        yield _batch(i % N_BATCHES)
        i += 1


def _round(value):
    if isinstance(value, (float, np.floating)):
        return round(float(value), 5)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (list, tuple)):
        return [_round(v) for v in value]
    if isinstance(value, np.ndarray):
        return _round(value.tolist())
    return value


def make_callback(recorder):
    class Record(keras.callbacks.Callback):
        def set_params(self, params):
            super().set_params(params)
            shown = {k: _round(v) for k, v in params.items() if k != "metrics"}
            if "metrics" in params:
                shown["metrics"] = sorted(params["metrics"])
            recorder.params.append(shown)

        def on_train_begin(self, logs=None):
            recorder.events.append(["train_begin", sorted(logs or {})])

        def on_train_end(self, logs=None):
            recorder.events.append(["train_end", sorted(logs or {})])

        def on_epoch_begin(self, epoch, logs=None):
            recorder.events.append(["epoch_begin", epoch, sorted(logs or {})])

        def on_epoch_end(self, epoch, logs=None):
            recorder.events.append(["epoch_end", epoch, sorted(logs or {})])
            recorder.epoch_logs.append({k: _round(v) for k, v in (logs or {}).items()})

        def on_batch_begin(self, batch, logs=None):
            recorder.events.append(["batch_begin", batch, sorted(logs or {})])

        def on_batch_end(self, batch, logs=None):
            recorder.events.append(["batch_end", batch, sorted(logs or {})])
            recorder.batch_logs.append({k: _round(v) for k, v in (logs or {}).items()})

    return Record()


class StopAt(keras.callbacks.Callback):
    def __init__(self, batch):
        super().__init__()
        self.stop_batch = batch

    def on_batch_end(self, batch, logs=None):
        if batch == self.stop_batch:
            self.model.stop_training = True


def make_model(metrics=()):
    _shim.reset_names()
    model = keras.Sequential(
        [
            keras.layers.Dense(
                1,
                kernel_initializer="zeros",
                bias_initializer="zeros",
                input_shape=(2,),
                name="unit",
            )
        ],
        name="linear",
    )
    model.compile(optimizer=_shim.sgd(0.1), loss="mse", metrics=list(metrics))
    return model


SCENARIOS = {
    "seq-1-epoch": {},
    "seq-3-epochs": {"epochs": 3},
    "seq-steps-2": {"epochs": 3, "steps_per_epoch": 2},
    "seq-steps-7": {"epochs": 2, "steps_per_epoch": 7},
    "seq-steps-5": {"epochs": 2, "steps_per_epoch": 5},
    "seq-initial-epoch": {"epochs": 3, "initial_epoch": 1},
    "seq-val-seq": {"epochs": 2, "validation": "seq"},
    "seq-val-seq-steps-2": {"epochs": 2, "validation": "seq", "validation_steps": 2},
    "seq-val-tuple": {"epochs": 2, "validation": "tuple"},
    "seq-val-freq-2": {"epochs": 3, "validation": "seq", "validation_freq": 2},
    "seq-val-freq-list": {"epochs": 3, "validation": "seq", "validation_freq": [1, 3]},
    "seq-metric-mae": {"epochs": 2, "metrics": ["mae"]},
    "seq-stop-training": {"epochs": 3, "stop_at": 1},
    "seq-workers-1": {"epochs": 2, "workers": 1, "reads": False},
    "gen-steps-3": {"epochs": 2, "source": "gen", "steps_per_epoch": 3},
    "gen-steps-3-val-gen": {
        "epochs": 2, "source": "gen", "steps_per_epoch": 3, "validation": "gen", "validation_steps": 2,
    },
    "gen-val-tuple": {"epochs": 2, "source": "gen", "steps_per_epoch": 4, "validation": "tuple"},
    "seq-verbose-1": {"epochs": 2, "verbose": 1},
    "seq-verbose-2": {"epochs": 2, "verbose": 2},
    "seq-verbose-1-val": {"epochs": 2, "verbose": 1, "validation": "seq"},
    "seq-verbose-2-val": {"epochs": 2, "verbose": 2, "validation": "seq"},
    "gen-verbose-1": {"epochs": 1, "verbose": 1, "source": "gen", "steps_per_epoch": 3},
    "seq-verbose-1-mae": {"epochs": 1, "verbose": 1, "metrics": ["mae"]},
}  # fmt: skip

ASPECTS = ["reads", "events", "params", "batch_logs", "epoch_logs", "history", "stdout", "weights"]

_RESULTS = {}


def run_scenario(name):
    """Run one scenario once per process; every aspect's case reads its result."""
    if name in _RESULTS:
        return _RESULTS[name]
    spec = dict(SCENARIOS[name])
    recorder = Recorder()
    model = make_model(spec.pop("metrics", ()))
    source = spec.pop("source", "seq")
    data = Batches(recorder) if source == "seq" else generator(recorder)
    validation = spec.pop("validation", None)
    val_data = None
    if validation == "seq":
        val_data = Batches(recorder, n=3, tag="val")
    elif validation == "gen":
        val_data = generator(recorder, tag="valgen")
    elif validation == "tuple":
        val_data = _batch(1)
    callbacks = [make_callback(recorder)]
    if "stop_at" in spec:
        callbacks.append(StopAt(spec.pop("stop_at")))
    record_reads = spec.pop("reads", True)
    kwargs = {"epochs": 1, "verbose": 0, "workers": 0, "shuffle": False}
    kwargs.update(spec)
    out = _oracle.Capture(tty=False)
    try:
        with _oracle.frozen_clock(), contextlib.redirect_stdout(out):
            history = _shim.fit_generator(
                model, data, callbacks=callbacks, validation_data=val_data, **kwargs
            )
        result = {
            "reads": recorder.reads if record_reads else len(recorder.reads),
            "events": recorder.events,
            "params": recorder.params,
            "batch_logs": recorder.batch_logs,
            "epoch_logs": recorder.epoch_logs,
            "history": {k: _round(v) for k, v in history.history.items()},
            "stdout": out.getvalue(),
            "weights": [_round(w) for w in model.get_weights()],
        }
    except Exception as exc:
        result = {"error": _oracle.builtin_bases(exc)[0]}
    _RESULTS[name] = result
    return result


def _aspect(name, aspect):
    result = run_scenario(name)
    if "error" in result:
        raise RuntimeError("scenario failed: " + result["error"])
    return result[aspect]


def _evaluate_predict():
    def evaluate(steps=None, n=N_BATCHES, source="seq"):
        recorder = Recorder()
        model = make_model()
        model.set_weights([np.array([[0.5], [-0.25]], "float32"), np.array([0.1], "float32")])
        data = Batches(recorder, n=n) if source == "seq" else generator(recorder)
        loss = _shim.evaluate_generator(model, data, steps=steps, workers=0)
        return [_round(loss), recorder.reads]

    def predict(steps=None, source="seq"):
        recorder = Recorder()
        model = make_model()
        model.set_weights([np.array([[0.5], [-0.25]], "float32"), np.array([0.1], "float32")])
        data = Batches(recorder) if source == "seq" else generator(recorder)
        out = _shim.predict_generator(model, data, steps=steps, workers=0)
        return [_round(np.asarray(out)), recorder.reads]

    yield "evaluate/seq", lambda: evaluate()
    yield "evaluate/seq-steps-2", lambda: evaluate(steps=2)
    yield "evaluate/gen-steps-3", lambda: evaluate(steps=3, source="gen")
    yield "evaluate/seq-1-batch", lambda: evaluate(n=1)
    yield "predict/seq", lambda: predict()
    yield "predict/seq-steps-2", lambda: predict(steps=2)
    yield "predict/gen-steps-3", lambda: predict(steps=3, source="gen")


def cases():
    for name in SCENARIOS:
        for aspect in ASPECTS:
            yield f"fit/{name}/{aspect}", lambda n=name, a=aspect: _aspect(n, a)
    yield from _evaluate_predict()


_oracle.main(__name__, AREA, cases)

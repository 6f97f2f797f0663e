"""fit_generator and friends run Keras 2.3.1's loop: the number of batches, the order they
are read in, the callbacks' logs and params, and the progress text a Keras 2 log shows."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

from kutils import Sequence, evaluate_generator, fit_generator


def _model(metrics=()):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", metrics=list(metrics))
    return model


def _batch(i, size=2):
    x = np.full((size, 2), float(i), dtype="float32")
    return x, np.full((size, 1), 0.5, dtype="float32")


class Logged(Sequence):
    """Five batches; every read and on_epoch_end is logged."""

    def __init__(self, n=5, log=None, sizes=None):
        super().__init__()
        self.n = n
        self.log = [] if log is None else log
        self.sizes = sizes

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        self.log.append(index)
        return _batch(index, self.sizes[index] if self.sizes else 2)

    def on_epoch_end(self):
        self.log.append("end")


class Events(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batch_logs = []
        self.params_seen = []

    def set_params(self, params):
        super().set_params(params)
        self.params_seen.append(dict(params))

    def on_batch_end(self, batch, logs=None):
        self.batch_logs.append(dict(logs))


def test_steps_per_epoch_below_len_wraps_round_the_sequence():
    seq = Logged()
    fit_generator(_model(), seq, steps_per_epoch=2, epochs=3, workers=0, verbose=0)
    assert seq.log == [0, 1, "end", 2, 3, "end", 4, 0, "end"]


def test_steps_per_epoch_above_len_trains_that_many_batches():
    events = Events()
    fit_generator(_model(), Logged(), steps_per_epoch=7, epochs=2, workers=0, verbose=0,
                  callbacks=[events])  # fmt: skip
    assert [logs["batch"] for logs in events.batch_logs] == [*range(7), *range(7)]


def test_batch_logs_hold_batch_size_and_the_batch_loss():
    events = Events()
    model = _model()
    fit_generator(model, Logged(sizes=[2, 3, 2, 3, 2]), epochs=1, workers=0, verbose=0,
                  callbacks=[events])  # fmt: skip
    first = events.batch_logs[0]
    assert first["batch"] == 0 and first["size"] == 2
    assert isinstance(first["batch"], int) and isinstance(first["size"], int)
    assert first["loss"] == pytest.approx(0.25)  # zero weights: (0 - 0.5) ** 2
    assert [logs["size"] for logs in events.batch_logs] == [2, 3, 2, 3, 2]


def test_params_are_keras_2s_and_sent_again_after_each_epoch_when_steps_come_from_len():
    class Shrinking(Logged):
        def on_epoch_end(self):
            self.n -= 1

    events = Events()
    fit_generator(_model(["mae"]), Shrinking(), epochs=3, workers=0, verbose=0,
                  validation_data=_batch(0), callbacks=[events])  # fmt: skip
    assert [p["steps"] for p in events.params_seen] == [5, 4, 3, 2]
    assert events.params_seen[0] == {
        "epochs": 3, "steps": 5, "verbose": 0, "do_validation": True,
        "metrics": ["loss", "mae", "val_loss", "val_mae"],
    }  # fmt: skip


def test_params_are_sent_once_when_steps_per_epoch_is_given():
    events = Events()
    fit_generator(_model(), Logged(), steps_per_epoch=3, epochs=3, workers=0, verbose=0,
                  callbacks=[events])  # fmt: skip
    assert len(events.params_seen) == 1


def test_verbose_1_prints_keras_2_text_without_terminal_codes(capsys):
    fit_generator(_model(), Logged(), epochs=2, workers=0, verbose=1)
    out = capsys.readouterr().out
    assert out.startswith("Epoch 1/2\n")
    assert "\nEpoch 2/2\n" in out
    assert "5/5 [==============================]" in out
    assert "\x1b" not in out and "\b" not in out


def test_verbose_2_prints_one_line_per_epoch(capsys):
    fit_generator(_model(), Logged(), epochs=2, workers=0, verbose=2,
                  validation_data=Logged(n=2))  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert re.fullmatch(r" - \d+s - loss: \d\.\d{4} - val_loss: \d\.\d{4}", lines[1])


def test_no_batch_is_read_after_stop_training():
    class StopAtSecond(keras.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    seq = Logged()
    fit_generator(_model(), seq, epochs=3, workers=0, verbose=0, callbacks=[StopAtSecond()])
    assert seq.log == [0, 1]


def test_validation_reads_exactly_validation_steps_batches():
    train, val = Logged(), Logged(log=[])
    fit_generator(_model(), train, epochs=1, workers=0, verbose=0,
                  validation_data=val, validation_steps=2)  # fmt: skip
    assert val.log == [0, 1]


def test_evaluate_generator_is_the_mean_over_all_samples():
    model = _model()
    model.set_weights([np.array([[0.25], [0.0]], "float32"), np.zeros(1, "float32")])
    seq = Logged(n=3, sizes=[1, 4, 2])
    loss = evaluate_generator(model, seq, workers=0)
    x = np.concatenate([_batch(i, s)[0] for i, s in enumerate([1, 4, 2])])
    y = np.concatenate([_batch(i, s)[1] for i, s in enumerate([1, 4, 2])])
    expected = np.mean((x[:, :1] * 0.25 - y) ** 2)
    assert loss == pytest.approx(expected, rel=1e-6)


def test_validation_values_appear_only_on_validated_epochs():
    history = fit_generator(_model(), Logged(), epochs=3, workers=0, verbose=0,
                            validation_data=Logged(n=2), validation_freq=2)  # fmt: skip
    assert len(history.history["loss"]) == 3
    assert len(history.history["val_loss"]) == 1


def test_worker_threads_give_the_same_training_as_workers_0():
    a, b = _model(), _model()
    fit_generator(a, Logged(), steps_per_epoch=7, epochs=2, workers=0, verbose=0, shuffle=False)
    fit_generator(b, Logged(), steps_per_epoch=7, epochs=2, workers=2, verbose=0, shuffle=False)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)

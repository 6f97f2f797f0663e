"""fit_generator, evaluate_generator, predict_generator: Keras 2.3.1 behaviour on Keras 3."""

from __future__ import annotations

import threading

import keras
import numpy as np
import pytest

from kutils import Sequence, evaluate_generator, fit_generator, predict_generator

RNG = np.random.default_rng(0)
X = RNG.random((48, 3)).astype("float32")
Y = (X.sum(axis=1) > 1.5).astype("float32").reshape(-1, 1)


def _model(metrics=("accuracy",)):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.SGD(0.5), "binary_crossentropy", metrics=list(metrics))
    return model


def _batches(size=8, threads=None, limit=None):
    produced = 0
    while limit is None or produced < limit:
        for start in range(0, len(X), size):
            if limit is not None and produced >= limit:
                return
            if threads is not None:
                threads.add(threading.current_thread().name)
            produced += 1
            yield X[start : start + size], Y[start : start + size]


class _Batches(Sequence):
    def __init__(self, threads=None):
        self.threads = threads if threads is not None else set()

    def __len__(self):
        return 6

    def __getitem__(self, index):
        self.threads.add(threading.current_thread().name)
        return X[index * 8 : (index + 1) * 8], Y[index * 8 : (index + 1) * 8]


class _Counter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.train_batches = 0
        self.test_batches = 0
        self.seen_params = None

    def on_train_begin(self, logs=None):
        self.seen_params = dict(self.params)

    def on_train_batch_end(self, batch, logs=None):
        self.train_batches += 1

    def on_test_batch_end(self, batch, logs=None):
        self.test_batches += 1


class GeneratorFailure(Exception):
    pass


def _failing(after):
    yield from _batches(limit=after)
    raise GeneratorFailure("batch source broke")


def test_fit_generator_runs_steps_per_epoch_and_sets_callback_params():
    counter = _Counter()
    history = fit_generator(
        _model(), _batches(), steps_per_epoch=3, epochs=2, verbose=0, callbacks=[counter]
    )
    assert isinstance(history, keras.callbacks.History)
    assert counter.train_batches == 6
    assert counter.seen_params["epochs"] == 2 and counter.seen_params["steps"] == 3
    assert len(history.history["loss"]) == 2 and history.epoch == [0, 1]


def test_fit_generator_trains_the_model():
    model = _model()
    before = model.evaluate(X, Y, verbose=0)[0]
    history = fit_generator(model, _batches(), steps_per_epoch=6, epochs=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.evaluate(X, Y, verbose=0)[0] < before


def test_fit_generator_initial_epoch():
    history = fit_generator(
        _model(), _batches(), steps_per_epoch=2, epochs=3, initial_epoch=1, verbose=0
    )
    assert history.epoch == [1, 2]


def test_validation_generator_with_validation_steps():
    counter = _Counter()
    history = fit_generator(
        _model(),
        _batches(),
        steps_per_epoch=2,
        epochs=2,
        verbose=0,
        callbacks=[counter],
        validation_data=_batches(),
        validation_steps=3,
    )
    assert len(history.history["val_loss"]) == 2
    assert counter.test_batches == 6


@pytest.mark.parametrize(("freq", "validated"), [(2, 2), ([1, 3], 2), ((4,), 1)])
def test_validation_freq(freq, validated):
    history = fit_generator(
        _model(),
        _batches(),
        steps_per_epoch=1,
        epochs=4,
        verbose=0,
        validation_data=_batches(),
        validation_steps=1,
        validation_freq=freq,
    )
    assert len(history.history["val_loss"]) == validated


def test_validation_tuple_is_evaluated_whole():
    model = _model()
    history = fit_generator(
        model,
        _batches(),
        steps_per_epoch=2,
        verbose=0,
        validation_data=(X, Y),
        validation_steps=1,  # ignored for arrays, as in Keras 2
    )
    loss = model.evaluate(X, Y, verbose=0)[0]
    assert history.history["val_loss"][0] == pytest.approx(loss, rel=1e-5)


def test_validation_sequence():
    history = fit_generator(
        _model(), _batches(), steps_per_epoch=2, verbose=0, validation_data=_Batches()
    )
    assert len(history.history["val_loss"]) == 1


def test_missing_steps_raise_the_keras_2_error():
    with pytest.raises(ValueError, match=r"`steps_per_epoch=None` is only valid for a generator"):
        fit_generator(_model(), _batches())
    with pytest.raises(ValueError, match=r"`validation_steps=None` is only valid"):
        fit_generator(_model(), _batches(), 2, validation_data=_batches())
    with pytest.raises(ValueError, match=r"`steps=None` is only valid"):
        evaluate_generator(_model(), _batches())


def test_bad_validation_data_and_bad_batches_are_named():
    with pytest.raises(ValueError, match=r"should be a tuple `\(val_x, val_y"):
        fit_generator(_model(), _batches(), 2, validation_data=(X,))
    bad = iter([(X, Y, None, None)] * 4)
    with pytest.raises(ValueError, match=r"Output of generator should be a tuple"):
        fit_generator(_model(), bad, 2, verbose=0, workers=0)
    with pytest.raises(TypeError, match=r"generator must be a kutils.Sequence or a generator"):
        fit_generator(_model(), [(X, Y)], 1)
    with pytest.raises(TypeError, match=r"takes a Keras model as its first argument"):
        fit_generator(_batches(), _model(), 1)


def test_generator_is_consumed_by_worker_threads():
    threads: set[str] = set()
    fit_generator(_model(), _batches(threads=threads), 3, verbose=0, workers=2)
    assert threads and all(name.startswith("kutils_") for name in threads), threads


def test_workers_0_runs_the_generator_without_worker_threads():
    threads: set[str] = set()
    fit_generator(_model(), _batches(threads=threads), 3, verbose=0, workers=0)
    assert threads and not any(name.startswith("kutils_") for name in threads), threads


def test_use_multiprocessing_with_a_generator_warns_and_trains_in_threads():
    threads: set[str] = set()
    with pytest.warns(UserWarning, match="runs the generator in threads"):
        history = fit_generator(
            _model(), _batches(threads=threads), 2, verbose=0, workers=2, use_multiprocessing=True
        )
    assert len(history.history["loss"]) == 1
    assert all(name.startswith("kutils_") for name in threads)


def test_sequence_gets_the_worker_options_of_the_call_and_keeps_its_own_after():
    threads: set[str] = set()
    sequence = _Batches(threads)
    counter = _Counter()
    fit_generator(_model(), sequence, epochs=2, verbose=0, workers=2, callbacks=[counter])
    assert counter.seen_params["steps"] == 6 and counter.train_batches == 12
    assert any(name.startswith("kutils_") for name in threads), threads
    assert sequence.workers == 1  # restored


def test_sequence_keeps_its_own_options_when_the_call_leaves_the_defaults():
    threads: set[str] = set()
    sequence = _Batches(threads)
    sequence.workers = 2
    fit_generator(_model(), sequence, verbose=0)
    assert any(name.startswith("kutils_") for name in threads), threads
    assert sequence.workers == 2


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_generator_exception_reaches_fit_generator_caller_with_its_type(workers):
    with pytest.raises(GeneratorFailure, match="batch source broke"):
        fit_generator(_model(), _failing(after=4), 3, epochs=3, verbose=0, workers=workers)


def test_generator_exception_reaches_evaluate_and_predict_callers():
    with pytest.raises(GeneratorFailure):
        evaluate_generator(_model(), _failing(after=3), steps=5)
    with pytest.raises(GeneratorFailure):
        predict_generator(_model(), _failing(after=3), steps=5)


def test_validation_generator_exception_reaches_the_caller():
    with pytest.raises(GeneratorFailure):
        fit_generator(
            _model(),
            _batches(),
            2,
            epochs=3,
            verbose=0,
            validation_data=_failing(after=3),
            validation_steps=2,
        )


def test_evaluate_generator_returns_a_scalar_without_metrics_and_a_list_with():
    loss = evaluate_generator(_model(metrics=()), _batches(), steps=6)
    assert isinstance(loss, float)
    model = _model()
    values = evaluate_generator(model, _batches(), steps=6)
    assert isinstance(values, list) and len(values) == 2
    assert values == pytest.approx(model.evaluate(X, Y, verbose=0), rel=1e-5)


def test_predict_generator_takes_inputs_alone_or_in_tuples():
    model = _model()
    expected = model.predict(X, verbose=0)
    inputs_only = (X[i : i + 8] for i in range(0, 48, 8))
    assert predict_generator(model, inputs_only, steps=6).shape == (48, 1)
    predictions = predict_generator(model, _batches(), steps=6, workers=2)
    np.testing.assert_allclose(predictions, expected, rtol=1e-5)
    assert predict_generator(model, _Batches()).shape == (48, 1)


def test_class_weight_weighs_the_training_loss():
    history = fit_generator(_model(), _batches(), 2, verbose=0, class_weight={0: 0.0, 1: 0.0})
    assert history.history["loss"][0] == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="must contain all classes"):
        fit_generator(_model(), _batches(), 2, verbose=0, class_weight={0: 1.0})


def test_missing_steps_are_refused_before_the_generator_is_read():
    threads: set[str] = set()
    with pytest.raises(ValueError, match=r"`validation_steps=None`"):
        fit_generator(_model(), _batches(threads=threads), 2, workers=2, validation_data=_batches())
    assert threads == set()

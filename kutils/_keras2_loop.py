"""Keras 2.3.1's generator loops (``fit_generator``, ``evaluate_generator``,
``predict_generator``) on a Keras 3 model, one batch at a time.

Keras 3's ``fit`` reads its input its own way (it looks at the first batches before
training, ends an epoch when a Sequence runs out, averages batch logs) and prints its own
progress. Keras 2 scripts and their callbacks expect Keras 2.3.1's loop, as its
``training_generator`` module ran it:

* ``steps_per_epoch`` batches per epoch, wrapping round a Sequence (``0 1 | 2 3 | 4 0``);
  with ``workers=0`` the Sequence's ``on_epoch_end`` after every epoch;
* batch logs ``{'batch', 'size', 'loss', <metrics>}`` with the batch's own loss, epoch
  logs averaged over the epoch's samples (Keras 2's ``BaseLogger``);
* ``params`` with ``epochs``, ``steps``, ``verbose``, ``do_validation`` and ``metrics``,
  sent again after every epoch when ``steps_per_epoch`` came from ``len(sequence)``;
* validation on the epoch's last step, with ``validation_steps`` batches;
* the progress text of Keras 2.3.1's ``ProgbarLogger`` (``Epoch 1/1``, kutils'
  ``Progbar``), on stdout.

The losses reported for validation and ``evaluate_generator`` are the means over the
batches (Keras 2.3.1 reported the last batch's; see docs/compat.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from kutils import _batch_steps

__all__ = ["Keras2Loop"]


def _batch_size(x: Any) -> int:
    """Keras 2.3.1's rule: the first input's first dimension (1 for an empty x)."""
    if x is None or (hasattr(x, "__len__") and len(x) == 0):
        return 1
    if isinstance(x, (list, tuple)):
        return int(x[0].shape[0])
    if isinstance(x, dict):
        return int(next(iter(x.values())).shape[0])
    return int(x.shape[0])


def _unpack(batch: Any, what: str) -> tuple[Any, Any, Any]:
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        return (batch[0], batch[1], batch[2] if len(batch) == 3 else None)
    msg = (
        f"Output of {what} should be a tuple `(x, y, sample_weight)` or `(x, y)`. "
        f"Received: {type(batch).__name__}"
    )
    raise ValueError(msg)


class _EpochAverages:
    """Sample-weighted means of per-batch values (the metrics are reset before each
    ``train_on_batch`` and ``test_on_batch``, so each step's values are the batch's own:
    see kutils/_batch_steps.py).

    Keras 2.3.1's batch logs held the batch's loss and the epoch's running mean of each
    metric (its metrics were stateful); its epoch logs held the means over the epoch
    (``BaseLogger``). Both come from these sums."""

    def __init__(self, stateful: set[str]) -> None:
        self.stateful = stateful
        self.seen = 0
        self.totals: dict[str, float] = {}

    def add(self, values: dict[str, float], size: int) -> dict[str, float]:
        """Count one batch; its values as Keras 2.3.1's batch logs showed them."""
        import numpy as np

        self.seen += size
        shown = {}
        for name, value in values.items():
            # float32 sums, as Keras's Mean metrics keep them.
            total = np.float32(self.totals.get(name, 0.0)) + np.float32(value) * np.float32(size)
            self.totals[name] = float(total)
            mean = float(np.float32(total) / np.float32(self.seen))
            shown[name] = mean if name in self.stateful else value
        return shown

    def means(self) -> dict[str, float]:
        import numpy as np

        seen = np.float32(max(self.seen, 1))
        return {k: float(np.float32(total) / seen) for k, total in self.totals.items()}

    def into(self, epoch_logs: dict[str, Any]) -> None:
        epoch_logs.update(self.means())


class Keras2Loop:
    """One ``fit_generator`` run: the model, its callbacks and Keras 2.3.1's bookkeeping."""

    def __init__(
        self, model: Any, callbacks: list[Any] | None, verbose: int, *, training: bool = True
    ) -> None:
        import keras

        from kutils._keras2_progress import Keras2ProgbarLogger

        self.model = model
        self.verbose = verbose
        self.out_labels = self._metric_names()
        self.stateful = set(self.out_labels[1:])
        ordered = [Keras2ProgbarLogger(self.stateful)] if verbose else []
        ordered += list(callbacks or [])
        if training:  # evaluate_generator leaves model.history alone
            model.history = keras.callbacks.History()
            ordered.append(model.history)
        self.callbacks = _Callbacks(ordered, model)

    def _metric_names(self) -> list[str]:
        """Keras 2's ``metrics_names`` before the first step: ``loss``, then the compiled
        metrics of a single-output model by name (Keras 3 says ``compile_metrics``)."""
        config = getattr(getattr(self.model, "_compile_config", None), "config", None) or {}
        metrics = config.get("metrics") or []
        names = ["loss"]
        if isinstance(metrics, (list, tuple)):
            for metric in metrics:
                name = metric if isinstance(metric, str) else None
                name = name or getattr(metric, "name", None) or getattr(metric, "__name__", None)
                if isinstance(name, str) and name not in names:
                    names.append(name)
        return names

    def set_params(self, epochs: int, steps: int | None, do_validation: bool) -> None:
        metrics = self.out_labels + ["val_" + name for name in self.out_labels]
        self.callbacks.set_params(
            {
                "epochs": epochs,
                "steps": steps,
                "verbose": self.verbose,
                "do_validation": do_validation,
                "metrics": metrics,
            }
        )

    def train_step(
        self, index: int, batch: Any, class_weight: Any, averages: _EpochAverages
    ) -> None:
        x, y, sample_weight = _unpack(batch, "generator")
        logs: dict[str, Any] = {"batch": index, "size": _batch_size(x)}
        self.callbacks.on_train_batch_begin(index, logs)
        outs = _batch_steps.reset_then_train(
            self.model,
            x,
            y,
            sample_weight=sample_weight,
            class_weight=class_weight,
            return_dict=True,
        )
        logs.update(averages.add(self._named(outs), logs["size"]))
        self.callbacks.on_train_batch_end(index, logs)

    def _named(self, outs: dict[str, Any]) -> dict[str, float]:
        """The step's values in ``out_labels`` order; names Keras 3 reports beyond them
        (the metrics of a multi-output model) join ``out_labels`` and ``params``."""
        for name, value in outs.items():
            if name not in self.out_labels and _is_number(value):
                self.out_labels.append(name)
                self.stateful.add(name)
                metrics = self.callbacks.params.get("metrics")
                if isinstance(metrics, list):
                    metrics.insert(len(self.out_labels) - 1, name)
                    metrics.append("val_" + name)
        return {name: float(outs[name]) for name in self.out_labels if name in outs}

    def evaluate(
        self, batches: Iterator[Any], steps: int, after: Callable[[int], None] | None = None
    ) -> dict[str, float]:
        """Evaluate ``steps`` batches (test hooks called); the means over their samples
        (Keras 2.3.1 reported the last batch's values). ``after(steps_done)`` runs after
        each batch."""
        self.callbacks.on_test_begin()
        averages = _EpochAverages(set())
        for index in range(steps):
            x, y, sample_weight = _unpack(next(batches), "generator")
            size = _batch_size(x)
            logs: dict[str, Any] = {"batch": index, "size": size}
            self.callbacks.on_test_batch_begin(index, logs)
            outs = _batch_steps.reset_then_test(
                self.model, x, y, sample_weight=sample_weight, return_dict=True
            )
            logs.update(averages.add(self._named(outs), size))
            self.callbacks.on_test_batch_end(index, logs)
            if after is not None:
                after(index + 1)
        values = averages.means()
        self.callbacks.on_test_end(values)
        return values


class _Callbacks:
    """The callbacks in Keras 2's order, called directly: Keras 3's ``CallbackList``
    turns every log value into a float (``batch`` and ``size`` are ints in Keras 2)."""

    def __init__(self, callbacks: list[Any], model: Any) -> None:
        self.callbacks = callbacks
        self.params: dict[str, Any] = {}
        for callback in callbacks:
            callback.set_model(model)

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params
        for callback in self.callbacks:
            callback.set_params(params)

    def __getattr__(self, hook: str) -> Callable[..., None]:
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args: Any) -> None:
            for callback in self.callbacks:
                getattr(callback, hook)(*args)

        return call


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return getattr(value, "ndim", 0) == 0


def tuple_batches(data: tuple[Any, ...], batch_size: int) -> tuple[Iterator[Any], int]:
    """A validation tuple ``(x, y[, sample_weight])`` cut in batches of ``batch_size``
    (Keras 2.3.1 evaluated it with the last training batch's size)."""
    x, y, sample_weight = _unpack(data, "validation_data")
    n = _batch_size(x)
    size = max(1, int(batch_size))
    steps = max(1, -(-n // size))

    def cut(part: Any, start: int) -> Any:
        if part is None:
            return None
        if isinstance(part, (list, tuple)):
            return [p[start : start + size] for p in part]
        if isinstance(part, dict):
            return {k: v[start : start + size] for k, v in part.items()}
        return part[start : start + size]

    def batches() -> Iterator[Any]:
        for start in range(0, steps * size, size):
            yield (cut(x, start), cut(y, start), cut(sample_weight, start))

    return batches(), steps


def run_epochs(
    loop: Keras2Loop,
    next_batch: Callable[[], Any],
    *,
    steps: int,
    epochs: int,
    initial_epoch: int,
    class_weight: Any,
    validate: Callable[[int, int], dict[str, float] | None],
    end_of_epoch: Callable[[], int | None],
) -> Any:
    """Keras 2.3.1's epoch loop. ``validate(epoch, batch_size)`` returns the validation
    values to log as ``val_*`` (or None); ``end_of_epoch()`` runs after every epoch and
    returns the next epoch's steps when they are recomputed (``len(sequence)``)."""
    model = loop.model
    loop.callbacks.on_train_begin()
    model.stop_training = False
    epoch = initial_epoch
    while epoch < epochs:
        # A new dict each epoch: Keras 2.3.1 kept one, so an epoch without validation
        # showed the previous epoch's val_loss (see docs/compat.md).
        epoch_logs: dict[str, Any] = {}
        model.reset_metrics()
        loop.callbacks.on_epoch_begin(epoch)
        averages = _EpochAverages(loop.stateful)
        done = 0
        while done < steps:
            batch = next_batch()
            loop.train_step(done, batch, class_weight, averages)
            done += 1
            if done >= steps:
                size = _batch_size(_unpack(batch, "generator")[0])
                values = validate(epoch, size)
                if values is not None:
                    epoch_logs.update({"val_" + k: v for k, v in values.items()})
            if model.stop_training:
                break
        averages.into(epoch_logs)
        loop.callbacks.on_epoch_end(epoch, dict(epoch_logs))
        epoch += 1
        if model.stop_training:
            break
        new_steps = end_of_epoch()
        if new_steps is not None:
            steps = new_steps
            loop.set_params(epochs, steps, loop.callbacks.params.get("do_validation", False))
    loop.callbacks.on_train_end()
    return model.history


def _infinite(sequence: Any) -> Iterator[Any]:
    """Keras 2's ``iter_sequence_infinite``: the Sequence's batches in order, for ever
    (``len`` read again on each pass)."""
    while True:
        for index in range(len(sequence)):
            yield sequence[index]


class Source:
    """Where the batches of one feed come from: an enqueuer (``workers > 0``) or this
    thread (a Sequence read in order, a generator's ``next``), as in Keras 2.3.1."""

    def __init__(
        self, data: Any, is_sequence: bool, options: dict[str, Any], shuffle: bool = False
    ) -> None:
        self.data = data
        self.is_sequence = is_sequence
        self.enqueuer: Any = None
        workers = int(options.get("workers", 1))
        if workers > 0:
            from kutils.enqueuers import GeneratorEnqueuer, OrderedEnqueuer

            multiprocessing = bool(options.get("use_multiprocessing", False))
            if is_sequence:
                from kutils._loader import default_start_method

                # The start method of a Sequence in fit: 'fork' on Linux as in Keras 2
                # (scripts without a __main__ guard work), unless the sequence asks.
                method = getattr(data, "start_method", None) or default_start_method()
                self.enqueuer = OrderedEnqueuer(
                    data, use_multiprocessing=multiprocessing, shuffle=shuffle, start_method=method
                )
            else:
                self.enqueuer = GeneratorEnqueuer(data, use_multiprocessing=multiprocessing)
            self.enqueuer.start(workers=workers, max_queue_size=options.get("max_queue_size", 10))
            self.batches: Iterator[Any] = self.enqueuer.get()
        else:
            self.batches = _infinite(data) if is_sequence else data

    @property
    def in_this_thread(self) -> bool:
        return self.enqueuer is None

    def next(self) -> Any:
        return next(self.batches)

    def stop(self) -> None:
        if self.enqueuer is not None:
            self.enqueuer.stop()
            self.enqueuer = None


def evaluate_batches(
    model: Any, source: Source, steps: int, callbacks: list[Any] | None, verbose: int
) -> Any:
    """Keras 2.3.1's ``evaluate_generator`` loop: a scalar for one output, else a list."""
    loop = Keras2Loop(model, callbacks, verbose=0, training=False)
    loop.callbacks.set_params({"verbose": verbose, "steps": steps, "epochs": 1})
    values = loop.evaluate(source.batches, steps, _progress(steps, verbose))
    outs = [values[name] for name in loop.out_labels if name in values]
    return outs[0] if len(outs) == 1 else outs


def predict_batches(model: Any, source: Source, steps: int, verbose: int) -> Any:
    """Keras 2.3.1's ``predict_generator`` loop: the outputs of every batch, joined."""
    import numpy as np

    parts: list[list[Any]] = []
    after = _progress(steps, verbose)
    for done in range(1, steps + 1):
        batch = source.next()
        # Keras 2.3.1 took x from (x, y) and (x, y, sample_weight) batches.
        x = batch[0] if isinstance(batch, tuple) and len(batch) in (1, 2, 3) else batch
        outs = model.predict_on_batch(x)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        if not parts:
            parts = [[] for _ in outs]
        for slot, out in zip(parts, outs, strict=True):
            slot.append(np.asarray(out))
        if after is not None:
            after(done)
    if not parts:
        return []
    joined = [np.concatenate(slot) for slot in parts]
    return joined[0] if len(joined) == 1 else joined


def _progress(steps: int, verbose: int) -> Callable[[int], None] | None:
    """Keras 2's step bar for evaluate/predict (verbose 1): updated after each batch."""
    if verbose != 1:
        return None
    from kutils.progbar import Progbar

    return Progbar(target=steps).update


def fit(
    model: Any,
    train: Source,
    *,
    steps: int,
    steps_from_len: bool,
    epochs: int,
    verbose: int,
    callbacks: list[Any] | None,
    validation: Source | tuple[Any, ...] | None,
    validation_steps: int | None,
    validation_freq: Any,
    class_weight: Any,
    initial_epoch: int,
) -> Any:
    """Keras 2.3.1's ``fit_generator`` on sources already started; returns the History."""
    loop = Keras2Loop(model, callbacks, verbose)
    loop.set_params(epochs, steps, validation is not None)

    def validate(epoch: int, batch_size: int) -> dict[str, float] | None:
        if validation is None or not _should_validate(validation_freq, epoch):
            return None
        if isinstance(validation, Source):
            return loop.evaluate(validation.batches, int(validation_steps or 0))
        batches, val_steps = tuple_batches(validation, batch_size)
        return loop.evaluate(batches, val_steps)

    def end_of_epoch() -> int | None:
        if train.is_sequence and train.in_this_thread:
            hook = getattr(train.data, "on_epoch_end", None)
            if hook is not None:
                hook()
        return len(train.data) if steps_from_len else None

    return run_epochs(
        loop,
        train.next,
        steps=steps,
        epochs=epochs,
        initial_epoch=initial_epoch,
        class_weight=class_weight,
        validate=validate,
        end_of_epoch=end_of_epoch,
    )


def _should_validate(freq: Any, epoch: int) -> bool:
    """Keras 2.3.1's ``should_run_validation``: every ``freq`` epochs, or the listed
    (1-based) epochs."""
    if isinstance(freq, int):
        if freq < 1:
            msg = f"validation_freq must be a positive integer. Received: validation_freq={freq}"
            raise ValueError(msg)
        return (epoch + 1) % freq == 0
    return (epoch + 1) in freq

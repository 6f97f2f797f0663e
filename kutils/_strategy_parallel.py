"""The strategy engine of the data-parallel core: a model run by a tf.distribute strategy.

``data_parallel(model, strategy)`` builds a copy of the template under
``strategy.scope()`` (as tf.distribute requires) and wraps it in a
:class:`StrategyDataParallel`, which Keras trains through the strategy. The weights are
copied from the template when a call starts and back to it when ``fit`` or
``train_on_batch`` ends, so the template holds the trained weights. Across the workers
of a ``MultiWorkerMirroredStrategy``, three things are added here:

* ``fit`` and ``evaluate`` read a Sequence, HDF5 input or shuffled numpy arrays as
  per-worker shards (``kutils/_per_worker_input.py``);
* the model is built from one replica's batch (:class:`LocalBatchSymbolicBuild`), since
  Keras 3's own build fails under that strategy;
* a worker that fails once training began reports it to the cluster, so the others stop
  instead of waiting for it in an all-reduce.

The public path of :class:`StrategyDataParallel` is ``kutils.parallel``.
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from kutils import _keras_compat, _keras_compat_training
from kutils._uneven_batches import RowWeightedLoss

if TYPE_CHECKING:
    from kutils._per_worker_input import ShardedInput

# The errors of a collective operation whose peer is gone or has reported an error.
_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError)


def strategy_model(template: keras.Model, strategy: tf.distribute.Strategy) -> keras.Model:
    """A :class:`StrategyDataParallel` running a copy of ``template`` under ``strategy``."""
    with strategy.scope():
        replica = _clone_with_weights(template)
        return StrategyDataParallel(template, replica, strategy)


def _clone_with_weights(template: keras.Model) -> keras.Model:
    try:
        replica = keras.models.clone_model(template)
    except Exception as exc:
        msg = (
            "Running a model under a tf.distribute strategy needs a copy built inside "
            "strategy.scope(); this model could not be cloned (a subclassed model needs "
            f"get_config). Received: model={template.name!r} ({type(exc).__name__}: {exc})"
        )
        raise ValueError(msg) from exc
    if not replica.built:
        msg = (
            "The copy of the model made for the strategy is not built (a subclassed model "
            "needs get_build_config/build_from_config). Build the model from a keras.Input, "
            f"or pass a list of devices instead. Received: model={template.name!r}"
        )
        raise ValueError(msg)
    replica.set_weights(template.get_weights())
    return replica


# Keras's TensorFlow trainer builds the model before fit/evaluate from the first
# distributed batch, which it reduces with ``strategy.reduce("MEAN", batch, axis=None)``
# (``TensorFlowTrainer._maybe_symbolic_build``). MultiWorkerMirroredStrategy's reduce
# cannot take a PerReplica batch, so fit fails before its first step. Only the shapes and
# dtypes of the batch are used (to make KerasTensors), so one replica's local part of the
# batch serves as well, and needs no cross-worker communication.


class LocalBatchSymbolicBuild:
    """Mixin for a ``keras.Model`` run by a strategy: build from one replica's batch.

    Overrides the private ``TensorFlowTrainer._maybe_symbolic_build`` (its canary is
    ``test_canary_keras_TensorFlowTrainer__maybe_symbolic_build``); the Keras internals
    it reads are accessors of ``kutils/_keras_compat_training.py``.
    """

    def _maybe_symbolic_build(self, iterator: Any = None, data_batch: Any = None) -> None:
        symbolic_build_from_local_batch(self, iterator, data_batch)


def symbolic_build_from_local_batch(
    model: Any, iterator: Any = None, data_batch: Any = None
) -> None:
    """``TensorFlowTrainer._maybe_symbolic_build`` reading a local replica's batch.

    Args:
        model: a Keras model on the TensorFlow backend, compiled under a strategy.
        iterator: the TFEpochIterator that fit/evaluate pass, or None.
        data_batch: a batch that Keras already took, or None.
    """
    _keras_compat.check_keras_version("data_parallel under MultiWorkerMirroredStrategy")
    strategy = _keras_compat_training.model_distribute_strategy(model)
    if strategy is None:
        return
    if iterator is not None:
        spec = _keras_compat_training.epoch_iterator_element_spec(iterator)
        if spec is not None:
            # The shapes and dtypes are all that is needed: taking them from the spec
            # reads no batch (and starts no input pipeline before the first epoch).
            data_batch = keras.tree.map_structure(_one_replica_spec, spec)
        else:
            for _, _, it in iterator:
                data_batch = keras.tree.map_structure(
                    lambda x: _one_replica_value(strategy, x), next(it)
                )
                break
    with strategy.scope():
        _keras_compat_training.symbolic_build(model, data_batch)


def _one_replica_spec(spec: Any) -> Any:
    """The TensorSpec of one replica's value: a PerReplicaSpec holds one per replica."""
    specs = _keras_compat_training.per_replica_value_specs(spec)
    return specs[0] if specs else spec


def _one_replica_value(strategy: tf.distribute.Strategy, value: Any) -> Any:
    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


class StrategyDataParallel(LocalBatchSymbolicBuild, RowWeightedLoss, keras.Model):
    """A copy of the template run by a tf.distribute strategy, its weights kept in step.

    Made by :func:`data_parallel` for a ``tf.distribute.Strategy``. The copy (``replica``)
    and this model are built, and compiled, under ``strategy.scope()``, so Keras runs
    ``fit``, ``evaluate`` and ``predict`` through the strategy. Every public training or
    inference call first copies the template's weights into the copy; ``fit`` and
    ``train_on_batch`` copy the result back, so the template holds the trained weights.

    Across the workers of a ``MultiWorkerMirroredStrategy``, ``fit`` and ``evaluate``
    read a kutils ``Sequence`` (or other ``PyDataset``), HDF5 input or shuffled numpy
    arrays as per-worker shards with one shuffle order for all workers
    (``kutils/_per_worker_input.py``; docs/multi_worker.md has the rules per input type). A
    worker whose ``fit`` or ``evaluate`` fails once it has begun reports the error to the
    cluster, so the other workers stop at once instead of waiting for it.

    Args:
        template: the user's built model.
        replica: the copy of ``template`` made under ``strategy.scope()``.
        strategy: the strategy that runs the copy.
    """

    # The module saved models record: the public one (this module is private).
    __module__ = "kutils.parallel"

    def __init__(
        self, template: keras.Model, replica: keras.Model, strategy: tf.distribute.Strategy
    ) -> None:
        super().__init__()
        self.replica = replica
        # Kept outside Keras's tracking: the template's variables are not the strategy's.
        object.__setattr__(self, "_template", template)
        object.__setattr__(self, "_strategy", strategy)
        names = getattr(replica, "output_names", None)
        if names:
            self.output_names = list(names)
        self._across_workers = _spans_workers(strategy)
        object.__setattr__(self, "_sharded_input", None)
        self.built = True

    @property
    def template(self) -> keras.Model:
        """The user's model, which receives the trained weights."""
        return self._template

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self.replica(inputs, training=training)

    def compile(self, optimizer: Any = "rmsprop", *args: Any, **kwargs: Any) -> None:
        """``keras.Model.compile`` inside the strategy's scope, as tf.distribute needs."""
        with self._strategy.scope():
            if isinstance(optimizer, keras.optimizers.Optimizer):
                # An optimizer made outside the scope would mix two strategies.
                optimizer = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
            super().compile(optimizer, *args, **kwargs)

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        self._pull()
        object.__setattr__(self, "_fitting", True)
        try:
            return _call_on_input(self, keras.Model.fit, args, kwargs, training=True)
        finally:
            object.__setattr__(self, "_fitting", False)
            self._push()

    def train_on_batch(self, *args: Any, **kwargs: Any) -> Any:
        self._pull()
        try:
            return super().train_on_batch(*args, **kwargs)
        finally:
            self._push()

    def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        self._pull()
        return _call_on_input(self, keras.Model.evaluate, args, kwargs, training=False)

    def test_on_batch(self, *args: Any, **kwargs: Any) -> Any:
        self._pull()
        return super().test_on_batch(*args, **kwargs)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        self._pull()
        return _call_on_input(self, keras.Model.predict, args, kwargs, training=False)

    def predict_on_batch(self, *args: Any, **kwargs: Any) -> Any:
        self._pull()
        return super().predict_on_batch(*args, **kwargs)

    def train_step(self, data: Any) -> Any:
        """Keras's train step; across workers, its scalar logs are made 1-D."""
        return _reducible(self, super().train_step(data))

    def test_step(self, data: Any) -> Any:
        """Keras's test step; across workers, its scalar logs are made 1-D."""
        return _reducible(self, super().test_step(data))

    def reset_metrics(self) -> None:
        """Keras's ``reset_metrics``; across workers, with no cross-worker read.

        Assigning a metric variable from outside the replicas reads it back, an
        all-reduce over the cluster per variable (about 0.1 s each on a loaded
        machine). Each replica zeroes its own copy instead, in a function traced once.
        """
        if not (self._across_workers and tf.executing_eagerly()):
            super().reset_metrics()
            return
        reset = functools.partial(keras.Model.reset_metrics, self)
        _metric_function(self, "reset", lambda: self._strategy.run(reset))()

    def get_metrics_result(self) -> Any:
        """Keras's ``get_metrics_result``; across workers, one traced function."""
        if not (self._across_workers and tf.executing_eagerly()):
            return super().get_metrics_result()
        result = functools.partial(keras.Model.get_metrics_result, self)
        return _metric_function(self, "result", result)()

    def _pull(self) -> None:
        # Within fit (its validation pass, a callback's evaluate or predict) the copy
        # holds the weights being trained; the template gets them when fit ends.
        if not self.__dict__.get("_fitting", False):
            self.replica.set_weights(self._template.get_weights())

    def _push(self) -> None:
        self._template.set_weights(self.replica.get_weights())


def _metric_function(model: StrategyDataParallel, kind: str, run: Any) -> Any:
    """``run`` as a tf.function, kept until the model's metrics change (a new compile)."""
    key = (kind, tuple(id(m) for m in model.metrics))
    cache = model.__dict__.setdefault("_kutils_metric_functions", {})
    if key not in cache:
        for old in [k for k in cache if k[0] == kind]:
            del cache[old]
        cache[key] = tf.function(run, autograph=False)
    return cache[key]


def _call_seed(model: StrategyDataParallel) -> int:
    """A seed for one call's shuffles, the same on every worker.

    The workers agree on a base seed once per model (one all-reduce); each call's seed
    is drawn from it and the call's number, which every worker counts alike.
    """
    from kutils import _per_worker_input

    state = model.__dict__.setdefault("_kutils_seed_state", [None, 0])
    if state[0] is None:
        state[0] = _per_worker_input.agreed_seed(model._strategy)
    state[1] += 1
    return int(np.random.default_rng([state[0], state[1]]).integers(2**31 - 1))


def _spans_workers(strategy: tf.distribute.Strategy) -> bool:
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(cluster.get(kind, [])) for kind in ("chief", "worker")) > 1


def _reducible(model: StrategyDataParallel, logs: Any) -> Any:
    # Across workers Keras averages each replica's logs with
    # strategy.reduce("MEAN", v, axis=0), which fails on a scalar loss; a 1-element
    # vector per replica averages to the same scalar.
    if not model._across_workers:
        return logs
    return keras.tree.map_structure(lambda v: tf.reshape(v, [1]) if v.shape.rank == 0 else v, logs)


# -- fit and evaluate across workers -------------------------------------------------------


def _call_on_input(
    model: StrategyDataParallel,
    method: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    training: bool,
) -> Any:
    """Keras's ``fit``/``evaluate`` (``method``), on per-worker shards where they apply.

    Across workers, an exception that stops this worker once training or evaluation
    has begun is reported to the cluster, so that the other workers, waiting for it
    in an all-reduce, stop at once (see ``_stopped_midway``).
    """
    sharded = _sharded_arguments(model, method, args, kwargs, training=training)
    steps = _steps_run(model) if model._across_workers else None
    try:
        if sharded is None:
            return method(model, *args, **kwargs)
        shards, keywords = sharded
        with shards.running():
            return method(model, **keywords)
    except BaseException as error:
        if not model._across_workers:
            raise
        if _stopped_midway(model, error, sharded, steps):
            _keras_compat_training.report_error_to_cluster(error)
        if isinstance(error, _PEER_ERRORS):
            raise _worker_lost(error) from error
        raise


def _steps_run(model: StrategyDataParallel) -> int | None:
    """The optimizer's step count, or None when there is no optimizer yet."""
    iterations = getattr(getattr(model, "optimizer", None), "iterations", None)
    try:
        return None if iterations is None else int(iterations.numpy())
    except Exception:  # unreadable once the cluster failed
        return None


def _stopped_midway(
    model: StrategyDataParallel, error: BaseException, sharded: Any, steps: int | None
) -> bool:
    """Whether ``error`` may leave the other workers waiting for this one.

    True for a TensorFlow op error (TensorFlow's own handler reports those), an
    error raised once the sharded input's first epoch began, or one raised after a
    training step ran (a callback's, say). An error Keras raises before anything
    runs (a bad argument) is raised on every worker alike and is not reported, so
    a script that catches it can go on using the cluster.
    """
    if isinstance(error, tf.errors.OpError):
        return True
    if sharded is not None and sharded[0].started:
        return True
    return steps is not None and _steps_run(model) != steps


def _worker_lost(exc: tf.errors.OpError) -> tf.errors.OpError:
    """The error of a step that another worker of the cluster left unfinished."""
    if "Error reported from" in exc.message:
        what = "stopped with an error (reported to the whole cluster, below)"
    else:
        what = "stopped answering (it crashed, was killed or is unreachable)"
    msg = (
        f"Training stopped: another worker of the MultiWorkerMirroredStrategy cluster {what}, "
        "so the gradient all-reduce cannot complete. Check that worker's log, then restart "
        "every worker; keras.callbacks.BackupAndRestore lets the restarted run resume. "
        f"Received: {type(exc).__name__}: {exc.message}"
    )
    return type(exc)(exc.node_def, exc.op, msg)


def _sharded_arguments(
    model: StrategyDataParallel,
    method: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    training: bool,
) -> tuple[ShardedInput, dict[str, Any]] | None:
    """Across workers, a Sequence, HDF5 or shuffled numpy input read as shards.

    Returns the sharded input and the keyword arguments for Keras with the input
    replaced, or None when Keras's own handling applies (one worker, other inputs,
    or ``steps_per_epoch``/``steps``/``validation_split`` given).
    """
    if not model._across_workers:
        return None

    arguments = _all_arguments(method, model, args, kwargs)
    if arguments.get("steps_per_epoch") or arguments.get("steps"):
        return None
    if arguments.get("validation_split"):
        return None
    if arguments.get("_use_cached_eval_dataset"):
        return None  # fit's validation pass: Keras reuses its own iterator, not x
    shards = sharded_input(
        model._strategy,
        arguments["x"],
        arguments.get("y"),
        arguments.get("sample_weight"),
        arguments["batch_size"],
        arguments.get("shuffle", False),
        training=training,
    )
    if shards is None:
        return None
    if _keeps_class_weight(shards, arguments):
        return None  # Keras applies it to unshuffled arrays
    _check_no_class_weight(arguments.get("class_weight"))
    shards.build(_call_seed(model))
    object.__setattr__(model, "_sharded_input", shards)  # the last one, for its seed
    arguments.update(x=shards, batch_size=None)
    for name in ("y", "sample_weight"):
        if name in arguments:
            arguments[name] = None
    if training:
        arguments["shuffle"] = False
    return shards, arguments


def _all_arguments(
    method: Any, model: keras.Model, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Every argument of ``method(model, *args, **kwargs)`` by name, defaults included."""
    bound = inspect.signature(method).bind(model, *args, **kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    del arguments["self"]
    arguments.update(arguments.pop("kwargs", {}))
    return arguments


def _keeps_class_weight(shards: ShardedInput, arguments: dict[str, Any]) -> bool:
    from kutils._array_feed import ArrayShards

    return (
        isinstance(shards, ArrayShards)
        and arguments.get("class_weight") is not None
        and not arguments.get("shuffle", False)
    )


def _check_no_class_weight(class_weight: Any) -> None:
    if class_weight is None:
        return
    msg = (
        "class_weight is not supported for an input read in shards across workers "
        "(a Sequence, HDF5 data or shuffled numpy arrays); give per-sample weights "
        "instead: (x, y, sample_weight) batches, HDF5Dataset(x, y, sample_weight) "
        f"or fit(x, y, sample_weight=...). Received: class_weight={class_weight!r}"
    )
    raise ValueError(msg)


def sharded_input(
    strategy: tf.distribute.Strategy,
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    batch_size: int | None = None,
    shuffle: Any = False,
    *,
    training: bool,
) -> ShardedInput | None:
    """The per-worker input for ``x`` (and ``y``...), or None when Keras shards it itself.

    Handles numpy arrays (read per step), an ``HDF5Dataset``, ``HDF5Matrix`` arrays that fit would
    stream, and a kutils ``Sequence`` or any other finite ``keras.utils.PyDataset``;
    everything else (tf.data, mixes of numpy and other array types) returns None.
    """
    if not training:
        shuffle = False
    from kutils import _row_sources
    from kutils._row_shards import _RowShards
    from kutils._sequence_shards import _SequenceShards

    source = _row_sources.find_row_source(x, y, sample_weight, batch_size, shuffle)
    if source is not None:
        return _RowShards(strategy, source)
    if (
        isinstance(x, keras.utils.PyDataset)
        and y is None
        and sample_weight is None
        and x.num_batches is not None
    ):
        return _SequenceShards(strategy, x, shuffle, training)
    leaves = [leaf for leaf in keras.tree.flatten((x, y, sample_weight)) if leaf is not None]
    if leaves and all(isinstance(leaf, np.ndarray) for leaf in leaves):
        # numpy arrays are handed to each step (kutils/_array_feed.py): no tf.data
        # pipeline or iterator to make and destroy per call. A shuffle is drawn as
        # one-row blocks, so shuffle=True is a uniform shuffle of the rows, as Keras's,
        # in one order for all workers (Keras would draw it on every worker apart).
        from kutils._array_feed import array_shards

        return array_shards(strategy, x, y, sample_weight, batch_size, shuffle)
    return None

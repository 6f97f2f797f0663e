"""Uneven global batches under a tf.distribute strategy: each row weighs as in one process.

When a step's rows do not divide by the number of replicas (15 rows on 2: 8 + 7, an
epoch's last short batch), Keras's per-replica loss gives the rows of the smaller part
more weight than in one process. :class:`RowWeightedLoss` (a mixin of
``StrategyDataParallel``) passes each replica's loss through :func:`weighed_by_rows`.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


class RowWeightedLoss:
    """Mixin for a ``keras.Model`` run by a strategy: each row weighs as in one process."""

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        """Keras's ``compute_loss``, each row weighing as in one process.

        Keras averages each replica's loss over the replica's own rows and divides it by
        the number of replicas, so when a global batch does not split evenly (15 rows on
        2 replicas: 8 + 7) the rows of the smaller part weigh more (1/14 instead of 1/15)
        in the gradient. A ``"sum"`` loss has the right gradient, but the loss metric
        weighs each replica's sum by its rows. ``weighed_by_rows`` corrects both.
        """
        model: Any = self
        parent: Any = super()  # keras.Model, next in the model class's MRO
        loss = parent.compute_loss(x, y, y_pred, sample_weight, training=training)
        kind = reduction_kind(model.loss)
        if kind == "sum" or (kind == "mean" and training):
            loss = weighed_by_rows(model.distribute_strategy, x, loss, kind)
        return loss


_PER_ROW_MEAN = ("sum_over_batch_size", "mean")


def reduction_kind(losses: Any) -> str | None:
    """``"mean"`` when every compiled loss averages over the rows (Keras's default),
    ``"sum"`` when every one sums them, else None (mixed, or ``"mean_with_sample_weight"``,
    which divides by each replica's own weights: left as Keras computes it)."""
    reductions = {
        getattr(loss, "reduction", _PER_ROW_MEAN[0]) for loss in keras.tree.flatten(losses)
    }
    if reductions and reductions <= set(_PER_ROW_MEAN):
        return "mean"
    return "sum" if reductions == {"sum"} else None


def weighed_by_rows(strategy: tf.distribute.Strategy, x: Any, loss: Any, kind: str) -> Any:
    """``loss`` with each row weighing as in one process, in its gradient and its value.

    With ``share = rows * replicas / global rows`` (1 for an even split): a mean loss
    has its gradient times ``share`` and its value unchanged (the loss metric weighs it
    by the rows); a sum loss keeps its gradient and has its value divided by ``share``,
    so the metric's weighting by rows gives the sum. The global rows of the step are
    summed over the replicas (a scalar all-reduce), so every input type is covered.
    """
    replicas = strategy.num_replicas_in_sync
    context = tf.distribute.get_replica_context()
    if replicas == 1 or context is None:
        return loss
    first = next(leaf for leaf in keras.tree.flatten(x) if leaf is not None)
    rows = tf.cast(tf.shape(first)[0], loss.dtype)
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, rows)
    share = tf.math.divide_no_nan(rows * replicas, total)
    if kind == "mean":
        gradient, value = loss * share, loss
    else:
        gradient, value = loss, tf.math.divide_no_nan(loss, share)
    return gradient + tf.stop_gradient(value - gradient)

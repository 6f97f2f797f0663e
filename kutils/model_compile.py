"""Keras 2's ``compile`` of a model with several outputs: one list of metrics for each.

Keras 2 took ``metrics=['accuracy']`` on a model with several outputs as "this metric on
every output" (``valid_accuracy``, ``label_accuracy``). Keras 3 wants one list per output
and fails at the first training step (``ValueError: tuple arity mismatch; expected: 2,
got: 1``): the semi-supervised GAN's discriminator, compiled with one loss per output and
``metrics=['accuracy']``. ``kutils migrate`` rewrites ``model.compile(...)`` calls that
pass ``metrics`` or ``weighted_metrics`` into ``compile_model(model, ...)``, which:

* gives a flat list of metrics to every output of a model with several, as Keras 2.3.1
  did (a metric object is copied for each output after the first, so that each output
  keeps its own state); lists per output and dicts by output name are Keras 3's own;
* takes the arguments in Keras 2's order (``optimizer, loss, metrics, loss_weights``;
  Keras 3's ``compile`` puts ``loss_weights`` before ``metrics``);
* calls Keras 3's ``compile`` with them; a model with one output, or not built yet,
  gets exactly Keras 3's ``compile``.

This module imports Keras only when the function is called.
"""

from __future__ import annotations

from typing import Any

__all__ = ["compile_model"]


def compile_model(
    model: Any,
    optimizer: Any,
    loss: Any = None,
    metrics: Any = None,
    loss_weights: Any = None,
    sample_weight_mode: Any = None,
    weighted_metrics: Any = None,
    target_tensors: Any = None,
    **kwargs: Any,
) -> None:
    """Configure a model for training, with Keras 2's metrics of several outputs.

    Args:
        model: a Keras model. Anything else with a ``compile`` method (a class of the
            user's own) has that method called with the same arguments.
        optimizer, loss, loss_weights: as for Keras's ``compile``.
        metrics: ``None``, a list of metrics (for a model with several outputs: given
            to each output, as Keras 2 did), a list of lists (one per output) or a dict
            by output name.
        sample_weight_mode: only ``None``: Keras 3 has no temporal sample weights.
        weighted_metrics: like ``metrics``, weighted by the sample weights.
        target_tensors: only ``None``: Keras 3 has no target tensors.
        **kwargs: Keras 3's other ``compile`` arguments (``run_eagerly``, ...).

    Raises:
        ValueError: ``sample_weight_mode`` or ``target_tensors`` is given.

    Example:
        >>> compile_model(discriminator, loss=["binary_crossentropy",  # doctest: +SKIP
        ...               "categorical_crossentropy"], optimizer="adam",
        ...               metrics=["accuracy"])
    """
    import keras

    keywords = {"optimizer": optimizer, "loss": loss, "loss_weights": loss_weights, **kwargs}
    if not isinstance(model, keras.Model):
        _own_compile(model, keywords, metrics, weighted_metrics, sample_weight_mode)
        return
    for name, value in (
        ("sample_weight_mode", sample_weight_mode),
        ("target_tensors", target_tensors),
    ):
        if value is not None:
            msg = (
                f"Keras 3's compile has no {name}: remove the argument (give temporal "
                "weights as one weight per sample, targets to fit). "
                f"Received: {name}={value!r}"
            )
            raise ValueError(msg)
    outputs = _output_count(model)
    model.compile(
        metrics=_per_output(metrics, outputs, keras),
        weighted_metrics=_per_output(weighted_metrics, outputs, keras),
        **keywords,
    )


def _own_compile(
    receiver: Any,
    keywords: dict[str, Any],
    metrics: Any,
    weighted_metrics: Any,
    sample_weight_mode: Any,
) -> None:
    """Anything but a Keras model: its own ``compile``, as the code called it."""
    method = getattr(receiver, "compile", None)
    if not callable(method):
        msg = (
            "compile_model takes a Keras model as its first argument (kutils migrate "
            "writes model.compile(..., metrics=m) as compile_model(model, ..., "
            f"metrics=m)). Received: {receiver!r}"
        )
        raise TypeError(msg)
    extra = {"weighted_metrics": weighted_metrics, "sample_weight_mode": sample_weight_mode}
    method(metrics=metrics, **keywords, **{k: v for k, v in extra.items() if v is not None})


def _output_count(model: Any) -> int:
    """How many outputs the model has; 1 when it is not built yet (nothing to spread)."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return 1
    return len(outputs) if isinstance(outputs, (list, tuple)) else 1


def _per_output(metrics: Any, outputs: int, keras: Any) -> Any:
    """A flat list of metrics as one list per output (Keras 2); anything else as it is."""
    if outputs < 2 or not isinstance(metrics, (list, tuple)) or not metrics:
        return metrics
    if any(isinstance(item, (list, tuple, dict)) for item in metrics):
        return metrics  # already one entry per output: Keras 3's own form
    return [list(metrics)] + [[_copy(item, keras) for item in metrics] for _ in range(outputs - 1)]


def _copy(metric: Any, keras: Any) -> Any:
    """A metric object of its own for another output; names and functions as they are."""
    if isinstance(metric, keras.metrics.Metric):
        return type(metric).from_config(metric.get_config())
    return metric

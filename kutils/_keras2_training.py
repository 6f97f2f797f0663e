"""A Keras 2 file's training configuration: optimizer, losses, metrics, loss weights.

Keras 2 wrote ``training_config`` (JSON: ``optimizer_config``, ``loss``, ``metrics``,
``loss_weights``...). This module compiles the Keras 3 model with the equivalent
optimizer, losses and metrics; ``_keras2_optimizer_state`` then restores the optimizer's
slots, so that training resumes where it stopped.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["compile_from_training_config", "optimizer_class_name", "translate_optimizer"]

# Keras 2 names of losses and metrics that Keras 3 spells differently (loss, metric).
_RENAMED = {
    "logcosh": ("log_cosh", "LogCoshError"),
    "kld": ("kl_divergence", "KLDivergence"),
    "kullback_leibler_divergence": ("kl_divergence", "KLDivergence"),
    "KLD": ("kl_divergence", "KLDivergence"),
    "cosine_proximity": ("cosine_similarity", "cosine_similarity"),
    "cosine": ("cosine_similarity", "cosine_similarity"),
}

# Each Keras 2 optimizer's arguments (besides learning_rate, decay, clipnorm, clipvalue)
# with the same meaning in Keras 3.
_OPTIMIZER_ARGUMENTS = {
    "SGD": ("momentum", "nesterov"),
    "Adam": ("beta_1", "beta_2", "epsilon", "amsgrad"),
    "RMSprop": ("rho", "epsilon", "momentum", "centered"),
    "Adagrad": ("epsilon", "initial_accumulator_value"),
    "Adadelta": ("rho", "epsilon"),
    "Adamax": ("beta_1", "beta_2", "epsilon"),
    "Nadam": ("beta_1", "beta_2", "epsilon"),
}
# Arguments of tf.keras 2.11+ optimizers that Keras 3's take with the same meaning.
_COMMON_ARGUMENTS = (
    "weight_decay",
    "global_clipnorm",
    "clipvalue",
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
)


def optimizer_class_name(serialized: dict[str, Any]) -> str:
    """The optimizer's class name; tf.keras 2.11+ writes ``Custom>Adam`` for Adam."""
    name = str(serialized["class_name"])
    if name.startswith("Custom>") and name[len("Custom>") :] in _OPTIMIZER_ARGUMENTS:
        return name[len("Custom>") :]
    return name


def translate_optimizer(
    serialized: dict[str, Any], custom_objects: dict[str, Any], keras_version: str | None = None
) -> Any:
    """The Keras 3 optimizer equivalent to a Keras 2 ``{'class_name', 'config'}`` one.

    ``keras_version`` is the file's: Keras 2.0 to 2.3 clipped by the global norm.
    """
    import keras

    class_name = optimizer_class_name(serialized)
    config = dict(serialized.get("config", {}))
    if class_name in custom_objects:
        return custom_objects[class_name].from_config(config)
    if class_name not in _OPTIMIZER_ARGUMENTS:
        msg = (
            f"The Keras 2 file was compiled with the optimizer {class_name!r}, which kutils "
            "cannot translate (a TensorFlow optimizer, or a custom one). Load it with "
            "compile=False and compile the model yourself, or pass the optimizer class in "
            f"custom_objects. Received: optimizer={class_name!r}"
        )
        raise ValueError(msg)
    learning_rate = _learning_rate(config)
    arguments = {
        key: config[key]
        for key in (*_OPTIMIZER_ARGUMENTS[class_name], *_COMMON_ARGUMENTS)
        if config.get(key) is not None
    }
    if config.get("clipnorm") is not None:
        # Keras 2.0 to 2.3 scaled all gradients together by their global norm: Keras 3's
        # global_clipnorm. tf.keras clipped each gradient on its own, as Keras 3's clipnorm.
        key = "global_clipnorm" if _clips_globally(keras_version) else "clipnorm"
        arguments[key] = config["clipnorm"]
    if class_name == "Adagrad":
        arguments.setdefault("initial_accumulator_value", 0.0)  # Keras 2 started from zero
    optimizer = getattr(keras.optimizers, class_name)(learning_rate=learning_rate, **arguments)
    if class_name == "Nadam" and config.get("schedule_decay", 0.004) != 0.004:
        msg = (
            "Keras 3's Nadam has no schedule_decay; the file's "
            f"schedule_decay={config['schedule_decay']} is not used."
        )
        warnings.warn(msg, stacklevel=4)
    return optimizer


def _clips_globally(keras_version: str | None) -> bool:
    if keras_version is None or "tf" in keras_version:
        return keras_version is None
    try:
        major, minor = (int(part) for part in keras_version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) < (2, 4)  # Keras 2.4 and later were tf.keras


def _single_output(metrics: Any) -> Any:
    if isinstance(metrics, list) and len(metrics) == 1 and isinstance(metrics[0], list):
        return metrics[0]
    return metrics


def _learning_rate(config: dict[str, Any]) -> Any:
    import keras

    learning_rate = config.get("learning_rate", config.get("lr", 0.01))
    if isinstance(learning_rate, dict):  # a tf.keras schedule
        return keras.optimizers.schedules.deserialize(learning_rate)
    decay = float(config.get("decay", 0.0) or 0.0)
    if decay > 0:
        # Keras 2 computed lr / (1 + decay * iterations) at each step.
        return keras.optimizers.schedules.InverseTimeDecay(
            learning_rate, decay_steps=1, decay_rate=decay
        )
    return learning_rate


def translate_loss(identifier: Any, custom_objects: dict[str, Any]) -> Any:
    """A Keras 2 loss (name, ``{'class_name', 'config'}``, or per-output dict/list)."""
    import keras

    if isinstance(identifier, dict) and "class_name" not in identifier:
        return {key: translate_loss(value, custom_objects) for key, value in identifier.items()}
    if isinstance(identifier, list):
        return [translate_loss(value, custom_objects) for value in identifier]
    if isinstance(identifier, str):
        if identifier in custom_objects:
            return custom_objects[identifier]
        return _RENAMED.get(identifier, (identifier,))[0]
    if isinstance(identifier, dict):
        return keras.losses.deserialize(identifier, custom_objects=custom_objects)
    return identifier


def translate_metrics(identifier: Any, custom_objects: dict[str, Any]) -> Any:
    """Keras 2 metrics (names, serialized metric objects, per-output dicts or lists)."""
    import keras

    if identifier is None:
        return None
    if isinstance(identifier, dict) and "class_name" not in identifier:
        return {key: translate_metrics(value, custom_objects) for key, value in identifier.items()}
    if isinstance(identifier, list):
        return [translate_metrics(value, custom_objects) for value in identifier]
    if isinstance(identifier, str):
        if identifier in custom_objects:
            return custom_objects[identifier]
        return _RENAMED.get(identifier, (identifier, identifier))[1]
    if isinstance(identifier, dict) and identifier["class_name"] == "MeanMetricWrapper":
        # tf.keras wrapped metric functions given by name: the function's name
        return translate_metrics(identifier["config"]["fn"], custom_objects)
    if isinstance(identifier, dict):
        return keras.metrics.deserialize(identifier, custom_objects=custom_objects)
    return identifier


def compile_from_training_config(
    model: Any,
    training_config: dict[str, Any],
    custom_objects: dict[str, Any],
    keras_version: str | None = None,
) -> None:
    """Compile ``model`` as the Keras 2 file's ``training_config`` says."""
    metrics = translate_metrics(training_config.get("metrics"), custom_objects)
    weighted = translate_metrics(training_config.get("weighted_metrics"), custom_objects)
    if len(model.outputs) == 1:
        # tf.keras wrote one list of metrics per output, also for a single output.
        metrics, weighted = _single_output(metrics), _single_output(weighted)
    if training_config.get("sample_weight_mode") not in (None, "None"):
        msg = (
            "The Keras 2 file was compiled with sample_weight_mode="
            f"{training_config['sample_weight_mode']!r}; Keras 3 has no such argument and "
            "takes 2D sample weights as they come."
        )
        warnings.warn(msg, stacklevel=4)
    model.compile(
        optimizer=translate_optimizer(
            training_config["optimizer_config"], custom_objects, keras_version
        ),
        loss=translate_loss(training_config["loss"], custom_objects),
        metrics=metrics or None,
        weighted_metrics=weighted or None,
        loss_weights=training_config.get("loss_weights"),
    )

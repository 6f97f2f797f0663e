"""A Keras 2 file's training configuration (optimizer, losses, metrics) and optimizer state.

Keras 2 wrote ``training_config`` (JSON: ``optimizer_config``, ``loss``, ``metrics``,
``loss_weights``...) and the optimizer's variables (``optimizer_weights``: the iteration
count, then each slot for every trainable weight). This module compiles the Keras 3 model
with the equivalent optimizer, losses and metrics and puts the slots where Keras 3's
optimizer keeps the same quantities, so that training resumes where it stopped.
"""

from __future__ import annotations

import warnings
from typing import Any

from kutils import _keras_compat

__all__ = ["compile_from_training_config", "restore_optimizer_state", "translate_optimizer"]

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
    "RMSprop": ("rho", "epsilon"),
    "Adagrad": ("epsilon",),
    "Adadelta": ("rho", "epsilon"),
    "Adamax": ("beta_1", "beta_2", "epsilon"),
    "Nadam": ("beta_1", "beta_2", "epsilon"),
}

# Keras 2's optimizer_weights after the iteration count: (Keras 2 slot count per weight
# group, the Keras 3 attribute holding the same slots), in Keras 2's order. Nadam's
# m_schedule (one scalar) comes first and is Keras 3's _u_product.
_SLOTS = {
    "SGD": ("momentums",),
    "Adam": ("_momentums", "_velocities", "_velocity_hats"),
    "RMSprop": ("_velocities",),
    "Adagrad": ("_accumulators",),
    "Adadelta": ("_accumulated_grads", "_accumulated_delta_vars"),
    "Adamax": ("_m", "_u"),
    "Nadam": ("_momentums", "_velocities"),
}


def translate_optimizer(serialized: dict[str, Any], custom_objects: dict[str, Any]) -> Any:
    """The Keras 3 optimizer equivalent to a Keras 2 ``{'class_name', 'config'}`` one."""
    import keras

    class_name = serialized["class_name"]
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
    learning_rate = config.get("learning_rate", config.get("lr", 0.01))
    decay = float(config.get("decay", 0.0) or 0.0)
    if decay > 0:
        # Keras 2 computed lr / (1 + decay * iterations) at each step.
        learning_rate = keras.optimizers.schedules.InverseTimeDecay(
            learning_rate, decay_steps=1, decay_rate=decay
        )
    arguments = {
        key: config[key] for key in _OPTIMIZER_ARGUMENTS[class_name] if config.get(key) is not None
    }
    if config.get("clipnorm") is not None:
        # Keras 2 scaled all gradients together by their global norm; Keras 3's clipnorm
        # clips each gradient on its own, its global_clipnorm is Keras 2's clipnorm.
        arguments["global_clipnorm"] = config["clipnorm"]
    if config.get("clipvalue") is not None:
        arguments["clipvalue"] = config["clipvalue"]
    if class_name == "Adagrad":
        arguments["initial_accumulator_value"] = 0.0  # Keras 2 started from zero
    optimizer = getattr(keras.optimizers, class_name)(learning_rate=learning_rate, **arguments)
    if class_name == "Nadam" and config.get("schedule_decay", 0.004) != 0.004:
        msg = (
            "Keras 3's Nadam has no schedule_decay; the file's "
            f"schedule_decay={config['schedule_decay']} is not used."
        )
        warnings.warn(msg, stacklevel=4)
    return optimizer


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
    if isinstance(identifier, dict):
        return keras.metrics.deserialize(identifier, custom_objects=custom_objects)
    return identifier


def compile_from_training_config(
    model: Any, training_config: dict[str, Any], custom_objects: dict[str, Any]
) -> None:
    """Compile ``model`` as the Keras 2 file's ``training_config`` says."""
    metrics = translate_metrics(training_config.get("metrics"), custom_objects)
    weighted = translate_metrics(training_config.get("weighted_metrics"), custom_objects)
    if training_config.get("sample_weight_mode") not in (None, "None"):
        msg = (
            "The Keras 2 file was compiled with sample_weight_mode="
            f"{training_config['sample_weight_mode']!r}; Keras 3 has no such argument and "
            "takes 2D sample weights as they come."
        )
        warnings.warn(msg, stacklevel=4)
    model.compile(
        optimizer=translate_optimizer(training_config["optimizer_config"], custom_objects),
        loss=translate_loss(training_config["loss"], custom_objects),
        metrics=metrics or None,
        weighted_metrics=weighted or None,
        loss_weights=training_config.get("loss_weights"),
    )


def restore_optimizer_state(model: Any, class_name: str, values: list[Any]) -> bool:
    """Put Keras 2's optimizer weights into ``model.optimizer``; False (warned) if they
    do not fit."""
    optimizer = model.optimizer
    params = list(model.trainable_weights)
    optimizer.build(params)  # slot i of every group belongs to params[i], as in Keras 2
    groups = _slot_groups(class_name, optimizer)
    head = 2 if class_name == "Nadam" else 1
    stored_groups, rest = divmod(len(values) - head, len(params)) if params else (0, 1)
    problem = None
    if class_name not in _SLOTS:
        problem = f"kutils does not map the state of {class_name}"
    elif rest or stored_groups < len(groups):
        problem = (
            f"the file has {len(values)} optimizer weights for {len(params)} trainable "
            f"weights, which does not fit {class_name}"
        )
    if problem is not None:
        msg = (
            f"The optimizer state of the Keras 2 file was not restored ({problem}); "
            "training starts with a fresh optimizer state."
        )
        warnings.warn(msg, stacklevel=4)
        return False
    optimizer.iterations.assign(int(values[0]))
    if class_name == "Nadam":
        _keras_compat.optimizer_slot_variables(optimizer, "_u_product").assign(values[1])
    for index, slots in enumerate(groups):
        stored = values[head + index * len(params) : head + (index + 1) * len(params)]
        for variable, value in zip(slots, stored, strict=True):
            variable.assign(value.reshape(variable.shape))
    return True


def _slot_groups(class_name: str, optimizer: Any) -> list[list[Any]]:
    groups = []
    for attribute in _SLOTS.get(class_name, ()):
        slots = _keras_compat.optimizer_slot_variables(optimizer, attribute)
        if slots:  # SGD without momentum and Adam without amsgrad keep none
            groups.append(list(slots))
    return groups

"""``serialize_keras_object`` / ``deserialize_keras_object`` with Keras 2 signatures.

Keras 3's ``keras.saving.serialize_keras_object`` writes a new format (``module``,
``registered_name``, ...) and its ``deserialize_keras_object`` takes
``(config, custom_objects=None, safe_mode=True)``. Keras 2 code calls them as
``deserialize_keras_object(identifier, module_objects=..., custom_objects=...,
printable_module_name=...)``, typically in a ``get``/``deserialize`` function of its own.
These keep the Keras 2 signature, formats and look-ups: the dict path is Keras 2.3.1's,
step for step (Keras 3's legacy deserializer turns config strings that name custom
functions into the functions before ``from_config`` sees them, which Keras 2 did not).
"""

from __future__ import annotations

from typing import Any

__all__ = ["IdentifierTypeError", "deserialize_keras_object", "serialize_keras_object"]


class IdentifierTypeError(TypeError, ValueError):
    """An identifier that is neither ``None``, a name nor a config dict. Keras 2.3.1
    raised ``TypeError`` there (building its message failed) and earlier kutils
    ``ValueError``: this is both."""


def serialize_keras_object(instance: Any) -> Any:
    """Serialize a Keras object to its Keras 2 form.

    Args:
        instance: an object with ``get_config`` (a layer, regularizer, ...), a function
            or class (serialized by name), or ``None``.

    Returns:
        ``{'class_name': <type name>, 'config': instance.get_config()}``, the
        ``__name__`` of a function or class, or ``None`` for ``None``.

    Raises:
        ValueError: the object has neither ``get_config`` nor ``__name__`` (the error
            carries the object, as in Keras 2).

    Example:
        >>> serialize_keras_object(keras.regularizers.L2(0.01))  # doctest: +SKIP
        {'class_name': 'L2', 'config': {'l2': 0.01}}
    """
    if instance is None:
        return None
    if hasattr(instance, "get_config"):
        return {"class_name": type(instance).__name__, "config": instance.get_config()}
    if hasattr(instance, "__name__"):
        return instance.__name__
    raise ValueError("Cannot serialize", instance)


def deserialize_keras_object(
    identifier: Any,
    module_objects: dict[str, Any] | None = None,
    custom_objects: dict[str, Any] | None = None,
    printable_module_name: str = "object",
) -> Any:
    """Turn the serialized form of a Keras object back into the object (Keras 2 API).

    Names are looked up in ``custom_objects``, then in the custom objects registered
    globally or by an enclosing ``CustomObjectScope``, then in ``module_objects``.

    Args:
        identifier: ``None``, a name, or a ``{'class_name': ..., 'config': ...}`` dict.
        module_objects: the built-in objects to look names up in (e.g. ``globals()``).
        custom_objects: user objects, looked up first.
        printable_module_name: how the error messages call the object.

    Returns:
        ``None`` for ``None``; for a name, the object found (a class is returned as is,
        not instantiated, as in Keras 2); for a dict, the instance built with the
        class's ``from_config`` (or ``cls(**config)`` when it has none). As in Keras 2,
        ``from_config`` receives the config as stored (strings stay strings) and runs
        inside a ``CustomObjectScope(custom_objects)``, or gets
        ``custom_objects=`` (the global ones and the call's) when it takes that argument.

    Raises:
        ValueError: the name is unknown, or the dict lacks ``class_name`` or ``config``.
        IdentifierTypeError: the identifier is of another type (a ``TypeError``, as in
            Keras 2, and a ``ValueError``).

    Example:
        >>> deserialize_keras_object("my_fn", custom_objects={"my_fn": my_fn})  # doctest: +SKIP
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return _from_config_dict(identifier, module_objects, custom_objects, printable_module_name)
    if isinstance(identifier, str):
        from kutils.custom_objects import get_custom_objects

        if custom_objects and identifier in custom_objects:
            return custom_objects[identifier]
        registry = get_custom_objects()
        if identifier in registry:
            return registry[identifier]
        if module_objects is not None and identifier in module_objects:
            return module_objects[identifier]
        msg = (
            f"Unknown {printable_module_name}: {identifier}. Pass it in custom_objects, "
            "register it with get_custom_objects() or use a CustomObjectScope."
        )
        raise ValueError(msg)
    msg = (
        f"Could not interpret serialized {printable_module_name}: expected None, a name "
        f"or a dict with 'class_name' and 'config'. Received: identifier={identifier!r}"
    )
    raise IdentifierTypeError(msg)


def _from_config_dict(
    config: dict[str, Any],
    module_objects: dict[str, Any] | None,
    custom_objects: dict[str, Any] | None,
    printable_module_name: str,
) -> Any:
    """Keras 2.3.1's dict path: find the class, then ``from_config`` in a scope."""
    if "class_name" not in config or "config" not in config:
        msg = (
            f"Improper config format: {config}. A serialized object is a dict "
            "with the keys 'class_name' and 'config'."
        )
        raise ValueError(msg)
    from kutils._generic_functions import has_arg
    from kutils.custom_objects import CustomObjectScope, get_custom_objects

    registry = get_custom_objects()  # also installs kutils' scope-aware look-ups
    class_name = config["class_name"]
    if custom_objects and class_name in custom_objects:
        cls = custom_objects[class_name]
    elif class_name in registry:
        cls = registry[class_name]
    else:
        cls = (module_objects or {}).get(class_name)
        if cls is None:
            msg = (
                f"Unknown {printable_module_name}: {class_name}. Pass it in custom_objects, "
                "register it with get_custom_objects() or use a CustomObjectScope."
            )
            raise ValueError(msg)
    custom_objects = custom_objects or {}
    if hasattr(cls, "from_config"):
        if has_arg(cls.from_config, "custom_objects"):
            merged = {**registry, **custom_objects}
            return cls.from_config(config["config"], custom_objects=merged)
        with CustomObjectScope(custom_objects):
            return cls.from_config(config["config"])
    # By convention, a class without from_config (or a function returning a class)
    # takes the config as keyword arguments.
    with CustomObjectScope(custom_objects):
        return cls(**config["config"])

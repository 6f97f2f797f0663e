"""Custom-object scoping with Keras 2 semantics on Keras 3's registry.

In Keras 2 a ``CustomObjectScope`` wrote its objects into the one global registry that
``get_custom_objects()`` returns, and put the registry back as it was on exit. Keras 3
keeps scoped objects in a separate thread-local dict, accepts only one dict, does not
merge nested scopes and does not let string identifiers such as
``activation='my_activation'`` find custom objects at all. kutils restores the Keras 2
behaviour on top of Keras 3's own global registry, so Keras 3's loaders
(``keras.models.load_model`` for ``.keras`` and ``.h5``, ``keras.layers.deserialize``)
see the objects too.

Keras 3's ``get(identifier)`` functions (``keras.activations.get`` and the others of
``kutils._keras_compat.IDENTIFIER_MODULES``) look only at their own built-in tables, so
``Dense(4, activation='my_activation')`` fails even inside a custom-object scope. The
first use of a function here makes them consult the custom-object registry first, as in
Keras 2: the rows ``IDENTIFIER_LOOKUPS`` of ``kutils/_keras_patches.py``.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from kutils import _keras_patches

__all__ = ["CustomObjectScope", "custom_object_scope", "get_custom_objects"]


def get_custom_objects() -> dict[str, Any]:
    """Return the live global dict of custom objects.

    This is Keras 3's own registry (``keras.saving.get_custom_objects()``), so an entry
    added here is seen by every Keras loader, and ``get_custom_objects()['X'] = X``
    registers ``X`` as in Keras 2. The same dict object is returned every time.

    Returns:
        The global ``dict`` mapping names to classes and functions.

    Example:
        >>> get_custom_objects()["my_activation"] = my_activation  # doctest: +SKIP
        >>> Dense(4, activation="my_activation")  # doctest: +SKIP
    """
    _keras_patches.install_identifier_lookups()
    import keras

    registry: dict[str, Any] = keras.saving.get_custom_objects()
    return registry


class CustomObjectScope:
    """Expose custom objects to Keras deserialization inside a ``with`` block.

    Code inside the block sees the given objects in ``get_custom_objects()`` and through
    every name look-up Keras does: ``keras.models.load_model`` (``.keras`` and ``.h5``),
    ``keras.layers.deserialize`` and string identifiers such as
    ``Dense(4, kernel_regularizer='MyRegularizer')``. On exit, also when the block
    raises, the scope takes back what it added and nothing else: each name it set gets
    back the value it hid on entry (or loses its entry if it had none), unless the name
    now holds another object, put there since by other code, which stays. If a scope
    entered later set the same name and is still open, that scope's object stays and
    the hidden value is restored when that scope closes. Registrations the scope did
    not make (``keras.saving.register_keras_serializable`` in a module imported inside
    the block, ``get_custom_objects()[name] = obj``) stay.

    Args:
        *args: any number of dicts mapping names to classes or functions. Later dicts
            override earlier ones, and a nested scope adds to the one around it.

    Raises:
        TypeError: on entry, when an argument is not a dict (mapping).

    Threads:
        As in Keras 2, the registry is process-global: while a scope is open, every
        thread sees its objects, and scopes opened at the same time in several threads
        see each other's objects. Unlike Keras 2, scopes may close in any order and in
        any thread: one scope's exit never removes another open scope's objects, and
        once every scope is closed none of their objects is left. One scope object may
        be entered several times (nested, or in several threads at once). Keras 3's
        ``keras.saving.CustomObjectScope`` is thread-local, if that is what you need.

    Example:
        >>> with CustomObjectScope({"MyLayer": MyLayer}):  # doctest: +SKIP
        ...     model = keras.models.load_model("model.h5")
    """

    def __init__(self, *args: dict[str, Any]) -> None:
        self.custom_objects = args
        # The entries this scope object has open, per thread (a scope may be re-entered).
        self._entries: dict[int, list[_Entry]] = {}

    def __enter__(self) -> CustomObjectScope:
        for position, objects in enumerate(self.custom_objects):
            if not hasattr(objects, "keys"):
                msg = (
                    "CustomObjectScope takes dicts mapping names to custom objects. "
                    f"Received: argument {position} of type {type(objects).__name__}"
                )
                raise TypeError(msg)
        merged: dict[str, Any] = {}
        for objects in self.custom_objects:
            merged.update(objects)
        registry = get_custom_objects()
        entry = _Entry(merged)
        with _lock:
            for name, value in merged.items():
                shadow = _Shadow(entry, value, registry.get(name, _MISSING))
                _shadows.setdefault(name, []).append(shadow)
                registry[name] = value
            self._entries.setdefault(threading.get_ident(), []).append(entry)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        registry = get_custom_objects()
        with _lock:
            entries = self._entries.get(threading.get_ident())
            if not entries:
                return  # exited more often than entered in this thread: nothing to undo
            entry = entries.pop()
            if not entries:
                del self._entries[threading.get_ident()]
            for name in entry.objects:
                _take_back(registry, name, entry)


class _Entry:
    """One entry into a scope: the objects it set."""

    def __init__(self, objects: dict[str, Any]) -> None:
        self.objects = objects


class _Shadow:
    """An open entry's ``name = value``, and the value it hid (``_MISSING``: none)."""

    def __init__(self, entry: _Entry, value: Any, hidden: Any) -> None:
        self.entry = entry
        self.value = value
        self.hidden = hidden


_MISSING = object()
_lock = threading.Lock()
# For each name set by open entries, their shadows in the order they were entered.
# Guarded by _lock.
_shadows: dict[str, list[_Shadow]] = {}


def _take_back(registry: dict[str, Any], name: str, entry: _Entry) -> None:
    """Undo ``entry``'s setting of ``name`` as it closes (call with _lock held).

    Objects are compared by identity. If a later open entry set the name, that entry
    inherits what this one hid (unless something else was registered between the two,
    which stays). Otherwise the registry gets back what this entry hid, unless the
    name was given another object since (kept) rather than this entry's or deleted.
    """
    stack = _shadows[name]
    index = next(i for i, shadow in enumerate(stack) if shadow.entry is entry)
    mine = stack.pop(index)
    if index < len(stack):
        above = stack[index]
        if above.hidden is mine.value:
            above.hidden = mine.hidden
    else:
        current = registry.get(name, _MISSING)
        if current is mine.value or current is _MISSING:
            if mine.hidden is _MISSING:
                registry.pop(name, None)
            else:
                registry[name] = mine.hidden
    if not stack:
        del _shadows[name]


def custom_object_scope(*args: dict[str, Any]) -> CustomObjectScope:
    """Return a ``CustomObjectScope`` over ``args``; the Keras 2 functional spelling.

    Args:
        *args: dicts mapping names to custom classes or functions.

    Returns:
        A ``CustomObjectScope`` to use in a ``with`` statement.

    Example:
        >>> with custom_object_scope({"MyObject": MyObject}):  # doctest: +SKIP
        ...     layer = Dense(4, kernel_regularizer="MyObject")
    """
    return CustomObjectScope(*args)

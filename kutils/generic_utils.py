"""Keras 2's ``keras.utils.generic_utils``: custom objects, (de)serialization, ``Progbar``.

A Keras 2 line ``from keras.utils.generic_utils import X`` becomes ``from kutils.generic_utils import X``.
Each name is loaded on first use from the kutils module that defines it (the very object
``kutils.X`` is, where the top level exports ``X``): importing this module imports no
TensorFlow or Keras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kutils import _legacy

_EXPORTS: dict[str, str] = {
    "CustomObjectScope": "kutils.custom_objects",
    "Progbar": "kutils.progbar",
    "custom_object_scope": "kutils.custom_objects",
    "deserialize_keras_object": "kutils.serialization",
    "func_dump": "kutils._generic",
    "func_load": "kutils._generic",
    "get_custom_objects": "kutils.custom_objects",
    "has_arg": "kutils._generic",
    "serialize_keras_object": "kutils.serialization",
    "to_list": "kutils._generic",
    "unpack_singleton": "kutils._generic",
}

__all__ = [
    "CustomObjectScope",
    "Progbar",
    "custom_object_scope",
    "deserialize_keras_object",
    "func_dump",
    "func_load",
    "get_custom_objects",
    "has_arg",
    "serialize_keras_object",
    "to_list",
    "unpack_singleton",
]

if TYPE_CHECKING:
    from kutils._generic import func_dump, func_load, has_arg, to_list, unpack_singleton
    from kutils.custom_objects import CustomObjectScope, custom_object_scope, get_custom_objects
    from kutils.progbar import Progbar
    from kutils.serialization import deserialize_keras_object, serialize_keras_object


def __getattr__(name: str) -> Any:
    return _legacy.resolve(__name__, _EXPORTS, name, globals())


def __dir__() -> list[str]:
    return _legacy.names(globals(), __all__)

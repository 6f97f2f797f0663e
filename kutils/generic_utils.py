"""Keras 2's ``keras.utils.generic_utils``: custom objects, (de)serialization, ``Progbar``.

A Keras 2 line ``from keras.utils.generic_utils import X`` becomes ``from kutils.generic_utils import X``.
Its names and where each lives: the table of ``kutils/_legacy.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kutils import _legacy

if TYPE_CHECKING:
    from kutils._generic_functions import func_dump as func_dump
    from kutils._generic_functions import func_load as func_load
    from kutils._generic_functions import has_arg as has_arg
    from kutils._generic_functions import to_list as to_list
    from kutils._generic_functions import unpack_singleton as unpack_singleton
    from kutils.custom_objects import CustomObjectScope as CustomObjectScope
    from kutils.custom_objects import custom_object_scope as custom_object_scope
    from kutils.custom_objects import get_custom_objects as get_custom_objects
    from kutils.progbar import Progbar as Progbar
    from kutils.serialization import deserialize_keras_object as deserialize_keras_object
    from kutils.serialization import serialize_keras_object as serialize_keras_object

_legacy.shim(__name__, globals())

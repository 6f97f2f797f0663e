"""Keras 2's ``keras.preprocessing`` classes and functions, as Keras 3 still ships them.

Keras 3 keeps Keras 2's ``ImageDataGenerator``, ``Tokenizer``, ``TimeseriesGenerator``
and their helpers in its own legacy package but no longer exports most of them from
``keras.preprocessing``. This module hands out Keras's own objects (not a copy), one
namespace for the three Keras 2 modules ``keras.preprocessing.image``, ``.text`` and
``.sequence`` (their names do not collide)::

    from kutils.preprocessing import ImageDataGenerator, Tokenizer, pad_sequences

``kutils migrate`` points Keras 2 imports of these names here. ``ImageDataGenerator``'s
random transformations need SciPy, as in Keras 2 (``pip install scipy``). Differences
from Keras 2.3.1 are Keras 3's own and listed in docs/compat.md (the centre of the
rotation, shear and zoom transforms).

Importing this module imports no Keras: a name is looked up on first use.
"""

from __future__ import annotations

from typing import Any

# Keras 2.3.1's public names of keras.preprocessing.image, .text and .sequence.
NAMES: dict[str, tuple[str, ...]] = {
    "image": (
        "DataFrameIterator",
        "DirectoryIterator",
        "ImageDataGenerator",
        "Iterator",
        "NumpyArrayIterator",
        "apply_affine_transform",
        "apply_brightness_shift",
        "apply_channel_shift",
        "array_to_img",
        "img_to_array",
        "load_img",
        "random_brightness",
        "random_channel_shift",
        "random_rotation",
        "random_shear",
        "random_shift",
        "random_zoom",
        "save_img",
    ),
    "text": (
        "Tokenizer",
        "hashing_trick",
        "one_hot",
        "text_to_word_sequence",
        "tokenizer_from_json",
    ),
    "sequence": (
        "TimeseriesGenerator",
        "make_sampling_table",
        "pad_sequences",
        "skipgrams",
    ),
}

_KIND = {name: kind for kind, names in NAMES.items() for name in names}

__all__ = sorted(_KIND)


def __getattr__(name: str) -> Any:
    kind = _KIND.get(name)
    if kind is None:
        msg = (
            f"module 'kutils.preprocessing' has no attribute {name!r}: it offers Keras "
            f"2.3.1's keras.preprocessing names ({', '.join(__all__)})."
        )
        raise AttributeError(msg)
    from kutils._keras_compat import legacy_preprocessing_attribute

    value = legacy_preprocessing_attribute(kind, name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

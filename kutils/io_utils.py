"""Keras 2's ``keras.utils.io_utils``: ``HDF5Matrix``, the overwrite prompt, HDF5 file images.

A Keras 2 line ``from keras.utils.io_utils import X`` becomes ``from kutils.io_utils import X``.
``HDF5Matrix`` is loaded on first use (it is the object ``kutils.HDF5Matrix`` is), so
importing this module imports no TensorFlow, Keras or h5py. Keras 2's ``H5Dict`` (alias
``h5dict``) was the HDF5 glue of Keras 2's own model saving; Keras 3 saves models its own
way, and kutils does not offer it (see docs/legacy_modules.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kutils import _legacy

if TYPE_CHECKING:
    from kutils._io_functions import ask_to_proceed_with_overwrite as ask_to_proceed_with_overwrite
    from kutils._io_functions import load_from_binary_h5py as load_from_binary_h5py
    from kutils._io_functions import save_to_binary_h5py as save_to_binary_h5py
    from kutils.hdf5_matrix import HDF5Matrix as HDF5Matrix

_legacy.shim(__name__, globals())

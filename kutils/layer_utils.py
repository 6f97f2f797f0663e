"""Keras 2's ``keras.utils.layer_utils``: summaries and layer-graph helpers.

A Keras 2 line ``from keras.utils.layer_utils import X`` becomes ``from kutils.layer_utils import X``.
Its names and where each lives: the table of ``kutils/_legacy.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kutils import _legacy

if TYPE_CHECKING:
    from kutils._layer_functions import convert_all_kernels_in_model as convert_all_kernels_in_model
    from kutils._layer_functions import count_params as count_params
    from kutils._layer_functions import get_source_inputs as get_source_inputs
    from kutils.summary import print_summary as print_summary

_legacy.shim(__name__, globals())

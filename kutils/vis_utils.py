"""Keras 2's ``keras.utils.vis_utils``: model graphs with pydot and Graphviz.

A Keras 2 line ``from keras.utils.vis_utils import X`` becomes ``from kutils.vis_utils import X``.
Its names and where each lives: the table of ``kutils/_legacy.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kutils import _legacy

if TYPE_CHECKING:
    from kutils.plotting import model_to_dot as model_to_dot
    from kutils.plotting import plot_model as plot_model

_legacy.shim(__name__, globals())

"""The machinery behind the Keras 2 module paths (``kutils.np_utils`` and the others).

Each legacy module lists its public names and where each lives. A name is imported on
first use, from the module that defines it, so ``import kutils.np_utils`` is as cheap as
``import kutils`` and every legacy path yields the very object the top level exports.
"""

from __future__ import annotations

import importlib
from typing import Any


def resolve(module: str, table: dict[str, str], name: str, namespace: dict[str, Any]) -> Any:
    """Look ``name`` of legacy ``module`` up in ``table`` (name -> defining module)."""
    source = table.get(name)
    if source is None:
        msg = f"module {module!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(source), name)
    namespace[name] = value  # later look-ups skip __getattr__
    return value


def names(namespace: dict[str, Any], public: list[str]) -> list[str]:
    """``dir()`` of a legacy module: what is loaded plus every public name."""
    return sorted(set(namespace) | set(public))

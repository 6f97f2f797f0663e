"""Keras 2.3.1 defaults that Keras 3 changed, written out by ``kutils migrate``.

``GRU(32)`` runs on Keras 3 without an error but builds another cell (``reset_after=True``);
``Adadelta()`` trains a thousand times slower (``learning_rate=0.001`` instead of 1.0).
The ``default`` rules of ``kutils._migrate_rules`` name each such argument; this module
writes Keras 2's value out where a call leaves the argument out, and rewrites an optimizer
named by a string in ``compile`` (``optimizer='adadelta'``) to its class with those values.

Only standalone ``keras`` code is rewritten: ``tf.keras`` 2.x already had Keras 3's
defaults, so a call through ``tensorflow.keras`` keeps its meaning as it is.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from kutils import _migrate_rewrites as rewrites
from kutils import _migrate_rules as rules

if TYPE_CHECKING:
    from kutils._migrate_source import Source

_DEFAULTS: dict[str, list[rules.Rule]] = {}
for _rule in rules.RULES:
    if _rule.kind == "default":
        _DEFAULTS.setdefault(_rule.keras2, []).append(_rule)
_OPTIMIZER_NAMES = rules.by_kind("optimizer-name")
# The class names the engine looks for on a line (``GRU``, ``Adadelta``...).
CLASS_NAMES = frozenset(path.rsplit(".", 1)[-1] for path in _DEFAULTS)
_TF_KERAS = re.compile(r"\btf\s*\.\s*keras\b")
_PACKAGES = ("keras.layers.", "keras.optimizers.")


def bound_names(source: Source) -> set[str]:
    """The names the file binds to those classes (``from keras.layers import GRU as G``)."""
    from kutils._migrate_names import normalize

    return {
        name for name, path in source.bindings.items() if _class_path(normalize(path)) in _DEFAULTS
    }


def class_call(source: Source, call: ast.Call, path: str) -> None:
    """``GRU(32)`` -> ``GRU(32, reset_after=False)``: each Keras 2 default written out."""
    found = _DEFAULTS.get(_class_path(path))
    if not found or not _standalone(source, call.func):
        return
    if _unpacked(call):
        for rule in found:
            if not _given(call, rule):
                source.report(
                    call,
                    f"arguments unpacked here (* or **): cannot tell whether they give it; "
                    f"{rule.message}",
                )
        return
    written = []
    for rule in found:
        if _given(call, rule):
            continue
        if rule.keras3 is None or not rule.within:
            source.report(call, rule.message)
        else:
            written.append(f"{rule.within[0]}={rule.keras3}")
    if written:
        rewrites._append_keyword(source, call, ", ".join(written))


def _class_path(path: str) -> str:
    """``keras.layers.recurrent.GRU`` -> ``keras.layers.GRU`` (Keras 2's submodules)."""
    for package in _PACKAGES:
        if path.startswith(package):
            return package + path.rsplit(".", 1)[-1]
    return path


def _standalone(source: Source, func: ast.AST) -> bool:
    """Whether ``func`` is reached from a name bound to standalone ``keras``."""
    while isinstance(func, ast.Attribute):
        func = func.value
    if not isinstance(func, ast.Name):
        return False
    bound = source.bindings.get(func.id, "")
    return bound == "keras" or bound.startswith("keras.")


def _unpacked(call: ast.Call) -> bool:
    return any(isinstance(a, ast.Starred) for a in call.args) or any(
        k.arg is None for k in call.keywords
    )


def _given(call: ast.Call, rule: rules.Rule) -> bool:
    """Whether the call passes the argument ``rule`` is about (by keyword or position)."""
    if not rule.within:
        return False
    keyword, position, aliases = rule.within[0], rule.within[1:2], rule.within[2:]
    passed = {k.arg for k in call.keywords}
    if keyword in passed or any(alias in passed for alias in aliases):
        return True
    return bool(position and position[0]) and len(call.args) > int(position[0])


def compile_call(source: Source, call: ast.Call) -> None:
    """``compile(optimizer='adadelta')`` -> ``compile(optimizer=keras.optimizers.Adadelta(
    learning_rate=1.0))``, for the optimizers whose defaults Keras 3 changed."""
    by_keyword = {k.arg: k.value for k in call.keywords}
    value = by_keyword.get("optimizer")
    if value is None and call.args:
        value = call.args[0]
    if not isinstance(value, ast.Constant) or not isinstance(value.value, str):
        return
    rule = _OPTIMIZER_NAMES.get(value.value.lower())
    if rule is None or uses_tf_keras(source):
        return
    assert rule.keras3 is not None
    positional = "optimizer" not in by_keyword
    second = call.args[1] if len(call.args) > 1 else None
    third = call.args[2] if len(call.args) > 2 else None
    model_like = (
        "loss" in by_keyword
        or "metrics" in by_keyword
        or (isinstance(second, ast.Constant) and isinstance(second.value, str))
        or isinstance(third, (ast.List, ast.Tuple, ast.Dict))  # compile(opt, loss, ['acc'])
    )
    if (positional and not model_like) or not _has_keras(source):
        source.report(
            value, f"cannot tell whether this is a Keras 2 model's compile: {rule.message}"
        )
        return
    keras = rewrites.keras_name(source, value)
    if keras is None:
        return
    arguments = []
    for default in _DEFAULTS.get(rule.keras3, []):
        if default.keras3 is None or not default.within:
            source.report(value, default.message)
        else:
            arguments.append(f"{default.within[0]}={default.keras3}")
    start, end = source.span(value)
    target = keras + rule.keras3[len("keras") :]
    source.edits.append((start, end, f"{target}({', '.join(arguments)})"))


def uses_tf_keras(source: Source) -> bool:
    """Whether the file uses ``tf.keras`` (whose 2.x defaults were Keras 3's)."""
    if any(
        path.startswith("tensorflow.") and ".keras" in path for path in source.bindings.values()
    ):
        return True
    return _TF_KERAS.search(source.text) is not None


def _has_keras(source: Source) -> bool:
    return any(p == "keras" or p.startswith("keras.") for p in source.bindings.values())

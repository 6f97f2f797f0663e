"""``iterator.next()`` -> ``next(iterator)`` for Keras 2's image iterators.

Keras 2's ``ImageDataGenerator.flow``, ``flow_from_directory`` and ``flow_from_dataframe``
return iterators with a ``next()`` method (Python 2's spelling, kept by Keras 2 and
called by many scripts of its era). Keras 3 still ships these classes (handed out by
``kutils.preprocessing``) but only as Python 3 iterators: ``next(iterator)`` runs the
same code Keras 2's ``next()`` ran. A call is rewritten only when the receiver is a name
that its scope binds nowhere but to such a flow (of an ``ImageDataGenerator(...)`` made
there or directly); any other ``x.next()`` is some other object's and is left alone.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import TYPE_CHECKING

from kutils import _migrate_rules as rules
from kutils._migrate_names import _binds

if TYPE_CHECKING:
    from kutils._migrate_source import Source

_FLOWS = frozenset({"flow", "flow_from_directory", "flow_from_dataframe"})
GENERATORS = frozenset(rules.by_kind("iterator-next")["next"].within)


def iterator_next(
    source: Source,
    call: ast.Call,
    scopes: tuple[ast.AST, ...],
    resolve: Callable[[ast.AST], str | None],
) -> bool:
    """Rewrite ``name.next()`` to ``next(name)`` when ``name`` holds a Keras 2 flow."""
    func = call.func
    if call.args or call.keywords or not isinstance(func, ast.Attribute):
        return False
    if not isinstance(func.value, ast.Name) or func.attr != "next":
        return False
    scope = _deciding_scope(source.tree, scopes, func.value.id)
    values = _only_values(scope, func.value.id)
    if not values or not all(_is_flow(value, scope, resolve) for value in values):
        return False
    if any(_binds(node, "next") for node in ast.walk(source.tree)):
        return False  # the file's own next
    start, end = source.span(call)
    source.edits.append((start, end, f"next({func.value.id})"))
    return True


def _deciding_scope(tree: ast.Module, scopes: tuple[ast.AST, ...], name: str) -> ast.AST:
    """The innermost scope that binds ``name`` (the module when none does)."""
    for scope in reversed(scopes):
        if any(_binds(node, name) for node in ast.walk(scope)):
            return scope
    return tree


def _only_values(scope: ast.AST, name: str) -> list[ast.expr] | None:
    """The values ``scope`` assigns ``name`` (``name = value``), or None if it also binds
    it otherwise (a parameter, a loop, a tuple target, ...)."""
    values = []
    bindings = 0
    for node in ast.walk(scope):
        if _binds(node, name):
            bindings += 1
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id == name:
                values.append(node.value)
    return values if values and len(values) == bindings else None


def _is_flow(value: ast.expr, scope: ast.AST, resolve: Callable[[ast.AST], str | None]) -> bool:
    if not isinstance(value, ast.Call) or not isinstance(value.func, ast.Attribute):
        return False
    if value.func.attr not in _FLOWS:
        return False
    maker = value.func.value
    if isinstance(maker, ast.Name):
        made = _only_values(scope, maker.id)
        return bool(made) and all(_is_generator(m, resolve) for m in made or ())
    return _is_generator(maker, resolve)


def _is_generator(value: ast.expr, resolve: Callable[[ast.AST], str | None]) -> bool:
    return isinstance(value, ast.Call) and resolve(value.func) in GENERATORS

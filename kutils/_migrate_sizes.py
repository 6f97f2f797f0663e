"""Layer sizes that are numpy integers, for ``kutils migrate``.

Keras 2 built a layer from any integer size; Keras 3 refuses numpy integers for some
(``Dense(units=np.int64(46))``: "expected a positive integer"), and Keras 2 scripts
computed their sizes with numpy (``np.prod(shape)``, ``np.max(labels) + 1``). The rewrite
wraps such a size in ``int()``, which keeps an integer's value, where it can show the
size is a numpy integer: a numpy integer function's call (or integer arithmetic on one)
written in the argument, or a name, or ``self.attr`` in a method, whose every assignment
in the file is one. A size it cannot show to be one is left as it is, unreported.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import TYPE_CHECKING

from kutils import _migrate_names as names

if TYPE_CHECKING:
    from kutils._migrate_source import Source

Scopes = tuple[ast.AST, ...]
# The full path a dotted name refers to inside the given scopes (kutils._migrate_calls).
Resolve = Callable[[ast.AST, Scopes], str | None]

# The size arguments (position, keyword) of the layers that took numpy integers in
# Keras 2.3.1 and refuse them in Keras 3.15. Keras 2.3.1's GRU and SimpleRNN (and their
# cells) failed on numpy integers themselves; Keras 3's convolutions and Reshape take them.
LAYER_SIZES = {
    "Dense": ((0, "units"),),
    "Embedding": ((0, "input_dim"), (1, "output_dim")),
    "LSTM": ((0, "units"),),
    "LSTMCell": ((0, "units"),),
    "RepeatVector": ((0, "n"),),
}
# numpy functions whose result is an integer when their input is: int() keeps its value.
# On a float result Keras 2.3.1 failed to build these layers, so no working code changes.
_NUMPY_INTEGERS = frozenset(
    {
        *("amax", "amin", "argmax", "argmin", "count_nonzero", "max", "min", "prod"),
        *("product", "size", "sum", "int_", "intc", "int8", "int16", "int32", "int64"),
        *("uint8", "uint16", "uint32", "uint64"),
    }
)
_INTEGER_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_NOT_ENTERED = (ast.Lambda, *names.COMPREHENSIONS)  # scopes of their own, binding nothing here


def numpy_layer_sizes(
    source: Source, call: ast.Call, path: str, scopes: Scopes, resolve: Resolve
) -> None:
    """``Dense(np.prod(shape))`` -> ``Dense(int(np.prod(shape)))``, and ``Dense(n)`` ->
    ``Dense(int(n))`` where every assignment of ``n`` is such a numpy integer."""
    name = path.rsplit(".", 1)[-1]
    if not path.startswith("keras.layers.") or name not in LAYER_SIZES:
        return
    keywords = {k.arg: k.value for k in call.keywords}
    for position, keyword in LAYER_SIZES[name]:
        positional = call.args[: position + 1]
        if any(isinstance(a, ast.Starred) for a in positional):
            return
        value = call.args[position] if position < len(call.args) else keywords.get(keyword)
        if value is None:
            continue
        if _numpy_integer(value, scopes, resolve) or _named_numpy_integer(
            source, value, scopes, resolve
        ):
            start, end = source.span(value)
            source.edits.extend([(start, start, "int("), (end, end, ")")])


def _numpy_integer(node: ast.AST, scopes: Scopes, resolve: Resolve) -> bool:
    """Whether ``node`` is a numpy integer function's call, or integer arithmetic on one."""
    if isinstance(node, ast.Call):
        path = resolve(node.func, scopes) or ""
        return path.startswith("numpy.") and path[6:] in _NUMPY_INTEGERS
    if isinstance(node, ast.BinOp) and isinstance(node.op, _INTEGER_OPERATORS):
        sides = (node.left, node.right)
        numpy = [_numpy_integer(side, scopes, resolve) for side in sides]
        plain = [isinstance(s, ast.Constant) and type(s.value) is int for s in sides]
        return any(numpy) and all(n or p for n, p in zip(numpy, plain, strict=True))
    return False


def _named_numpy_integer(source: Source, value: ast.AST, scopes: Scopes, resolve: Resolve) -> bool:
    """Whether ``value``, a name or ``self.attr``, is assigned only numpy integers."""
    if isinstance(value, ast.Name):
        assigned = _name_values(source, value.id, scopes)
    elif _self_attribute(value, scopes):
        assigned = _attribute_values(source, value.attr, scopes)  # type: ignore[attr-defined]
    else:
        return False
    if not assigned:
        return False
    return all(_numpy_integer(v, within, resolve) for v, within in assigned)


Assigned = list[tuple[ast.expr, Scopes]]


def _name_values(source: Source, name: str, scopes: Scopes) -> Assigned | None:
    """The values assigned ``name`` where the use inside ``scopes`` reads it, each with
    the scopes it is computed in; None when anything else binds it."""
    owner = source.scopes.owner(name, scopes)
    if owner is None or name in _rebound_from_elsewhere(source):
        return None
    assignments = _Assignments.of(owner)
    values = assignments.values.get(name)
    if values is None or "*" in assignments.stored:  # a star import may bind it too
        return None
    within = () if owner is source.tree else scopes[: scopes.index(owner) + 1]
    return [(v, within) for v in values]


def _self_attribute(value: ast.AST, scopes: Scopes) -> bool:
    """``self.attr`` read directly in a method of a class."""
    return (
        isinstance(value, ast.Attribute)
        and isinstance(value.value, ast.Name)
        and value.value.id == "self"
        and len(scopes) >= 2
        and isinstance(scopes[-2], ast.ClassDef)
        and _method_of_self(scopes[-1])
    )


def _method_of_self(node: ast.AST) -> bool:
    """A function whose first parameter is ``self``, never rebound in it."""
    if not isinstance(node, _FUNCTIONS):
        return False
    parameters = [*node.args.posonlyargs, *node.args.args]
    return (
        bool(parameters)
        and parameters[0].arg == "self"
        and not node.decorator_list
        and ("self" not in _Assignments.of(node).stored)
    )


def _attribute_values(source: Source, attr: str, scopes: Scopes) -> Assigned | None:
    """The values the methods of the class around ``scopes`` assign ``self.<attr>``;
    None when the file stores that attribute anywhere else or the class body binds it."""
    if "setattr" in source.text or "__dict__" in source.text:
        return None
    cls = scopes[-2]
    if attr in _Assignments.of(cls).stored:
        return None  # a class attribute: self.attr may read it
    key = f"self.{attr}"
    found: Assigned = []
    for method in cls.body:  # type: ignore[attr-defined]
        if not _method_of_self(method):
            continue
        values = _Assignments.of(method).values.get(key, [])
        if values is None:
            return None
        found.extend((v, (*scopes[:-1], method)) for v in values)
    if len(found) != _attribute_stores(source).get(attr, 0):
        return None  # stored elsewhere too: another class, a nested function, ...
    return found


class _Assignments:
    """What one scope's own statements bind (nested scopes not entered), cached on it.

    ``values``: for each name (and ``self.attr``) bound only by plain assignments
    (``n = value``, ``n: int = value``, ``self.n = value``), the values; None for one
    bound in any other way too (a parameter, a loop, ``+=``, unpacking, an import, ...).
    ``stored``: every name bound here other than as a parameter.
    """

    def __init__(self, scope: ast.AST) -> None:
        self.values: dict[str, list[ast.expr] | None] = {}
        self.stored: set[str] = set()
        if isinstance(scope, (*_FUNCTIONS, ast.Lambda)):
            for parameter in names._parameters(scope.args):
                self.values[parameter] = None
        body = getattr(scope, "body", None)
        self._walk(list(body) if isinstance(body, list) else [])

    @staticmethod
    def of(scope: ast.AST) -> _Assignments:
        found = getattr(scope, "_kutils_assignments", None)
        if found is None:
            found = _Assignments(scope)
            scope._kutils_assignments = found  # type: ignore[attr-defined]
        return found

    def _keep(self, name: str, value: ast.expr) -> None:
        self.stored.add(name)
        values = self.values.setdefault(name, [])
        if values is not None:
            values.append(value)

    def _other(self, name: str) -> None:
        self.stored.add(name)
        self.values[name] = None

    def _walk(self, stack: list[ast.AST]) -> None:
        while stack:
            node = stack.pop()
            if isinstance(node, (*_FUNCTIONS, ast.ClassDef)):
                self._other(node.name)
                continue
            if isinstance(node, _NOT_ENTERED):
                continue
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    plain = _plain_target(target)
                    if plain is None:
                        stack.append(target)
                    else:
                        self._keep(plain, node.value)
                stack.append(node.value)
                continue
            bound = _bound_name(node)
            if bound is not None:
                self._other(bound)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for item in node.names:
                    self._other(item.asname or item.name.split(".")[0])
            stack.extend(ast.iter_child_nodes(node))


def _plain_target(target: ast.AST) -> str | None:
    """``n`` for the target ``n``, ``self.n`` for ``self.n``; None for any other."""
    if isinstance(target, ast.Name):
        return target.id
    if (
        isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == "self"
    ):
        return f"self.{target.attr}"
    return None


def _bound_name(node: ast.AST) -> str | None:
    """The name a node binds other than by a plain assignment (``*`` for a star import)."""
    context = getattr(node, "ctx", None)
    if isinstance(node, ast.Name) and not isinstance(context, ast.Load):
        return node.id
    if isinstance(node, ast.Attribute) and not isinstance(context, ast.Load):
        return _plain_target(node)
    if isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)):
        return node.name
    if isinstance(node, ast.MatchMapping):
        return node.rest
    if isinstance(node, ast.ImportFrom) and any(item.name == "*" for item in node.names):
        return "*"
    return None


def _rebound_from_elsewhere(source: Source) -> frozenset[str]:
    """Names the file declares global or nonlocal, or assigns with ``:=`` (cached)."""
    tree = source.tree
    found = getattr(tree, "_kutils_rebound", None)
    if found is None:
        text = source.text
        found = frozenset()
        if "global" in text or "nonlocal" in text or ":=" in text:
            found = frozenset(
                name
                for node in ast.walk(tree)
                for name in (
                    node.names
                    if isinstance(node, (ast.Global, ast.Nonlocal))
                    else [node.target.id]
                    if isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name)
                    else []
                )
            )
        tree._kutils_rebound = found  # type: ignore[attr-defined]
    return found


def _attribute_stores(source: Source) -> dict[str, int]:
    """How many times the file stores (or deletes) each attribute name (cached)."""
    tree = source.tree
    found = getattr(tree, "_kutils_attribute_stores", None)
    if found is None:
        found = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load):
                found[node.attr] = found.get(node.attr, 0) + 1
        tree._kutils_attribute_stores = found  # type: ignore[attr-defined]
    return found

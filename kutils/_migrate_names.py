"""Name resolution for ``kutils migrate``: what a name in a user's file refers to.

A name is resolved through the file's imports (``K`` after ``from keras import backend
as K``), without following assignments, and only where no other binding hides the import:
a parameter, an assignment or a ``def`` of that name in an enclosing function (or in the
module, for a module-level name bound by no import) is the user's own name. The module
also answers the two questions the rewrites ask before they add a name to a file: is the
name free (:func:`taken`), and is a receiver an instance of one of the file's own classes
that define a generator method (:class:`OwnClasses`).
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator

from kutils import _migrate_rules as rules

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def normalize(path: str) -> str:
    """``tensorflow.keras.x`` and ``tensorflow.python.keras.x`` -> ``keras.x``."""
    for prefix in ("tensorflow.python.keras", "tensorflow.keras"):
        if path == prefix or path.startswith(prefix + "."):
            return "keras" + path[len(prefix) :]
    return path


_TOP: frozenset[str] | None = None
_LEGACY: dict[str, frozenset[str]] = {}


def tables() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """The names kutils offers at the top, and in each Keras 2 module path."""
    global _TOP, _LEGACY
    if _TOP is None:
        import kutils

        _LEGACY = {
            name: frozenset(importlib.import_module(f"kutils.{name}").__all__)
            for name in kutils._LEGACY_MODULES
        }
        top = frozenset(name for name in kutils.__all__ if not name.startswith("_"))
        _TOP = top | frozenset(_LEGACY)
    return _TOP, _LEGACY


def watched(path: str) -> bool:
    """Whether uses of a name bound to ``path`` may need a rewrite or a report.

    Modules and functions of Keras (and TensorFlow, for ``tf.keras``) may: their
    attributes are checked. A Keras class used by name (``Dense(...)``) needs nothing
    beyond its import, which is checked already, except an optimizer's arguments.
    """
    path = normalize(path)
    if path in ("keras", "tensorflow") or path.startswith("keras.optimizers."):
        return True
    if not path.startswith(("keras.", "tensorflow.")):
        return False
    if path.startswith("keras.utils.") and path.count(".") == 2:
        return path[12:] in tables()[1]  # a legacy module's names are checked
    return not path.rsplit(".", 1)[-1][:1].isupper()


def utils_target(module: str) -> str | None:
    """The kutils module for a Keras 2 utilities module path, or None."""
    _, legacy = tables()
    if module == "keras.utils":
        return "kutils"
    if module.startswith("keras.utils.") and module[12:] in legacy:
        return f"kutils.{module[12:]}"
    return None


# -- scopes -----------------------------------------------------------------------------


class Scopes:
    """Which names each scope binds by an import, and which by anything else.

    Computed on demand for the scopes where a watched name is used, and kept.
    """

    def __init__(self, text: str, tree: ast.Module) -> None:
        self.tree = tree
        self._walrus = ":=" in text
        self._bound: dict[int, tuple[set[str], set[str], set[str]]] = {}

    def shadowed(self, name: str, scopes: tuple[ast.AST, ...]) -> bool:
        """Whether ``name``, used inside ``scopes`` (outermost first), is not the import.

        The innermost scope that binds the name decides: by an import, the use is the
        import's; by anything else (a parameter, an assignment, a ``def``...), it is the
        user's own name. A class body counts only for code directly in it. At module
        level an import wins over other bindings (``except ImportError: keras = None``).
        """
        innermost = len(scopes) - 1
        for index in range(innermost, -1, -1):
            scope = scopes[index]
            if isinstance(scope, ast.ClassDef) and index != innermost:
                continue
            imported, other, declared = self._bindings(scope)
            if name in declared:
                break
            if name in imported:
                return False
            if name in other:
                return True
        imported, other, _ = self._bindings(self.tree)
        return name in other and name not in imported

    def owner(self, name: str, scopes: tuple[ast.AST, ...]) -> ast.AST | None:
        """The scope whose ``name`` a use inside ``scopes`` reads (the module's tree for a
        module-level name), or None when a scope declares it global or nonlocal or
        nothing in the file binds it."""
        innermost = len(scopes) - 1
        for index in range(innermost, -1, -1):
            scope = scopes[index]
            if isinstance(scope, ast.ClassDef) and index != innermost:
                continue
            imported, other, declared = self._bindings(scope)
            if name in declared:
                return None
            if name in imported or name in other:
                return scope
        imported, other, _ = self._bindings(self.tree)
        return self.tree if name in imported or name in other else None

    def _bindings(self, scope: ast.AST) -> tuple[set[str], set[str], set[str]]:
        key = id(scope)
        found = self._bound.get(key)
        if found is None:
            found = _scope_bindings(scope, self._walrus)
            self._bound[key] = found
        return found


def _scope_bindings(scope: ast.AST, walrus: bool) -> tuple[set[str], set[str], set[str]]:
    """``(imported, other, declared global or nonlocal)`` names bound in ``scope``.

    Only statements are visited (their targets, names and blocks), which is what binds
    a name, except an assignment expression: expressions are searched for those only
    when the file has one (``walrus``).
    """
    imported: set[str] = set()
    other: set[str] = set()
    declared: set[str] = set()
    if isinstance(scope, _FUNCTIONS):
        other.update(_parameters(scope.args))
    if isinstance(scope, COMPREHENSIONS):
        other.update(n for c in scope.generators for n in _bound_by(c))
        return imported, other, declared
    if isinstance(scope, ast.Lambda):
        statements: list[ast.AST] = []
    else:
        statements = list(scope.body)  # type: ignore[attr-defined]
    while statements:
        node = statements.pop()
        if isinstance(node, _SCOPES):
            other.add(node.name)  # type: ignore[union-attr]
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imported.update(_import_names(node))
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            declared.update(node.names)
        else:
            other.update(_bound_by(node))
        for name in _BLOCKS:
            statements.extend(getattr(node, name, ()))
    if walrus:
        other.update(_walrus_targets(scope))
    return imported, other - declared, declared


_BLOCKS = ("body", "orelse", "finalbody", "handlers", "cases")


def _bound_by(node: ast.AST) -> Iterator[str]:
    """The names a statement (or except handler, match case) binds itself."""
    targets: list[ast.AST] = []
    if isinstance(node, (ast.Assign, ast.Delete)):
        targets = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor, ast.comprehension)):
        targets = [node.target]
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        targets = [item.optional_vars for item in node.items if item.optional_vars]
    elif isinstance(node, ast.ExceptHandler):
        if node.name:
            yield node.name
    elif isinstance(node, ast.match_case):
        for pattern in ast.walk(node.pattern):
            name = getattr(pattern, "name", None) or getattr(pattern, "rest", None)
            if name:
                yield name
    while targets:
        target = targets.pop()
        if isinstance(target, ast.Name):
            yield target.id
        elif isinstance(target, (ast.Tuple, ast.List)):
            targets.extend(target.elts)
        elif isinstance(target, ast.Starred):
            targets.append(target.value)


def _walrus_targets(scope: ast.AST) -> Iterator[str]:
    """Targets of ``:=`` in ``scope`` (nested functions and classes not entered)."""
    stack: list[ast.AST] = [scope.body] if isinstance(scope, ast.Lambda) else list(scope.body)  # type: ignore[attr-defined]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
            yield node.target.id
        if isinstance(node, _SCOPES):
            continue
        stack.extend(ast.iter_child_nodes(node))


def _parameters(arguments: ast.arguments) -> Iterator[str]:
    for item in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs):
        yield item.arg
    for extra in (arguments.vararg, arguments.kwarg):
        if extra is not None:
            yield extra.arg


def _import_names(statement: ast.Import | ast.ImportFrom) -> Iterator[str]:
    for item in statement.names:
        if item.name == "*":
            continue
        if item.asname is not None:
            yield item.asname
        elif isinstance(statement, ast.Import):
            yield item.name.split(".")[0]
        else:
            yield item.name


# -- is a name free to add ----------------------------------------------------------------


def taken(text: str, tree: ast.Module, name: str) -> bool:
    """Whether the file uses ``name`` for anything but what kutils binds to it.

    ``kutils`` is free when only ``import kutils`` binds it; a generator function's name
    when only ``from kutils import name`` does. Any other binding (a parameter, an import
    from elsewhere, a ``def``, a star import) or a use of the name that no such import
    binds makes it taken. A name that never appears outside attribute access is free
    without looking further.
    """
    if not _appears_bare(text, name):
        return False
    kutils_binds = False
    used = False
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            ours = _import_from_kutils(node, name)
            if ours is None:
                return True
            kutils_binds = kutils_binds or ours
        elif _binds(node, name):
            return True
        elif isinstance(node, ast.Name) and node.id == name:
            used = True
    return used and not kutils_binds


def _appears_bare(text: str, name: str) -> bool:
    """Whether ``name`` appears in ``text`` other than after a dot (as an attribute)."""
    start = text.find(name)
    while start >= 0:
        end = start + len(name)
        before = text[start - 1 : start]
        after = text[end : end + 1]
        if not _word(before) and not _word(after) and before != ".":
            return True
        start = text.find(name, end)
    return False


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _import_from_kutils(statement: ast.Import | ast.ImportFrom, name: str) -> bool | None:
    """True: the statement binds ``name`` as kutils does; False: not at all; None: otherwise."""
    ours = isinstance(statement, ast.ImportFrom) and statement.module in (
        "kutils",
        "kutils.generators",
    )
    if isinstance(statement, ast.ImportFrom) and any(i.name == "*" for i in statement.names):
        return (name != "kutils") if ours else None
    for item in statement.names:
        if isinstance(statement, ast.Import):
            bound = item.asname or item.name.split(".")[0]
            if bound == name:
                return (item.asname is None and item.name.split(".")[0] == "kutils") or None
        elif (item.asname or item.name) == name:
            return True if ours and item.name == name else None
    return False


def _binds(node: ast.AST, name: str) -> bool:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name == name
    if isinstance(node, ast.arg):
        return node.arg == name
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return name in node.names
    if isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)):
        return node.name == name
    if isinstance(node, ast.MatchMapping):
        return node.rest == name
    return isinstance(node, ast.Name) and node.id == name and not isinstance(node.ctx, ast.Load)


# -- the file's own classes ---------------------------------------------------------------

_OWN_METHOD = re.compile(
    r"\bdef\s+(?:" + "|".join([*rules.by_kind("method"), *rules.by_kind("weights-call")]) + r")\b"
)


class OwnClasses:
    """The file's classes that define (or inherit from a class of the file) a method
    that a rule rewrites, where they are, and the names assigned their instances."""

    def __init__(self, text: str, tree: ast.Module) -> None:
        self.methods: dict[str, set[str]] = {}
        self.ranges: list[tuple[int, int, str]] = []
        self.instances: dict[str, set[str | None]] = {}
        if not _OWN_METHOD.search(text):
            return
        bases: dict[str, list[str]] = {}
        assignments: list[ast.Assign] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                self.methods[node.name] = {
                    item.name
                    for item in node.body
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                }
                bases[node.name] = [b.id for b in node.bases if isinstance(b, ast.Name)]
                self.ranges.append((node.lineno, node.end_lineno or node.lineno, node.name))
            elif isinstance(node, ast.Assign):
                assignments.append(node)
        _inherit(self.methods, bases)
        for node in assignments:
            value = node.value
            cls = value.func.id if _is_own_call(value, self.methods) else None  # type: ignore[attr-defined]
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.instances.setdefault(target.id, set()).add(cls)

    def receiver(self, value: ast.AST, line: int, method: str) -> str:
        """``"own"``: an instance of a class of the file with ``method``; ``"mixed"``:
        a name assigned both such instances and other values; ``"other"``: anything
        else, taken for a Keras model."""
        owners = {name for name, methods in self.methods.items() if method in methods}
        if not owners:
            return "other"
        if isinstance(value, ast.Name) and value.id in ("self", "cls"):
            inside = [r for r in self.ranges if r[0] <= line <= r[1]]
            if inside and max(inside)[2] in owners:
                return "own"
            return "other"
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            return "own" if value.func.id in owners else "other"
        if isinstance(value, ast.Name) and value.id in self.instances:
            kinds = self.instances[value.id]
            if kinds <= owners:
                return "own"
            return "mixed" if kinds & owners else "other"
        return "other"


def _inherit(methods: dict[str, set[str]], bases: dict[str, list[str]]) -> None:
    changed = True
    while changed:
        changed = False
        for name, parents in bases.items():
            for parent in parents:
                extra = methods.get(parent, set()) - methods[name]
                if extra:
                    methods[name] |= extra
                    changed = True


def _is_own_call(value: ast.AST, methods: dict[str, set[str]]) -> bool:
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id in methods
    )

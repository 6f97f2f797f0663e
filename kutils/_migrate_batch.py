"""A layer's fixed batch (``batch_size=``, ``batch_input_shape=``) in ``kutils migrate``.

Keras 2 took ``batch_input_shape=(batch, ...)``, or ``input_shape=`` with ``batch_size=``,
on any layer, and used them in one place only: the first layer of a ``Sequential`` model,
whose input it made with that batch size (what a stateful recurrent layer needs);
everywhere else they were ignored. Keras 3 layers reject both arguments. Where the layer
is provably a ``Sequential`` model's first, the arguments become a ``keras.Input`` placed
first in the model, the plain Keras 3 form::

    model = Sequential()                       model = Sequential()
    model.add(LSTM(4, input_shape=(3, 1),  ->  model.add(keras.Input(shape=(3, 1), batch_size=2))
                   batch_size=2,                model.add(LSTM(4,
                   stateful=True))                             stateful=True))

    Sequential([GRU(4, batch_input_shape=(2, 3, 1)), ...])
        -> Sequential([keras.Input(batch_shape=(2, 3, 1)), GRU(4), ...])

A layer is provably first when it is the first item of the list literal given to
``Sequential(...)``, or the argument of ``m.add(...)`` right after ``m = Sequential()``
in the same block. The shape and batch expressions then run before the layer's other
arguments instead of after them, so they must call nothing (names, numbers, attributes,
subscripts, tuples and arithmetic). Anything else is reported with the fix.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from kutils import _migrate_rewrites as rewrites
from kutils import _migrate_rules as rules

if TYPE_CHECKING:
    from kutils._migrate_source import Source

KEYWORDS = ("batch_size", "batch_input_shape")
_RULES = {k: r for k, r in rules.by_kind("keyword").items() if k in KEYWORDS}
# keras.layers names that take a batch size in Keras 3 too.
_INPUTS = frozenset({"Input", "InputLayer"})
_SEQUENTIAL = frozenset({"keras.Sequential", "keras.models.Sequential"})
_PURE = (
    ast.Name,
    ast.Constant,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.Tuple,
    ast.List,
    ast.BinOp,
    ast.UnaryOp,
    ast.Starred,
    ast.expr_context,
    ast.operator,
    ast.unaryop,
)
_GAP = re.compile(r"[\s\\]*,[\s\\]*")
# (kind, the statement or call that makes the layer first, the Sequential call)
Context = tuple[str, ast.AST, ast.Call]


def layer_call(
    source: Source, call: ast.Call, path: str, resolve: Callable[[ast.AST], str | None]
) -> set[str]:
    """Rewrite or report a ``keras.layers`` call's ``batch_size=``/``batch_input_shape=``.

    Returns the keywords handled here (the caller reports the others by their rule).
    """
    given = {k.arg: k for k in call.keywords if k.arg}
    present = [k for k in KEYWORDS if k in given]
    name = path.rsplit(".", 1)[-1]
    if name in _INPUTS:
        return set(present)  # Keras 3's Input and InputLayer take them: nothing to do
    if not present:
        return set()
    keyword = given[present[0]]
    reason = _declined(source, call, name, resolve)
    if reason is not None:
        source.report(keyword, f"{_RULES[present[0]].message} (not rewritten: {reason})")
    return set(present)


def _declined(
    source: Source, call: ast.Call, name: str, resolve: Callable[[ast.AST], str | None]
) -> str | None:
    """Rewrite the call; or the reason it cannot be rewritten."""
    context = _contexts(source).get(id(call))
    if context is None or resolve(context[2].func) not in _SEQUENTIAL:
        return "not provably the first layer of a Sequential model"
    if any(k.arg is None for k in call.keywords):
        return "keyword arguments unpacked with **"
    given = {k.arg: k.value for k in call.keywords if k.arg}
    dropped = ["batch_input_shape", "input_shape", "batch_size"]
    if "batch_input_shape" in given:
        arguments = f"batch_shape={_text(source, given['batch_input_shape'])}"
    elif "input_shape" in given and "batch_size" in given:
        shape, batch = _text(source, given["input_shape"]), _text(source, given["batch_size"])
        arguments = f"shape={shape}, batch_size={batch}"
    elif name == "Dense" and "input_dim" in given and "batch_size" in given:
        dim, batch = _text(source, given["input_dim"]), _text(source, given["batch_size"])
        arguments = f"shape=({dim},), batch_size={batch}"
        dropped.append("input_dim")
    else:
        return "batch_size= without input_shape= (Keras 2 ignored it, or took the shape from the layer's own arguments)"
    if "dtype" in given:
        if not isinstance(given["dtype"], ast.Constant):
            return "a dtype= computed at run time (Keras 2 gave the input the layer's dtype)"
        arguments += f", dtype={_text(source, given['dtype'])}"
    removed = [k for k in call.keywords if k.arg in dropped]
    if not all(_pure(k.value) for k in removed):
        return "a shape or batch size that calls a function (it would run earlier)"
    removals = _removals(source, call, removed)
    if removals is None:
        return "a comment among the arguments"
    keras = rewrites.keras_name(source, call)
    if keras is None:
        return "the name keras means something else in this file"
    kind, anchor, _ = context
    start, _ = source.span(anchor)
    if kind == "list":
        source.edits.append((start, start, f"{keras}.Input({arguments}), "))
    else:
        receiver = anchor.value.func.value.id  # type: ignore[attr-defined]
        line_start = source.starts[anchor.lineno - 1]  # type: ignore[attr-defined]
        indent = source.text[line_start:start]
        added = f"{receiver}.add({keras}.Input({arguments}))"
        after = source.newline + indent if not indent.strip() else "; "
        source.edits.append((start, start, added + after))
    source.edits.extend((begin, end, "") for begin, end in removals)
    return None


def _text(source: Source, node: ast.AST) -> str:
    start, end = source.span(node)
    return source.text[start:end]


def _pure(node: ast.AST) -> bool:
    """Whether evaluating ``node`` calls nothing (it can move before other arguments)."""
    return all(isinstance(inner, _PURE) for inner in ast.walk(node))


def _removals(
    source: Source, call: ast.Call, removed: list[ast.keyword]
) -> list[tuple[int, int]] | None:
    """The spans that delete ``removed`` with their commas, or None across a comment."""
    arguments: list[ast.expr | ast.keyword] = [*call.args, *call.keywords]
    arguments.sort(key=lambda n: (n.lineno, n.col_offset))
    spans = [source.span(argument) for argument in arguments]
    gone = [argument in removed for argument in arguments]
    kept = [i for i, g in enumerate(gone) if not g]
    result = []
    index = 0
    while index < len(arguments):
        if not gone[index]:
            index += 1
            continue
        last = index
        while last + 1 < len(arguments) and gone[last + 1]:
            last += 1
        before = [i for i in kept if i < index]
        after = [i for i in kept if i > last]
        if before:
            begin, end = spans[before[-1]][1], spans[last][1]
        elif after:
            begin, end = spans[index][0], spans[after[0]][0]
        else:
            begin, end = spans[index][0], spans[last][1]
        if not before and not after and source.text[end:].lstrip(" \t\r\n\\").startswith(","):
            end = source.text.index(",", end) + 1  # Flatten(batch_input_shape=s,) -> Flatten()
        if not _only_separators(source.text, begin, end, spans[index : last + 1]):
            return None
        result.append((begin, end))
        index = last + 1
    return result


def _only_separators(text: str, begin: int, end: int, inner: list[tuple[int, int]]) -> bool:
    """Whether ``text[begin:end]`` outside the ``inner`` spans is only commas and spaces."""
    cursor, gaps = begin, []
    for start, stop in inner:
        gaps.append(text[cursor:start])
        cursor = stop
    gaps.append(text[cursor:end])
    return all(_GAP.fullmatch(gap) for gap in gaps if gap)


def _contexts(source: Source) -> dict[int, Context]:
    """The layer calls of the file that are first in a ``Sequential``-looking model.

    Found once per file, on the first ``batch_size=``/``batch_input_shape=`` of a layer;
    the caller checks that the model's class is Keras's ``Sequential``.
    """
    if source.first_layers is None:
        found: dict[int, Context] = {}
        for node in ast.walk(source.tree):
            if isinstance(node, ast.Call):
                items = node.args[0] if node.args else None
                items = next((k.value for k in node.keywords if k.arg == "layers"), items)
                if isinstance(items, (ast.List, ast.Tuple)) and items.elts:
                    found[id(items.elts[0])] = ("list", items.elts[0], node)
            for field in ("body", "orelse", "finalbody"):
                block = getattr(node, field, None)
                if isinstance(block, list):
                    for previous, statement in itertools.pairwise(block):
                        _added_first(previous, statement, found)
        source.first_layers = found
    return source.first_layers


def _added_first(previous: ast.AST, statement: ast.AST, found: dict[int, Context]) -> None:
    """``m = Sequential()`` then ``m.add(layer)``: ``layer`` is first."""
    if not (
        isinstance(previous, ast.Assign)
        and len(previous.targets) == 1
        and isinstance(previous.targets[0], ast.Name)
        and isinstance(previous.value, ast.Call)
        and not previous.value.args
        and all(k.arg == "name" for k in previous.value.keywords)
        and isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Call)
    ):
        return
    add = statement.value
    func = add.func
    if (
        isinstance(func, ast.Attribute)
        and func.attr == "add"
        and isinstance(func.value, ast.Name)
        and func.value.id == previous.targets[0].id
        and len(add.args) == 1
        and not add.keywords
        and isinstance(add.args[0], ast.Call)
    ):
        found[id(add.args[0])] = ("add", statement, previous.value)

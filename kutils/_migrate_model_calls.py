"""Two model calls of ``kutils migrate`` whose Keras 3 form depends on their arguments.

- ``x.save_weights(name)`` and ``x.load_weights(name)`` (the ``weights-call`` rules):
  Keras 3 saves weights only under a name ending in ``.weights.h5``. A literal
  ``'x.h5'``/``'x.hdf5'`` is left to the project-wide rename (``kutils._migrate_weights``)
  and goes through kutils where the run keeps the name; any other name (built at run
  time, held in a variable, or a literal such as ``'model.ckpt'``) goes through kutils,
  whose ``save_weights`` writes Keras 2's file at any name and whose ``load_weights``
  reads it.
- ``compile(loss=<n losses>, metrics=[...])`` (the ``compile-metrics`` rule): Keras 2
  applied every metric of a flat list to every output; Keras 3 wants one list per output.
- ``compile(opt, loss, ['acc'])`` (the ``compile-positional`` rule): Keras 3's
  ``compile`` orders its arguments after ``loss`` otherwise; they get Keras 2's names.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from kutils import _migrate_rules as rules

if TYPE_CHECKING:
    from kutils._migrate_source import Source

WEIGHT_CALLS = rules.by_kind("weights-call")
_METRICS = next(iter(rules.by_kind("compile-metrics").values()))
_POSITIONAL = rules.by_kind("compile-positional")["compile"]
# Keras 2.3.1's keyword arguments of each (after the file name), which kutils' take too.
_KEYWORDS = {
    "save_weights": ("filepath", "overwrite"),
    "load_weights": ("filepath", "by_name", "skip_mismatch", "reshape"),
}
# Names Keras 3's own save_weights/load_weights handle as Keras 2 did.
_KERAS3_NAMES = {
    "save_weights": (".weights.h5",),
    "load_weights": (".weights.h5", ".keras", ".h5", ".hdf5"),
}
_RENAMED = (".h5", ".hdf5")  # literals kutils._migrate_weights renames or reports


def weights_call_through_kutils(
    call: ast.Call, method: str, kept: frozenset[str] = frozenset()
) -> bool:
    """Whether ``x.<method>(...)`` (``save_weights``/``load_weights``) goes to kutils.

    ``kept``: the ``.h5``/``.hdf5`` names (last path parts) the run does not rename
    (``kutils._migrate_weights``): their literal saves and loads go to kutils too, which
    keeps Keras 2's file at that name.
    """
    allowed = _KEYWORDS[method]
    if any(keyword.arg not in allowed for keyword in call.keywords):
        return False  # **kwargs, or tf.keras's save_format=/options=: left as written
    if len(call.args) > len(allowed) or any(isinstance(a, ast.Starred) for a in call.args):
        return False
    name = call.args[0] if call.args else None
    name = next((k.value for k in call.keywords if k.arg == "filepath"), name)
    if name is None:
        return False
    if isinstance(name, ast.Constant):
        if not isinstance(name.value, str):
            return False
        lowered = name.value.lower()
        if lowered.endswith(_RENAMED) and not lowered.endswith(".weights.h5"):
            # The weights-name rule's: renamed in every file, or kept and through kutils.
            return re.split(r"[/\\]", name.value)[-1] in kept
        return not lowered.endswith(_KERAS3_NAMES[method])
    return not built_name_end(name).lower().endswith(_KERAS3_NAMES[method])


def built_name_end(value: ast.AST) -> str:
    """The constant end of a name built at run time: ``'w{}.h5'.format(i)``, f-strings,
    ``'w%d.h5' % i`` and ``prefix + '.h5'``; "" for anything else."""
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
        if value.func.attr == "format":
            value = value.func.value
        else:
            return ""
    elif isinstance(value, ast.BinOp) and isinstance(value.op, ast.Mod):
        value = value.left
    elif isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
        value = value.right
    elif isinstance(value, ast.JoinedStr) and value.values:
        value = value.values[-1]
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    return ""


# -- compile(opt, loss, ['acc']): Keras 2's positions --------------------------------


def compile_arguments(call: ast.Call, positional: bool = True) -> dict[str, ast.expr]:
    """``compile``'s arguments by Keras 2's names, those given by position included
    (none of those when a ``*args`` is among them, or ``positional`` is false)."""
    found: dict[str, ast.expr] = {}
    if positional and not any(isinstance(arg, ast.Starred) for arg in call.args):
        found.update(zip(_POSITIONAL.within, call.args, strict=False))
    found.update({keyword.arg: keyword.value for keyword in call.keywords if keyword.arg})
    return found


def compile_positional(source: Source, call: ast.Call, on_self: bool, to_kutils: bool) -> None:
    """``model.compile(opt, loss, ['acc'])`` -> ``model.compile(opt, loss, metrics=['acc'])``.

    Keras 2's ``compile(optimizer, loss, metrics, loss_weights, sample_weight_mode,
    weighted_metrics, target_tensors)``; Keras 3's takes ``loss_weights`` third and
    ``weighted_metrics`` fourth. ``metrics`` and ``loss_weights`` get their names. A fifth
    or later argument by position is reported: Keras 3 has no ``sample_weight_mode`` or
    ``target_tensors``, and tf.keras 2 ordered the fifth on otherwise; not when the call
    becomes ``kutils.compile`` (``to_kutils``), which takes Keras 2's positions.
    """
    args = call.args
    if len(args) < 3 or len(args) > len(_POSITIONAL.within):
        return  # nothing after loss by position, or not Keras 2's compile
    if any(isinstance(arg, ast.Starred) for arg in args) or not _uses_keras(source):
        return
    if on_self or len(args) > 4:  # self.compile(...): a class's own compile, maybe
        if not to_kutils or on_self:
            source.report(args[2], _POSITIONAL.message)
        return
    for name, arg in zip(_POSITIONAL.within[2:], args[2:], strict=False):
        start, _ = source.span(arg)
        source.edits.append((start, start, f"{name}="))


def _uses_keras(source: Source) -> bool:
    return any(path.split(".")[0] in ("keras", "tensorflow") for path in source.bindings.values())


# -- compile(loss=[...], metrics=[...]) -------------------------------------------------


def compile_metrics(
    source: Source, call: ast.Call, scopes: tuple[ast.AST, ...], positional: bool = True
) -> None:
    """``metrics=['acc']`` of a model with ``n`` losses -> one list per output (the
    metrics and the losses given by name or, if ``positional``, by Keras 2's position)."""
    keywords = compile_arguments(call, positional)
    metrics, loss = keywords.get("metrics"), keywords.get("loss")
    if not isinstance(metrics, (ast.List, ast.Tuple)) or loss is None:
        return
    if not metrics.elts or any(_nested(item) for item in metrics.elts):
        return  # already per output, or not a plain list of metrics
    losses = _losses(loss, scopes[-1] if scopes else source.tree)
    if losses is None:
        if isinstance(loss, ast.Name):
            source.report(
                metrics,
                f"{_METRICS.message}; kutils cannot tell how many outputs the loss "
                f"{loss.id!r} is for",
            )
        return
    if len(losses) < 2:
        return
    start, end = source.span(metrics)
    text = source.text[start:end]
    if isinstance(losses, list):
        new = "[" + ", ".join([text] * len(losses)) + "]"
    else:
        new = "{" + ", ".join(f"{key}: {text}" for key in losses) + "}"
    source.edits.append((start, end, new))
    source.report(metrics, ORDER_NOTE)


# Reported with each rewrite: the values are Keras 2's, their order in a list may not be.
ORDER_NOTE = (
    "metrics given per output, as Keras 2 applied them; check the code that indexes "
    "what train_on_batch, test_on_batch or evaluate return: Keras 2 listed the metrics "
    "in output order after the losses, Keras 3 sorts them by name ('dense_1_accuracy' "
    "before 'dense_accuracy'); read them by name with return_dict=True"
)


def _nested(item: ast.AST) -> bool:
    return isinstance(item, (ast.List, ast.Tuple, ast.Dict, ast.Starred)) or (
        isinstance(item, ast.Constant) and item.value is None
    )


def _losses(loss: ast.AST, scope: ast.AST) -> list[ast.AST] | tuple[str, ...] | None:
    """The losses of ``loss`` one per output (a list, or a dict's key texts), or None
    when unknown; a single loss gives a list of one."""
    if isinstance(loss, ast.Name):
        loss = _assigned_once(loss.id, scope)  # type: ignore[assignment]
        if loss is None:
            return None
    if isinstance(loss, (ast.List, ast.Tuple)):
        if any(isinstance(item, ast.Starred) for item in loss.elts):
            return None
        return list(loss.elts)
    if isinstance(loss, ast.Dict):
        if any(not isinstance(k, ast.Constant) or not isinstance(k.value, str) for k in loss.keys):
            return None
        return tuple(repr(k.value) for k in loss.keys if isinstance(k, ast.Constant))
    if isinstance(loss, ast.Constant) and isinstance(loss.value, str):
        return [loss]
    return None


def _assigned_once(name: str, scope: ast.AST) -> ast.AST | None:
    """The literal a name is given by its one assignment in ``scope`` (not in nested
    functions or classes), or None when it is assigned otherwise, more than once, is a
    parameter, or is used as ``name.attribute`` (``losses.append``) there."""
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        arguments = scope.args
        every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
        if any(argument.arg == name for argument in every):
            return None
    values: list[ast.AST | None] = []
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Name) and node.id == name and not isinstance(node.ctx, ast.Load):
            values.append(None)  # a store we do not read the value of (for, with, del...)
        elif (isinstance(node, ast.Attribute) and _is_name(node.value, name)) or (
            isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names
        ):
            return None
        single = isinstance(node, ast.Assign) and len(node.targets) == 1
        if single and _is_name(node.targets[0], name):  # type: ignore[attr-defined]
            values.append(node.value)  # type: ignore[attr-defined]
            stack.extend(ast.iter_child_nodes(node.value))  # type: ignore[attr-defined]
            continue
        stack.extend(ast.iter_child_nodes(node))
    if len(values) != 1 or values[0] is None:
        return None
    return values[0]


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name

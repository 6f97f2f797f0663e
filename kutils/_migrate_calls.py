"""Use and call rewriting for ``kutils migrate``.

``keras.utils.X`` reached from a binding above it becomes ``kutils.X``;
``receiver.fit_generator(args)`` (each ``method`` rule with a ``keras3`` form) becomes
``fit_generator(receiver, args)``; the other rules of ``kutils._migrate_rules`` that
apply to uses, calls, keywords and classes are reported. Every edit replaces a whole
expression (a receiver keeps its own brackets), and a name the rewrite adds is one the
file does not use for anything else.
"""

from __future__ import annotations

import ast
from functools import partial
from typing import TYPE_CHECKING

from kutils import _migrate_batch as batch
from kutils import _migrate_defaults as defaults
from kutils import _migrate_imports as imports
from kutils import _migrate_iterators as iterators
from kutils import _migrate_model_calls as model_calls
from kutils import _migrate_names as names
from kutils import _migrate_rewrites as rewrites
from kutils import _migrate_rules as rules
from kutils import _migrate_sizes as sizes

if TYPE_CHECKING:
    from kutils._migrate_source import Source

Scopes = tuple[ast.AST, ...]

_METHODS = rules.by_kind("method")
_KEYWORDS: dict[str, list[rules.Rule]] = {}
for _rule in rules.RULES:
    if _rule.kind == "keyword":
        _KEYWORDS.setdefault(_rule.keras2, []).append(_rule)
_SAVING = next(iter(rules.by_kind("saving").values()))
_SAVING_BUILT = next(iter(rules.by_kind("saving-built").values()))
_OUTSIDE = rules.by_kind("outside-method")
_METHOD_KEYWORDS = rules.by_kind("method-keyword")
# Where a keyword of a method-keyword rule stands when passed by position (Keras 2's
# train_on_batch(x, y, sample_weight, class_weight)): the number of arguments before it.
_POSITIONS = {("train_on_batch", "class_weight"): 3, ("fit", "class_weight"): 9}
_KUTILS = ("kutils", "kutils.generators")
_CUSTOM_OBJECT = next(iter(rules.by_kind("custom-object").values()))
_TRAINABLE_COMPILE = rules.by_kind("trainable-compile")["compile"]
_CALLBACK_NAMES = {path.rsplit(".", 1)[-1] for path in rules.by_kind("callback-mode")}
_CALLBACK_NAMES |= {path.rsplit(".", 1)[-1] for path in rewrites.IGNORED}


def visit(source: Source, node: ast.AST, scopes: Scopes) -> bool:
    """Rewrite or report ``node``; False when its children need no visit."""
    kind = type(node)
    if kind is ast.Name:
        return node.id in source.watched and _chain(source, node, scopes)  # type: ignore[attr-defined,arg-type]
    if kind is ast.Attribute:
        return _chain(source, node, scopes)  # type: ignore[arg-type]
    if kind is ast.Call:
        _call(source, node, scopes)  # type: ignore[arg-type]
    elif kind is ast.ClassDef:
        _custom_object(source, node, scopes)  # type: ignore[arg-type]
    elif kind is ast.Import or kind is ast.ImportFrom:
        return False
    return True


def _chain_of(node: ast.AST) -> list[ast.AST] | None:
    """[Name, Attribute, Attribute...] of a dotted chain ending at ``node``."""
    nodes = [node]
    while isinstance(node, ast.Attribute):
        node = node.value
        nodes.append(node)
    if not isinstance(node, ast.Name):
        return None
    nodes.reverse()
    return nodes


def _names(nodes: list[ast.AST]) -> list[str]:
    return [n.id if isinstance(n, ast.Name) else n.attr for n in nodes]  # type: ignore[attr-defined]


def resolve(source: Source, node: ast.AST, scopes: Scopes) -> str | None:
    """The full path ``node`` (a dotted chain) refers to through the imports, or None."""
    nodes = _chain_of(node)
    if nodes is None:
        return None
    chain = _names(nodes)
    binding = source.bindings.get(chain[0])
    if binding is None or source.scopes.shadowed(chain[0], scopes):
        return None
    return names.normalize(".".join([binding, *chain[1:]]))


def _chain(source: Source, node: ast.Attribute | ast.Name, scopes: Scopes) -> bool:
    if isinstance(node, ast.Attribute):
        _method(source, node)
    nodes = _chain_of(node)
    if nodes is None:
        return True  # e.g. f().attr: look inside
    chain = _names(nodes)
    if chain[0] not in source.watched or source.scopes.shadowed(chain[0], scopes):
        return False
    binding = source.bindings[chain[0]]
    known = names.normalize(binding)

    def path_upto(last: int) -> str:
        return names.normalize(".".join([binding, *chain[1 : last + 1]]))

    path = path_upto(len(chain) - 1)
    # A chain that reaches keras.utils from a binding above it (keras.utils.X after
    # `import keras`, tf.keras.utils.X after `import tensorflow as tf`): to kutils.
    if path.startswith("keras.utils.") and not known.startswith("keras.utils"):
        at = next(k for k in range(1, len(chain)) if path_upto(k) == "keras.utils")
        if at + 1 < len(chain):
            _utils_use(source, node, nodes, chain[at + 1 :], at)
            return False
    if names.utils_target(known) is not None:
        # an alias of a keras.utils module, rewritten at its import: check the name
        top, legacy = names.tables()
        offered = top if known == "keras.utils" else legacy[known[12:]]
        if len(chain) > 1 and chain[1] not in offered:
            source.report(node, f"kutils does not offer {known}.{chain[1]}")
        return False
    if path.startswith("keras."):
        imports.check_path(source, node, path, known)
    elif known == "numpy" and isinstance(node, ast.Attribute) and len(chain) == 2:
        rewrites.numpy_alias(source, node, path)
    return False


def _utils_use(
    source: Source, node: ast.AST, nodes: list[ast.AST], rest: list[str], at: int
) -> None:
    """``keras.utils.<rest>`` reached through ``nodes[at]``: to kutils, or reported."""
    top, legacy = names.tables()
    if rest[0] in legacy and len(rest) > 1:
        if rest[1] in legacy[rest[0]]:
            _to_kutils(source, nodes[at + 2], f"kutils.{rest[0]}.{rest[1]}")
        else:
            source.report(
                node, f"kutils does not offer keras.utils.{rest[0]}.{rest[1]}; left unchanged"
            )
    elif rest[0] in top:
        _to_kutils(source, nodes[at + 1], f"kutils.{rest[0]}")
    elif rest[0] not in rules.KERAS3_UTILS:  # those stay in keras.utils
        source.report(node, f"kutils does not offer keras.utils.{rest[0]}; left unchanged")


def _to_kutils(source: Source, last: ast.AST, target: str) -> None:
    """Replace the whole expression ``last`` (brackets inside it included) by ``target``."""
    if source.taken("kutils"):
        source.report(last, f"this file uses the name kutils for something else: use {target}")
        return
    start, end = source.span(last)
    source.edits.append((start, end, target))
    source.needs_kutils = True


def _method(source: Source, node: ast.Attribute) -> None:
    rule = _METHODS.get(node.attr)
    if rule is None:
        return
    if rule.keras3 is None:
        source.report(node, rule.message)
        return
    owned = any(node.attr in methods for methods in source.own.methods.values())
    if not owned and not _on_kutils(source, node) and not getattr(node, "_kutils_called", False):
        source.report(
            node,
            f"{node.attr} used without a call: Keras 3 models have no {node.attr}; "
            f"call kutils.{node.attr}(model, ...) instead",
        )


def _on_kutils(source: Source, node: ast.Attribute) -> bool:
    """Whether ``node`` is an attribute of the kutils package (``kutils.fit_generator``)."""
    value = node.value
    return isinstance(value, ast.Name) and source.bindings.get(value.id) in _KUTILS


def _call(source: Source, call: ast.Call, scopes: Scopes) -> None:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    path = None
    handled: set[str] = set()
    if name in _CALLBACK_NAMES or (call.keywords and name and name[:1].isupper()):
        path = resolve(source, func, scopes) or ""
        if path.startswith("keras.optimizers."):
            handled = rewrites.optimizer_keywords(source, call, path)
        elif path.startswith("keras.layers."):
            handled = batch.layer_call(source, call, path, lambda n: resolve(source, n, scopes))
        callback = path.replace(".callbacks.callbacks.", ".callbacks.")
        rewrites.callback_mode(source, call, callback)
        if not _through_tensorflow(source, func):  # tf.keras's TensorBoard is another
            handled |= rewrites.ignored_keywords(source, call, callback)
    if name in source.default_classes:
        path = path if path is not None else resolve(source, func, scopes) or ""
        defaults.class_call(source, call, path)
    elif name == "compile" and isinstance(func, ast.Attribute):
        defaults.compile_call(source, call)
    if name in sizes.LAYER_SIZES:
        path = path if path is not None else resolve(source, func, scopes) or ""
        sizes.numpy_layer_sizes(source, call, path, scopes, partial(resolve, source))
    for keyword_ in call.keywords:
        if keyword_.arg in handled:
            continue
        for rule in _KEYWORDS.get(keyword_.arg or "", ()):
            if path is None and any(w.endswith(".") for w in rule.within):
                path = resolve(source, func, scopes) or ""
            if f".{name}" in rule.within or any(
                w.endswith(".") and (path or "").startswith(w) for w in rule.within
            ):
                source.report(keyword_, rule.message)
    if name == "next":
        iterators.iterator_next(source, call, scopes, lambda n: resolve(source, n, scopes))
    method = _METHODS.get(name or "")
    if method is not None and method.keras3 is not None and isinstance(func, ast.Attribute):
        func._kutils_called = True  # type: ignore[attr-defined]
        _method_to_function(source, call, func, method)
    if name in model_calls.WEIGHT_CALLS and _weights_call(source, call, func, name):
        pass  # through kutils: any file name is fine
    elif name in _SAVING.within and not _kutils_function(source, func, "save_weights"):
        _check_saving(source, call)
    conditional = _METHOD_KEYWORDS.get(name or "")
    if (
        conditional is not None
        and isinstance(func, ast.Attribute)
        and _passes_keyword(call, name or "", conditional.within)
    ):
        _method_to_function(source, call, func, conditional)
    if name == "compile" and isinstance(func, ast.Attribute):
        _compile(source, call, func, scopes)
    outside = _OUTSIDE.get(name or "")
    if outside is not None and isinstance(func, ast.Attribute) and not _on_self(func):
        _outside_method(source, call, func, outside)


def _compile(source: Source, call: ast.Call, func: ast.Attribute, scopes: Scopes) -> None:
    """``model.compile(...)``: arguments by position, metrics per output, kutils.compile."""
    receiver = resolve(source, func.value, scopes)
    if receiver is not None and not receiver.startswith(("keras", "kutils")):
        return  # re.compile(...), an imported module's compile: not a model's
    # kutils.compile(model, ...): rewritten already, its positions are not compile's.
    migrated = _on_kutils(source, func)
    to_kutils = _sets_trainable(source) and not _on_self(func)
    if not migrated:  # kutils.compile takes Keras 2's positions: only the report goes
        model_calls.compile_positional(source, call, _on_self(func), to_kutils)
    model_calls.compile_metrics(source, call, scopes, positional=not migrated)
    if to_kutils:
        _method_to_function(source, call, func, _TRAINABLE_COMPILE)


def _outside_method(source: Source, call: ast.Call, func: ast.Attribute, rule: rules.Rule) -> None:
    if rule.within and not _fits_signature(call, rule.within):
        return  # not a call Keras 2's method accepted: another library's method
    if rule.keras3 is None:
        source.report(func, rule.message)
    else:
        _method_to_function(source, call, func, rule)


def _fits_signature(call: ast.Call, parameters: tuple[str, ...]) -> bool:
    """Whether ``call`` passes only what a method of these ``parameters`` takes."""
    if any(isinstance(arg, ast.Starred) for arg in call.args) or len(call.args) > len(parameters):
        return False
    named = parameters[len(call.args) :]
    keywords = [keyword_.arg for keyword_ in call.keywords]
    first_given = bool(call.args) or parameters[0] in keywords
    return first_given and all(keyword_ in named for keyword_ in keywords)


def _sets_trainable(source: Source) -> bool:
    """Whether the file assigns ``.trainable`` on something (``d.trainable = False``)."""
    found = getattr(source, "_sets_trainable", None)
    if found is None:
        found = ".trainable" in source.text and any(
            isinstance(target, ast.Attribute) and target.attr == "trainable"
            for node in ast.walk(source.tree)
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign))
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
        source._sets_trainable = found  # type: ignore[attr-defined]
    return bool(found)


def _passes_keyword(call: ast.Call, name: str, keywords: tuple[str, ...]) -> bool:
    """Whether ``call`` passes one of ``keywords``, by name or by position."""
    if any(keyword_.arg in keywords for keyword_ in call.keywords):
        return True
    positions = [_POSITIONS.get((name, keyword_), -1) for keyword_ in keywords]
    starred = any(isinstance(arg, ast.Starred) for arg in call.args)
    return not starred and any(0 <= at < len(call.args) for at in positions)


def _weights_call(source: Source, call: ast.Call, func: ast.expr, name: str) -> bool:
    """``x.save_weights(name)``/``x.load_weights(name)`` rewritten to kutils, if it is one
    whose name the weights-name rule does not rename (``kutils._migrate_model_calls``)."""
    if not isinstance(func, ast.Attribute) or _on_kutils(source, func):
        return False
    if not model_calls.weights_call_through_kutils(call, name, source.kept_weights):
        return False
    _method_to_function(source, call, func, model_calls.WEIGHT_CALLS[name])
    return True


def _kutils_function(source: Source, func: ast.expr, name: str) -> bool:
    """``func`` is kutils' function ``name`` (``save_weights`` imported from kutils)."""
    if isinstance(func, ast.Name):
        return source.bindings.get(func.id) == f"kutils.{name}"
    return isinstance(func, ast.Attribute) and func.attr == name and _on_kutils(source, func)


def _on_self(func: ast.Attribute) -> bool:
    """``self.method`` or ``super().method``: a layer's own method, inside its class."""
    receiver = func.value
    if isinstance(receiver, ast.Name):
        return receiver.id == "self"
    return (
        isinstance(receiver, ast.Call)
        and isinstance(receiver.func, ast.Name)
        and receiver.func.id == "super"
    )


def _through_tensorflow(source: Source, func: ast.AST) -> bool:
    """Whether ``func`` is reached from a ``tensorflow`` import (``tf.keras.X``)."""
    nodes = _chain_of(func)
    if nodes is None:
        return False
    binding = source.bindings.get(_names(nodes)[0], "")
    return binding == "tensorflow" or binding.startswith("tensorflow.")


def _check_saving(source: Source, call: ast.Call) -> None:
    for value in [*call.args, *(k.value for k in call.keywords)]:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            if _legacy_h5(value.value):
                source.report(value, _SAVING.message)
                return
        elif _legacy_h5(model_calls.built_name_end(value)):
            source.report(value, _SAVING_BUILT.message)
            return


def _legacy_h5(name: str) -> bool:
    lowered = name.lower()
    return lowered.endswith((".h5", ".hdf5")) and not lowered.endswith(".weights.h5")


def _method_to_function(
    source: Source, call: ast.Call, func: ast.Attribute, rule: rules.Rule
) -> None:
    """``receiver.method(args)`` -> ``function(receiver, args)``, or a report."""
    assert rule.keras3 is not None
    if _on_kutils(source, func):
        return  # kutils.fit_generator(model, ...): migrated already
    receiver = func.value
    if isinstance(receiver, ast.Call) and getattr(receiver.func, "id", None) == "super":
        return  # super().reset_states(): the method of a class the file subclasses
    kind = source.own.receiver(func.value, call.lineno, func.attr)
    if kind == "own":  # the file's own class: its own method
        return
    if kind == "mixed":
        source.report(
            func,
            f"cannot tell whether this {func.attr} is a Keras model's or one of this "
            f"file's classes': if it is a model's, write {func.attr}(model, ...) with "
            f"'from kutils import {func.attr}'",
        )
        return
    function = rule.keras3.rsplit(".", 1)[-1]
    if source.taken(function):
        if source.taken("kutils"):
            source.report(func, f"{function} and kutils name other things here: {rule.message}")
            return
        function = rule.keras3
        source.needs_kutils = True
    else:
        source.functions.add(function)
    _replace_receiver(source, call, func, function)


def _replace_receiver(source: Source, call: ast.Call, func: ast.Attribute, function: str) -> None:
    text = source.text
    start, _ = source.span(func)  # the receiver with its own brackets
    _, receiver_end = source.span(func.value)
    found = _after_receiver(text, receiver_end, func.attr)
    if found is None:
        source.report(func, f"cannot read this call of {func.attr}: change it by hand")
        return
    closing, opener = found
    after = opener + 1
    if not call.args and not call.keywords:
        separator = ""
    elif text[after : after + 1] in ("\n", "\r", "\\", "#"):
        separator = ","
    else:
        separator = ", "
    receiver = text[start:receiver_end] + closing
    source.edits.append((start, after, f"{function}({receiver}{separator}"))


def _after_receiver(text: str, index: int, attr: str) -> tuple[str, int] | None:
    """Read ``) ) . attr (`` after a receiver ending at ``index``.

    Returns the text to keep after the receiver (its closing brackets, and comments with
    their line breaks, which must end a line) and the offset of the call's ``(``.
    """
    kept: list[str] = []
    spaces = ""  # kept only before a comment
    dot = False
    while index < len(text):
        char = text[index]
        if char == "#":
            end = index
            while end < len(text) and text[end] not in "\r\n":
                end += 1
            if text.startswith("\r\n", end):
                end += 1
            kept.append(spaces + text[index : end + 1])
            spaces, index = "", end + 1
            continue
        if char in " \t\f":
            spaces += char
        elif char in "\r\n\\":
            spaces = ""
        elif char == ")" and not dot:
            kept.append(char)
        elif char == "." and not dot:
            dot = True
        elif dot and text.startswith(attr, index):
            index += len(attr) - 1
        elif dot and char == "(":
            return "".join(kept), index
        else:
            return None
        if char not in " \t\f":
            spaces = ""
        index += 1
    return None


def _custom_object(source: Source, node: ast.ClassDef, scopes: Scopes) -> None:
    bases = {resolve(source, base, scopes) for base in node.bases}
    if not bases & rules.CUSTOM_OBJECT_BASES:
        return
    methods = {
        item.name: item
        for item in node.body
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    init = methods.get("__init__")
    if init is None or "get_config" in methods:
        return
    arguments = init.args
    params = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs][1:]
    if params:
        source.report(node, _CUSTOM_OBJECT.message.format(name=node.name))

"""The Keras 2 to Keras 3 rewrites of ``kutils migrate`` beyond ``keras.utils``.

Each function here rewrites one kind of rule of ``kutils._migrate_rules`` that has a
``keras3`` form, or returns False (or reports) when the rewrite cannot be shown to keep
the meaning; the caller then reports the rule as before. Every edit replaces a span the
syntax tree places exactly; nothing else in the file changes.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from kutils import _migrate_rules as rules
from kutils import _migrate_tables as tables

if TYPE_CHECKING:
    from kutils._migrate_source import Source

_MODULES = {p: r for p, r in rules.by_kind("module").items() if r.keras3 is not None}
_NUMPY = rules.by_kind("numpy")
_NAMES = rules.by_kind("name")
_CALLBACKS = rules.by_kind("callback-mode")
# Keras 2.3.1's default learning rate of each optimizer that takes decay=.
_DEFAULT_LR = {
    "SGD": "0.01",
    "RMSprop": "0.001",
    "Adagrad": "0.01",
    "Adadelta": "1.0",
    "Adam": "0.001",
    "Adamax": "0.002",
}
# The position of monitor= and of mode= among each callback's positional arguments.
_CALLBACK_POSITIONS = {
    "ModelCheckpoint": (1, 5),
    "EarlyStopping": (0, 4),
    "ReduceLROnPlateau": (0, 4),
}


def module_rule(path: str) -> rules.Rule | None:
    """The module rule with a Keras 3 home that covers ``path``, if any."""
    parts = path.split(".")
    for size in range(2, len(parts) + 1):
        rule = _MODULES.get(".".join(parts[:size]))
        if rule is not None:
            return rule
    return None


def from_import(source: Source, statement: ast.ImportFrom, module: str) -> bool:
    """``from keras.layers.core import Dense`` -> ``from keras.layers import Dense``;
    ``from keras.layers import recurrent`` -> ``from keras import layers as recurrent``."""
    from kutils._migrate_source import replace_from_module

    rule = module_rule(module)
    items = statement.names
    if _to_kutils_names(source, statement, module):
        return True
    if rule is not None:
        assert rule.keras3 is not None
        if all(item.name in tables.offered(rule.keras3) for item in items):
            replace_from_module(source, statement, rule.keras3)
            return True
        return False
    if len(items) != 1 or items[0].name == "*":
        return False
    item = items[0]
    rule = _MODULES.get(f"{module}.{item.name}")
    if rule is None or rule.keras3 is None:
        return False
    bound = item.asname or item.name
    if not _uses_offered(source, bound, rule.keras3):
        return False
    parent, last = rule.keras3.rsplit(".", 1)
    start, end = source.span(statement)
    source.edits.append((start, end, f"from {parent} import {last} as {bound}"))
    return True


def _to_kutils_names(source: Source, statement: ast.ImportFrom, module: str) -> bool:
    """``from keras.models import load_model, Sequential`` -> kutils's load_model, apart."""
    from kutils._migrate_source import replace_from_module, split_import

    def ours(item: ast.alias) -> bool:
        rule = _NAMES.get(f"{module}.{item.name}")
        return rule is not None and (rule.keras3 or "").startswith("kutils.")

    mine = [item for item in statement.names if ours(item)]
    if not mine:
        return False
    others = [item for item in statement.names if not ours(item)]
    if not others:
        replace_from_module(source, statement, "kutils")
    else:
        split_import(source, statement, mine, others)
    return True


def plain_import(source: Source, item: ast.alias, module: str) -> bool:
    """``import keras.layers.core as core`` -> ``import keras.layers as core``."""
    from kutils._migrate_source import replace_name

    rule = _MODULES.get(module)
    if rule is None or rule.keras3 is None or item.asname is None:
        return False
    if not _uses_offered(source, item.asname, rule.keras3):
        return False
    replace_name(source, item, item.name, rule.keras3)
    return True


def _uses_offered(source: Source, bound: str, target: str) -> bool:
    """Whether every ``bound.X`` in the file names something ``target`` offers."""
    used = re.findall(rf"(?<![\w.]){re.escape(bound)}\s*\.\s*(\w+)", source.text)
    return all(name in tables.offered(target) for name in used)


def rename(source: Source, node: ast.AST, rule: rules.Rule) -> bool:
    """A removed alias (``keras.losses.mse``) to its Keras 3 name, at its import or use."""
    assert rule.keras3 is not None
    old = rule.keras2.rsplit(".", 1)[-1]
    start, end = source.span(node)
    if isinstance(node, ast.alias):
        if source.text[start : start + len(old)] != old:
            return False
        new = rule.keras3 if node.asname else f"{rule.keras3} as {old}"
        source.edits.append((start, start + len(old), new))
        return True
    if rule.keras3.startswith("kutils.") and isinstance(node, ast.Attribute):
        if source.taken("kutils"):
            return False
        source.edits.append((start, end, rule.keras3))
        source.needs_kutils = True
        return True
    if isinstance(node, ast.Attribute) and source.text[end - len(old) : end] == old:
        source.edits.append((end - len(old), end, rule.keras3))
        return True
    return False


def backend_function(source: Source, node: ast.AST, rule: rules.Rule) -> bool:
    """``K.mean`` -> ``keras.ops.mean``, ``K.clip`` -> ``kutils.backend.clip`` (the use,
    called or not: the Keras 3 form takes the same arguments)."""
    assert rule.keras3 is not None
    if not isinstance(node, ast.Attribute):
        return False
    start, end = source.span(node)
    if rule.keras3.startswith("kutils."):
        if source.taken("kutils"):
            return False
        source.edits.append((start, end, rule.keras3))
        source.needs_kutils = True
        return True
    keras = keras_name(source, node)
    if keras is None:
        return False  # reported, and the caller reports the fix
    source.edits.append((start, end, keras + rule.keras3[len("keras") :]))
    return True


def numpy_alias(source: Source, node: ast.Attribute, path: str) -> bool:
    """``np.float`` -> ``float`` (numpy's own advice), unless the file rebinds ``float``."""
    rule = _NUMPY.get(path)
    if rule is None or rule.keras3 is None:
        return False
    if _rebound(source, rule.keras3):
        source.report(node, f"{rule.message} (this file binds {rule.keras3} itself)")
        return True
    start, end = source.span(node)
    source.edits.append((start, end, rule.keras3))
    return True


def _rebound(source: Source, name: str) -> bool:
    from kutils._migrate_names import _binds

    if not re.search(
        rf"\b{name}\b\s*(=|:|,|\))|\bdef\s+{name}\b|\bimport\b.*\b{name}\b", source.text
    ):
        return False
    return any(_binds(node, name) for node in ast.walk(source.tree)) or name in source.bindings


def optimizer_keywords(source: Source, call: ast.Call, path: str) -> set[str]:
    """``lr=`` -> ``learning_rate=``; ``decay=d`` -> an InverseTimeDecay schedule.

    Returns the keywords handled (rewritten or reported here).
    """
    given = {k.arg: k for k in call.keywords if k.arg}
    if "lr" not in given and "decay" not in given:
        return set()
    if "lr" in given and "learning_rate" in given:
        return set()  # both: Keras 2 itself rejected this call; leave the report
    decay = given.get("decay")
    if decay is None:
        _rename_keyword(source, given["lr"], "learning_rate")
        return {"lr"}
    name = path.rsplit(".", 1)[-1]
    rate_keyword = given.get("lr") or given.get("learning_rate")
    if rate_keyword is None and (call.args or name not in _DEFAULT_LR):
        return set()
    keras = keras_name(source, call)
    if keras is None:
        return {"decay"}
    rate = _text(source, rate_keyword.value) if rate_keyword else _DEFAULT_LR[name]
    schedule = (
        f"learning_rate={keras}.optimizers.schedules.InverseTimeDecay("
        f"{rate}, decay_steps=1, decay_rate={_text(source, decay.value)})"
    )
    if rate_keyword is None:
        start, end = source.span(decay)
        source.edits.append((start, end, schedule))
        return {"decay"}
    removal = _removal_span(source, call, decay)
    if removal is None:
        source.report(
            decay, "decay= next to a comment: " + rules.by_kind("keyword")["decay"].message
        )
        return {"decay", "lr"}
    start, end = source.span(rate_keyword)
    source.edits.append((start, end, schedule))
    source.edits.append((*removal, ""))
    return {"decay", "lr"}


def _text(source: Source, node: ast.AST) -> str:
    start, end = source.span(node)
    return source.text[start:end]


def _rename_keyword(source: Source, keyword: ast.keyword, new: str) -> None:
    start, _ = source.span(keyword)
    assert keyword.arg is not None
    if source.text.startswith(keyword.arg, start):
        source.edits.append((start, start + len(keyword.arg), new))


def _removal_span(source: Source, call: ast.Call, keyword: ast.keyword) -> tuple[int, int] | None:
    """The span of ``, keyword=value`` (the comma before it), if only spaces surround it."""
    arguments: list[ast.expr | ast.keyword] = [*call.args, *call.keywords]
    arguments.sort(key=lambda n: (n.lineno, n.col_offset))
    index = arguments.index(keyword)
    start, end = source.span(keyword)
    if index == 0:
        return None
    _, previous_end = source.span(arguments[index - 1])
    between = source.text[previous_end:start]
    if between.strip() != ",":
        return None
    return previous_end, end


def keras_name(source: Source, node: ast.AST) -> str | None:
    """The name the file binds to ``keras`` (added as ``import keras`` if none)."""
    from kutils._migrate_names import normalize

    for name, path in source.bindings.items():
        if normalize(path) == "keras":
            return name
    if source.taken("keras") or re.search(r"(?<![\w.])keras\b", _module_names(source)):
        source.report(
            node, "this file uses the name keras for something else: import keras by hand"
        )
        return None
    source.needs_keras = True
    return "keras"


def _module_names(source: Source) -> str:
    return " ".join(source.bindings)


def callback_mode(source: Source, call: ast.Call, path: str) -> bool:
    """Write out the mode Keras 2 inferred from ``monitor`` (``mode='max'`` for ``val_acc``)."""
    rule = _CALLBACKS.get(path)
    if rule is None:
        return False
    name = path.rsplit(".", 1)[-1]
    monitor_at, mode_at = _CALLBACK_POSITIONS[name]
    given = {k.arg: k for k in call.keywords if k.arg}
    if len(call.args) > mode_at:
        return False  # mode given by position
    if any(k.arg is None for k in call.keywords) or any(
        isinstance(a, ast.Starred) for a in call.args
    ):
        source.report(call, rule.message)
        return True
    mode = given.get("mode")
    if mode is not None and not (
        isinstance(mode.value, ast.Constant) and mode.value.value == "auto"
    ):
        return False  # explicit already
    monitor = given["monitor"].value if "monitor" in given else None
    if monitor is None and len(call.args) > monitor_at:
        monitor = call.args[monitor_at]
    value = "val_loss" if monitor is None else getattr(monitor, "value", None)
    if not isinstance(value, str):
        source.report(call, rule.message)
        return True
    quote = '"' if monitor is not None and _text(source, monitor).startswith('"') else "'"
    inferred = "max" if any(_matches(value, word) for word in rule.within) else "min"
    if value.removeprefix("val_") == "loss" and inferred == "min":
        return False  # Keras 3 infers min for loss too
    if mode is not None:
        start, end = source.span(mode.value)
        source.edits.append((start, end, f"{quote}{inferred}{quote}"))
        return True
    _append_keyword(source, call, f"mode={quote}{inferred}{quote}")
    return True


def _matches(monitor: str, word: str) -> bool:
    return monitor.startswith(word) if word == "fmeasure" else word in monitor


def _append_keyword(source: Source, call: ast.Call, keyword: str) -> None:
    """Add ``keyword`` after the call's last argument (or inside its empty brackets)."""
    arguments = [*call.args, *call.keywords]
    _, end = source.span(call)
    if not arguments:
        source.edits.append((end - 1, end - 1, keyword))
        return
    last_end = max(source.span(a)[1] for a in arguments)
    source.edits.append((last_end, last_end, f", {keyword}"))


# The ignored-keyword rules, by the call they apply to and the keyword.
IGNORED: dict[str, dict[str, rules.Rule]] = {}
for _rule in rules.RULES:
    if _rule.kind == "ignored-keyword":
        for _call in _rule.within:
            IGNORED.setdefault(_call, {})[_rule.keras2] = _rule
# Keras 2.3.1's parameters of each such call, in order, and how many of the first ones
# Keras 3 takes in the same positions (the others are written as keywords).
_KERAS2_PARAMETERS = {
    "keras.callbacks.TensorBoard": (
        "log_dir",
        "histogram_freq",
        "batch_size",
        "write_graph",
        "write_grads",
        "write_images",
        "embeddings_freq",
        "embeddings_layer_names",
        "embeddings_metadata",
        "embeddings_data",
        "update_freq",
    ),
}
_KERAS3_SAME_POSITIONS = {"keras.callbacks.TensorBoard": 2}


def ignored_keywords(source: Source, call: ast.Call, path: str) -> set[str]:
    """``TensorBoard(log_dir, batch_size=32)`` -> ``TensorBoard(log_dir)``.

    Removes the arguments Keras 2.3.1 ignored, given by keyword or by position, and
    writes the call's later positional arguments as keywords (Keras 3 orders its
    parameters otherwise). Returns the keywords handled (rewritten or reported here).
    """
    ignored = IGNORED.get(path)
    if ignored is None:
        return set()
    parameters = _KERAS2_PARAMETERS[path]
    arguments: list[ast.expr | ast.keyword] = [*call.args, *call.keywords]
    arguments.sort(key=lambda n: (n.lineno, n.col_offset))
    names = [
        node.arg if isinstance(node, ast.keyword) else parameters[min(i, len(parameters) - 1)]
        for i, node in enumerate(arguments)
    ]
    same = _KERAS3_SAME_POSITIONS[path]
    dropped = [name in ignored for name in names]
    moved = [isinstance(node, ast.expr) and i >= same for i, node in enumerate(arguments)]
    if not any(dropped) and not any(moved):
        return set()
    unknown = any(isinstance(a, ast.Starred) for a in call.args) or None in names
    _, call_end = source.span(call)
    ends = [source.span(node)[1] for node in arguments]
    starts = [source.span(node)[0] for node in arguments]
    gaps = [source.text[e:s] for e, s in zip(ends, [*starts[1:], call_end - 1], strict=True)]
    if unknown or len(call.args) > len(parameters) or any("#" in gap for gap in gaps):
        for node, name in zip(arguments, names, strict=True):
            if name in ignored:
                source.report(node, ignored[name].message)
        if any(moved):
            source.report(call, f"{path.rsplit('.', 1)[-1]}: {_ORDER_MESSAGE}")
        return set(ignored)
    # An argument is removed up to the next one (its line breaks kept); those after the
    # last argument kept, from the end of that argument (its comma with them).
    kept = [i for i, drop in enumerate(dropped) if not drop]
    last = kept[-1] if kept else -1
    for i in range(len(arguments)):
        if dropped[i] and i < last:
            source.edits.append((starts[i], starts[i + 1], ""))
        elif moved[i]:
            source.edits.append((starts[i], starts[i], f"{names[i]}="))
    if last < len(arguments) - 1:
        start = ends[last] if kept else starts[0]
        source.edits.append((start, ends[-1] if kept else call_end - 1, ""))
    return set(ignored)


_ORDER_MESSAGE = (
    "Keras 3 orders the parameters after histogram_freq otherwise than Keras 2.3.1: write "
    "the arguments after the second as keywords, without the ones Keras 2.3.1 ignored"
)

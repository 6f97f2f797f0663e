"""Import rewriting for ``kutils migrate``: Keras 2 utilities imports become kutils imports.

``from keras.utils import X`` -> ``from kutils import X``, ``import keras.utils.np_utils
as nu`` -> ``import kutils.np_utils as nu``, ``from keras import utils`` -> ``import
kutils as utils``, ... Names kutils does not offer stay in ``keras.utils`` when Keras 3
has them, else are reported. Imports of other removed Keras paths are reported
(:func:`check_path`, shared with the uses).
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from kutils import _migrate_names as names
from kutils import _migrate_rewrites as rewrites
from kutils import _migrate_rules as rules
from kutils._migrate_source import replace_from_module, replace_name, split_import

if TYPE_CHECKING:
    from kutils._migrate_source import Source

_NEWLINES = re.compile(r"\r\n|\r|\n")
_MODULES = rules.by_kind("module")
_NAMES = rules.by_kind("name")
_BACKEND = rules.by_kind("backend")


def bind(source: Source, statement: ast.Import | ast.ImportFrom) -> None:
    """Record what the names the statement binds refer to."""
    for item in statement.names:
        if isinstance(statement, ast.Import):
            if item.asname is None:
                head = item.name.split(".")[0]
                source.bindings[head] = head
            else:
                source.bindings[item.asname] = item.name
        elif not statement.level and statement.module and item.name != "*":
            source.bindings[item.asname or item.name] = f"{statement.module}.{item.name}"


def rewrite_import(source: Source, statement: ast.Import | ast.ImportFrom) -> None:
    if isinstance(statement, ast.Import):
        _rewrite_plain_import(source, statement)
        return
    if statement.level or not statement.module:
        return
    module = names.normalize(statement.module)
    target = names.utils_target(module)
    if target is not None:
        _rewrite_utils_import(source, statement, module, target)
        return
    item_names = [item.name for item in statement.names]
    if module == "keras" and "utils" in item_names:
        item = statement.names[item_names.index("utils")]
        if len(item_names) == 1:
            start, end = source.span(statement)
            source.edits.append((start, end, f"import kutils as {item.asname or 'utils'}"))
        else:
            source.report(
                item,
                f"from {statement.module} import utils: move utils to its own line as "
                "'import kutils as utils' (the other names stay)",
            )
        return
    if rewrites.from_import(source, statement, module):
        return
    check_path(source, statement, module, "")
    for item in statement.names:
        check_path(source, item, f"{module}.{item.name}", module)


def _rewrite_plain_import(source: Source, statement: ast.Import) -> None:
    leading = any(statement is s for s in source.leading)
    for item in statement.names:
        if item.name.split(".")[0] == "kutils" and item.asname is None and leading:
            source.kutils_leading = True
        module = names.normalize(item.name)
        target = names.utils_target(module)
        if target is None:
            if not rewrites.plain_import(source, item, module):
                check_path(source, item, module, "")
            continue
        if item.asname is None:
            # `import keras.utils.np_utils` also binds `keras`: keep it bound.
            target = f"{item.name.split('.')[0]}, {target}"
            source.kutils_leading = source.kutils_leading or leading
        replace_name(source, item, item.name, target)


def _rewrite_utils_import(
    source: Source, statement: ast.ImportFrom, module: str, target: str
) -> None:
    """``from keras.utils[.legacy] import ...``: to kutils, split, or reported."""
    top_names, legacy = names.tables()
    offered = top_names if target == "kutils" else legacy[target[7:]]
    ours = [item for item in statement.names if item.name in offered | {"*"}]
    others = [item for item in statement.names if item not in ours]
    # Names Keras 3's keras.utils still has may stay there.
    missing = [
        item for item in others if module != "keras.utils" or item.name not in rules.KERAS3_UTILS
    ]
    for item in missing:
        source.report(
            item,
            f"kutils does not offer {statement.module}.{item.name}: this import was "
            "left unchanged; use the Keras 3 replacement, if any, by hand",
        )
    if not others:
        if any(item.name == "*" for item in ours) and module == "keras.utils":
            _rewrite_star_import(source, statement, offered)
        else:
            replace_from_module(source, statement, target)
    elif ours and not missing:
        split_import(source, statement, ours, others)


def _rewrite_star_import(
    source: Source, statement: ast.ImportFrom, offered: frozenset[str]
) -> None:
    """``from keras.utils import *``: to kutils, keeping the Keras 3 names the file uses.

    kutils offers every name of Keras 2.3.1's ``keras.utils``; tf.keras 2 (and Keras
    3) had more (``set_random_seed``...). Those the file uses are imported from the
    original module on a line of their own, so that none is lost.
    """
    extra = sorted(rules.KERAS3_UTILS - offered)
    if not extra:
        replace_from_module(source, statement, "kutils")
        return
    pattern = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, extra)) + r")\b")
    used = sorted(set(pattern.findall(source.text)))
    if not used:
        replace_from_module(source, statement, "kutils")
        return
    start, end = source.span(statement)
    indent = source.text[source.starts[statement.lineno - 1] : start]
    if statement.lineno != statement.end_lineno or indent.strip():
        source.report(statement, _keep_names_message(statement, used))
        return
    new = (
        f"from kutils import *{source.newline}"
        f"{indent}from {statement.module} import {', '.join(used)}"
    )
    source.edits.append((start, end, new))


def _keep_names_message(statement: ast.ImportFrom, used: list[str]) -> str:
    return (
        f"from {statement.module} import *: the file uses {', '.join(used)}, which kutils "
        f"does not offer; write 'from kutils import *' and 'from {statement.module} "
        f"import {', '.join(used)}' on lines of their own"
    )


def check_path(source: Source, node: ast.AST, path: str, known: str) -> None:
    """Report ``path`` if a rule names it; ``known`` was reported already (its import)."""
    parts = path.split(".")
    for size in range(2, len(parts) + 1):
        prefix = ".".join(parts[:size])
        rule = _MODULES.get(prefix)
        if rule is not None:
            if not (known == prefix or known.startswith(prefix + ".")):
                source.report(node, rule.message)
            return
    if path in _NAMES and known != path:
        rule = _NAMES[path]
        if rule.keras3 is None or not rewrites.rename(source, node, rule):
            source.report(node, rule.message)
        return
    if path.startswith("keras.backend.") and known != path:
        function = path.split(".")[2]
        if function in rules.BACKEND_KEPT:
            return
        rule = _BACKEND.get(function)
        rewritable = rule is not None and rule.keras3 is not None and len(parts) == 3
        if rewritable and rewrites.backend_function(source, node, rule):  # type: ignore[arg-type]
            return
        message = rule.message if rule is not None else "see keras.ops for its replacement"
        source.report(node, f"keras.backend.{function} is not in Keras 3: {message}")

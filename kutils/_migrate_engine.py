"""The rewriting engine of ``kutils migrate``: one source text in, the rewritten text out.

The file is parsed once by Python's own parser (``ast``); its node positions locate the
spans to rewrite, and only those spans are replaced in the source text, so comments,
formatting, line endings and the encoding are kept byte for byte. A full pass of
``tokenize`` over every file cost more than the whole 10 s budget of 1,000 files on the
reference machine; ``tokenize`` reads only the few ``from ... import`` statements whose
module name is rewritten (the syntax tree does not place it).

The passes: collect the imports (in every syntactic position), bind their names
(``kutils._migrate_names``), rewrite them (``kutils._migrate_imports``), then visit the
uses of the watched names and the calls (``kutils._migrate_calls``), add the imports the
rewrites need, and apply the edits. What to look for is in ``kutils._migrate_rules``.
Statements whose lines mention nothing the engine looks for are skipped unvisited.
"""

from __future__ import annotations

import ast
import bisect
import re
from collections.abc import Callable

from kutils import _migrate_batch as batch
from kutils import _migrate_calls as calls
from kutils import _migrate_defaults as defaults
from kutils import _migrate_imports as imports
from kutils import _migrate_names as names
from kutils import _migrate_rewrites as rewrites
from kutils import _migrate_rules as rules
from kutils import _migrate_sizes as sizes
from kutils._migrate_source import Findings, Source

_NUMPY_ALIAS = re.compile(r"\.\s*(?:" + "|".join(p[6:] for p in rules.by_kind("numpy")) + r")\b")
_IMPORT_LINE = re.compile(r"^[^\r\n]*?\bimport\b", re.MULTILINE)
# Nodes without anything to migrate below them.
_LEAVES = (ast.expr_context, ast.Constant, ast.operator, ast.boolop, ast.cmpop, ast.unaryop)
# Fields that never hold a node worth visiting.
_NOT_CHILDREN = frozenset({"ctx", "op", "ops", "id", "attr", "name", "asname", "arg", "level"})
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
# Comprehensions bind their variables in a scope of their own: every field is inside it.
_COMPREHENSIONS = names.COMPREHENSIONS


def rewrite(
    text: str, tree: ast.Module, kept_weights: frozenset[str] = frozenset()
) -> tuple[str, Findings, int]:
    """Rewrite ``text`` (whose syntax tree is ``tree``): new text, findings, edits made.

    ``kept_weights``: weights file names whose literal saves and loads go through kutils
    (``kutils._migrate_model_calls``).
    """
    source = Source(text, tree)
    source.kept_weights = kept_weights
    found: list[ast.Import | ast.ImportFrom] = []
    source.lines = _lines(source, _IMPORT_LINE)
    walk(source, lambda node, scopes: _collect_import(node, found))
    for statement in found:
        imports.bind(source, statement)
    for statement in found:
        imports.rewrite_import(source, statement)
    numpy_aliases = _NUMPY_ALIAS.search(text) is not None
    source.watched = {
        name
        for name, path in source.bindings.items()
        if names.watched(path) or (path == "numpy" and numpy_aliases)
    }
    words = source.watched | set(rules.by_kind("method")) | {"class", "weights"}
    words |= set(batch.KEYWORDS)
    source.default_classes = defaults.CLASS_NAMES | defaults.bound_names(source)
    words |= source.default_classes | {"compile"}
    words |= set(rules.by_kind("outside-method")) | set(sizes.LAYER_SIZES)
    words |= set(rules.by_kind("weights-call")) | set(rules.by_kind("compile-metrics"))
    words |= set(rules.by_kind("method-keyword"))
    words |= {path.rsplit(".", 1)[-1] for path in rules.by_kind("callback-mode")}
    words |= {path.rsplit(".", 1)[-1] for path in rewrites.IGNORED}
    words |= {"next"} if "ImageDataGenerator" in text else set()
    words |= {name for rule in rules.by_kind("saving").values() for name in rule.within}
    alternatives = "|".join(sorted(map(re.escape, words)))
    # One match per line at most: the line's start.
    source.lines = _lines(source, re.compile(rf"^[^\r\n]*?\b(?:{alternatives})\b", re.MULTILINE))
    walk(source, lambda node, scopes: calls.visit(source, node, scopes))
    _insert_imports(source)
    return _apply(source)


def _lines(source: Source, pattern: re.Pattern[str]) -> list[int]:
    return [source.line_of(match.start()) for match in pattern.finditer(source.scan_text)]


def _collect_import(node: ast.AST, found: list[ast.Import | ast.ImportFrom]) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        found.append(node)
        return False
    # Imports are statements: look inside statements, except handlers and match cases.
    return not isinstance(node, ast.expr)


def _child_fields(kind: type) -> tuple[str, ...]:
    fields = _CHILD_FIELDS.get(kind)
    if fields is None:
        fields = tuple(f for f in kind._fields if f not in _NOT_CHILDREN)  # type: ignore[attr-defined]
        _CHILD_FIELDS[kind] = fields
    return fields


def walk(source: Source, visit: Callable[[ast.AST, tuple[ast.AST, ...]], bool]) -> None:
    """Call ``visit(node, scopes)`` on the nodes of statements on ``source.lines``.

    ``scopes`` are the functions, lambdas and classes the node is in, outermost first.
    ``visit`` returns False to skip the children of a node. Statements whose lines hold
    none of the words searched for are skipped whole.
    """
    lines = source.lines

    def relevant(statement: ast.stmt) -> bool:
        decorators = getattr(statement, "decorator_list", None)
        first = bisect.bisect_left(lines, decorators[0].lineno if decorators else statement.lineno)
        end = statement.end_lineno or statement.lineno
        return first < len(lines) and lines[first] <= end

    body = source.tree.body
    stack: list[tuple[ast.AST, tuple[ast.AST, ...]]] = [
        (statement, ()) for statement in reversed(body) if relevant(statement)
    ]
    while stack:
        node, scopes = stack.pop()
        if not visit(node, scopes):
            continue
        is_scope = isinstance(node, _SCOPES)
        comprehension = isinstance(node, _COMPREHENSIONS)
        for name in _child_fields(type(node)):
            value = getattr(node, name, None)
            entered = comprehension or (is_scope and name == "body")
            inner = (*scopes, node) if entered else scopes
            if type(value) is list:
                for item in reversed(value):
                    if isinstance(item, ast.stmt):
                        if relevant(item):
                            stack.append((item, inner))
                    elif isinstance(item, ast.AST) and not isinstance(item, _LEAVES):
                        stack.append((item, inner))
            elif isinstance(value, ast.AST) and not isinstance(value, _LEAVES):
                stack.append((value, inner))


def _insert_imports(source: Source) -> None:
    """Add ``import kutils`` and ``from kutils import ...`` before the first use."""
    lines = []
    if source.needs_keras:
        lines.append("import keras")
    if source.needs_kutils and not source.kutils_leading:
        lines.append("import kutils")
    imported = {
        f"{statement.module}.{item.name}"
        for statement in source.leading
        if isinstance(statement, ast.ImportFrom)
        for item in statement.names
        if item.asname is None
    }
    wanted = sorted(
        name
        for name in source.functions
        if not {f"kutils.{name}", f"kutils.generators.{name}"} & imported
    )
    if wanted:
        lines.append(f"from kutils import {', '.join(wanted)}")
    if lines:
        position, block = _insertion_point(source, lines)
        source.edits.append((position, position, block))


def _insertion_point(source: Source, lines: list[str]) -> tuple[int, str]:
    body, count, newline = source.tree.body, len(source.leading), source.newline
    block = "".join(line + newline for line in lines)
    if count == 0:
        if not body:
            return len(source.text), block
        first = body[0]
        decorators = getattr(first, "decorator_list", [])
        line = min([first.lineno, *(d.lineno for d in decorators)])
        return source.starts[line - 1], block
    end_line = source.leading[-1].end_lineno or source.leading[-1].lineno
    following = body[count] if count < len(body) else None
    if following is not None and following.lineno == end_line:  # `import a; code`
        return source.pos(following.lineno, following.col_offset), "; ".join(lines) + "; "
    if end_line < len(source.starts):
        return source.starts[end_line], block
    # The last line has no line break.
    return len(source.text), newline + block[: -len(newline)]


def _apply(source: Source) -> tuple[str, Findings, int]:
    edits = sorted(source.edits, key=lambda edit: (edit[0], edit[1]))
    pieces: list[str] = []
    cursor = 0
    applied = 0
    for start, end, new in edits:
        if start < cursor:  # overlapping spans: keep the first, report the other
            message = "overlapping rewrites; change this line by hand"
            source.findings.append((source.line_of(start), message))
            continue
        pieces.append(source.text[cursor:start])
        pieces.append(new)
        cursor = end
        applied += 1
    pieces.append(source.text[cursor:])
    return "".join(pieces), sorted(set(source.findings)), applied

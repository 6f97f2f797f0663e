"""The source text a ``kutils migrate`` pass rewrites: positions, bindings, edits.

The engine (``kutils._migrate_engine``) makes one ``Source`` per file and hands it to the
passes (``kutils._migrate_imports``, ``kutils._migrate_calls``,
``kutils._migrate_rewrites``), which record their edits and findings on it. It is a
module of its own so that the passes can name its type without importing the engine.
"""

from __future__ import annotations

import ast
import bisect
import io
import re
import tokenize

from kutils import _migrate_names as names

__all__ = ["Findings", "Source", "replace_from_module", "replace_name", "split_import"]

Findings = list[tuple[int, str]]

_NEWLINES = re.compile(r"\r\n|\r|\n")
_LONE_CR = re.compile(r"\r(?!\n)")


class Source:
    """A source text being rewritten: positions, bindings, edits and findings."""

    def __init__(self, text: str, tree: ast.Module) -> None:
        self.text = text
        self.tree = tree
        self.starts = [0] + [match.end() for match in _NEWLINES.finditer(text)]
        first_break = _NEWLINES.search(text)
        self.newline = first_break.group() if first_break else "\n"
        # The `^` of a MULTILINE pattern follows only "\n": lone "\r" become "\n" here
        # (same offsets), so that line scans see the lines of a CR-only file.
        self.scan_text = _LONE_CR.sub("\n", text) if "\r" in text else text
        self.edits: list[tuple[int, int, str]] = []
        self.findings: Findings = []
        self.bindings: dict[str, str] = {}
        self.watched: set[str] = set()
        self.scopes = names.Scopes(text, tree)
        self.own = names.OwnClasses(text, tree)
        self.needs_kutils = False
        self.needs_keras = False  # a rewrite uses the name keras, which no import binds
        self.default_classes: frozenset[str] = frozenset()  # kutils._migrate_defaults
        self.functions: set[str] = set()  # kutils functions the rewrites call by name
        # Weights file names the run keeps (not renamed): saved and loaded through kutils.
        self.kept_weights: frozenset[str] = frozenset()
        self.leading = _leading_statements(tree)
        self.kutils_leading = False  # a leading import binds `kutils`
        self._taken: dict[str, bool] = {}
        self.lines: list[int] = []
        # Layer calls first in a Sequential model (kutils._migrate_batch), found when needed.
        self.first_layers: dict[int, tuple[str, ast.AST, ast.Call]] | None = None

    def pos(self, line: int, col: int) -> int:
        """Offset in the text of ``col`` (UTF-8 bytes, as ast counts) on ``line``."""
        start = self.starts[line - 1]
        end = self.starts[line] if line < len(self.starts) else len(self.text)
        text = self.text[start:end]
        if not text.isascii():
            col = len(text.encode("utf-8")[:col].decode("utf-8", "ignore"))
        return start + col

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.pos(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self.pos(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return start, end

    def report(self, node: ast.AST, message: str) -> None:
        self.findings.append((node.lineno, message))  # type: ignore[attr-defined]

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)

    def taken(self, name: str) -> bool:
        """Whether ``name`` means something else in this file than kutils's (cached)."""
        if name not in self._taken:
            self._taken[name] = names.taken(self.text, self.tree, name)
        return self._taken[name]


def _leading_statements(tree: ast.Module) -> list[ast.stmt]:
    """The module's docstring and the imports that follow it, before any other code."""
    leading: list[ast.stmt] = []
    for index, statement in enumerate(tree.body):
        docstring = (
            index == 0
            and isinstance(statement, ast.Expr)
            and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str)
        )
        if not (docstring or isinstance(statement, (ast.Import, ast.ImportFrom))):
            break
        leading.append(statement)
    return leading


# Writers of import statements, shared by the import pass and the rewrites.


def split_import(
    source: Source, statement: ast.ImportFrom, ours: list[ast.alias], others: list[ast.alias]
) -> None:
    """``from keras.utils import a, b`` where only ``a`` is kutils's: two lines."""
    start, end = source.span(statement)
    indent = source.text[source.starts[statement.lineno - 1] : start]
    if statement.lineno != statement.end_lineno or indent.strip():
        listed_names = ", ".join(item.name for item in ours)
        source.report(
            statement,
            f"import {listed_names} from kutils on a line of their own; the other names "
            "may stay in keras.utils (Keras 3 has them)",
        )
        return

    def listed(items: list[ast.alias]) -> str:
        return ", ".join(
            item.name if item.asname is None else f"{item.name} as {item.asname}" for item in items
        )

    new = (
        f"from kutils import {listed(ours)}{source.newline}"
        f"{indent}from {statement.module} import {listed(others)}"
    )
    source.edits.append((start, end, new))


def replace_name(source: Source, item: ast.alias, name: str, target: str) -> None:
    start, _ = source.span(item)
    if source.text[start : start + len(name)] == name:
        source.edits.append((start, start + len(name), target))
    else:
        source.report(item, f"unusual spacing in 'import {name}': change it to {target} by hand")


def replace_from_module(source: Source, statement: ast.ImportFrom, target: str) -> None:
    start, end = source.span(statement)
    segment = source.text[start:end]
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(segment).readline))
    except (tokenize.TokenError, SyntaxError):
        tokens = []
    words = [t for t in tokens if t.type not in (tokenize.NL, tokenize.COMMENT)]
    # from <module> import ...: the module's tokens are those before `import`.
    if len(words) < 3 or words[0].string != "from":
        source.report(statement, f"cannot read this import: change its module to {target}")
        return
    last = next(i for i, t in enumerate(words) if t.string == "import") - 1
    segment_starts = [0] + [m.end() for m in _NEWLINES.finditer(segment)]
    first_token, last_token = words[1], words[last]
    begin = segment_starts[first_token.start[0] - 1] + first_token.start[1]
    stop = segment_starts[last_token.end[0] - 1] + last_token.end[1]
    source.edits.append((start + begin, start + stop, target))

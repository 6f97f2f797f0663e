"""Notebooks (``.ipynb``) in ``kutils migrate``: each code cell migrated like a .py file.

The notebook's JSON is never re-serialised: the positions of each code cell's
``"source"`` value are found in the file's own text, and only the values of the cells
that change are replaced, written in the layout they had (a list of lines or one
string, the same separators, the same escaping of non-ASCII characters). Outputs,
metadata, key order, indentation and every other byte stay as they were; the result is
checked to decode to the same notebook with only those sources changed.

IPython's line magics and shell lines (``%time ...``, ``!pip ...``, ``x = !ls``) are
masked by a ``pass`` statement while the cell is migrated and put back unchanged; a
cell magic cell (``%%bash``...) and a cell that does not parse are left alone, and
reported when they use Keras.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Findings = list[tuple[int, str]]
# (new text, findings, changes, why the cell was left alone or None)
CellMigration = Callable[[str], tuple[str, Findings, int, str | None]]

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_LINES = re.compile(r"[^\n]*\n|[^\n]+")
_MAGIC = re.compile(r"^[ \t]*(?:[%!]|[\w.,\[\] \t]+=[ \t]*[%!](?!=))")


class NotANotebook(ValueError):
    """The file is not a notebook kutils can read; the message says why."""


@dataclass
class Cell:
    """A code cell: its position in the notebook (from 1), source and where it is."""

    number: int
    source: str
    start: int  # the span of the "source" value in the file's text
    end: int
    lines: list[tuple[int, int]] | None  # the spans of the list's strings, or None


def code_cells(data: bytes) -> tuple[str, list[Cell]]:
    """The notebook's text and its code cells; NotANotebook when it is not one."""
    try:
        text = data.decode("utf-8")
        document = json.loads(text)
    except (UnicodeDecodeError, ValueError) as error:
        msg = f"a notebook that cannot be read as one ({type(error).__name__}: {error})"
        raise NotANotebook(msg) from error
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        msg = "a notebook that cannot be read as one (no list of cells)"
        raise NotANotebook(msg)
    start = _skip(text, 0)
    cells_span = next((span for key, *span in _members(text, start) if key == "cells"), None)
    assert cells_span is not None
    cells = []
    for number, (cell_start, _) in enumerate(_elements(text, cells_span[0]), 1):
        if text[cell_start] != "{":
            continue
        members = {key: (begin, end) for key, begin, end in _members(text, cell_start)}
        kind = members.get("cell_type")
        source = members.get("source")
        if kind is None or source is None or json.loads(text[slice(*kind)]) != "code":
            continue
        value = json.loads(text[slice(*source)])
        if isinstance(value, list) and all(isinstance(line, str) for line in value):
            lines = list(_elements(text, source[0]))
            cells.append(Cell(number, "".join(value), *source, lines))
        elif isinstance(value, str):
            cells.append(Cell(number, value, *source, None))
    return text, cells


def migrate(data: bytes, migrate_program: CellMigration) -> tuple[bytes | None, list, int]:
    """Migrate the code cells of the notebook ``data`` with ``migrate_program``.

    The cells that parse are migrated together, as the one program they are when run
    in order (an import in one cell binds the names of the next ones): joined with a
    marker line before each, migrated, and split at the markers again. Returns the new
    bytes (None when nothing changed), the findings ``(cell, line, message)`` and the
    number of spans rewritten. NotANotebook when the notebook cannot be migrated.
    """
    text, cells = code_cells(data)
    findings: list[tuple[int, int, str]] = []
    pieces: list[str] = []
    masks: dict[int, tuple[dict[str, str], bool]] = {}
    # The program's line breaks are the notebook's (the engine writes the first one).
    first_break = re.search(r"\r?\n", "".join(cell.source for cell in cells))
    newline = first_break.group() if first_break else "\n"
    for cell in cells:
        problem, program_text, hidden = _prepare(cell.source)
        if problem is not None:
            findings.append((cell.number, 1, f"cell not migrated: {problem}"))
        if program_text is None:
            continue
        ended = program_text.endswith("\n")
        end = "" if ended else newline
        pieces.append(_MARKER.format(cell.number) + newline + program_text + end)
        masks[cell.number] = hidden, ended
    program = "".join(pieces)
    new, program_findings, changes, problem = migrate_program(program)
    if problem is not None:
        raise NotANotebook(problem)
    starts = {int(m.group(1)): _line(program, m.start()) for m in _MARKERS.finditer(program)}
    for line, message in program_findings:
        number = max((n for n, at in starts.items() if at <= line), default=min(starts or [0]))
        findings.append((number, line - starts[number], message))
    if not changes:
        return None, sorted(findings), 0
    new_sources = _split(new, masks, {cell.number: cell.source for cell in cells})
    return splice(text, cells, new_sources), sorted(findings), changes


_MARKER = "# kutils-migrate-cell {}"
_MARKERS = re.compile(r"^# kutils-migrate-cell (\d+)\r?\n", re.MULTILINE)


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _prepare(source: str) -> tuple[str | None, str | None, dict[str, str]]:
    """(why the cell is left alone, its text for the program, its masked lines)."""
    if source.lstrip().startswith("%%"):
        problem = "it is a cell magic (%%) cell, which is not Python; change it by hand"
        return (problem if _uses_keras(source) else None), None, {}
    if "kutils-migrate-cell" in source or "kutils-magic-" in source:
        return None, None, {}  # our markers in the user's text: leave the cell alone
    text, hidden = _mask(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(text, "<cell>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        if not _uses_keras(source):
            return None, None, hidden
        if isinstance(error, SyntaxError):
            from kutils._migrate_result import describe as _describe

            return f"it does not parse ({_describe(error)})", None, hidden
        return f"it does not parse ({error})", None, hidden
    return None, text, hidden


def _uses_keras(text: str) -> bool:
    from kutils._migrate_result import worth_reading as _worth_reading

    return _worth_reading(text)


def _split(
    new: str, masks: dict[int, tuple[dict[str, str], bool]], old: dict[int, str]
) -> dict[int, str]:
    """The changed cells' new sources, from the migrated program."""
    matches = list(_MARKERS.finditer(new))
    if [int(m.group(1)) for m in matches] != list(masks):
        raise NotANotebook("kutils migrate lost a cell boundary; please report this to kutils")
    changed = {}
    for index, match in enumerate(matches):
        number = int(match.group(1))
        end = matches[index + 1].start() if index + 1 < len(matches) else len(new)
        text = new[match.end() : end]
        hidden, ended = masks[number]
        added = match.group()[match.end(1) - match.start() :]  # the marker's line break
        if not ended and text.endswith(added):
            text = text[: -len(added)]
        text = _unmask(text, hidden)
        if text != old[number]:
            changed[number] = text
    return changed


def masked(source: str, migrate_cell: CellMigration) -> tuple[str, Findings, int, str | None]:
    """``migrate_cell(source)`` with the IPython magic and shell lines masked."""
    if source.lstrip().startswith("%%") or "kutils-magic-" in source:
        return source, [], 0, None
    text, hidden = _mask(source)
    new, findings, changes, problem = migrate_cell(text)
    if problem is not None or not changes:
        return source, findings, 0, problem
    return _unmask(new, hidden), findings, changes, None


def _mask(source: str) -> tuple[str, dict[str, str]]:
    lines = _LINES.findall(source)
    hidden: dict[str, str] = {}
    for index, line in enumerate(lines):
        if _MAGIC.match(line) and not line.rstrip().endswith("\\"):
            body = line.rstrip("\r\n")
            indent = body[: len(body) - len(body.lstrip(" \t"))]
            marker = f"{indent}pass  # kutils-magic-{len(hidden)}"
            hidden[marker] = body
            lines[index] = marker + line[len(body) :]
    return "".join(lines), hidden


def _unmask(text: str, hidden: dict[str, str]) -> str:
    if not hidden:
        return text
    restored = []
    for line in _LINES.findall(text):
        body = line.rstrip("\r\n")
        restored.append(hidden.get(body, body) + line[len(body) :])
    return "".join(restored)


def splice(text: str, cells: list[Cell], new_sources: dict[int, str]) -> bytes:
    """The notebook with the sources of ``new_sources`` (by cell number) replaced."""
    escaped = text.isascii() and "\\u" in text
    pieces = []
    cursor = 0
    for cell in cells:
        if cell.number not in new_sources:
            continue
        pieces.append(text[cursor : cell.start])
        pieces.append(_value(text, cell, new_sources[cell.number], escaped))
        cursor = cell.end
    pieces.append(text[cursor:])
    new_text = "".join(pieces)
    _check(text, new_text, new_sources)
    return new_text.encode("utf-8")


def _value(text: str, cell: Cell, source: str, escaped: bool) -> str:
    """The JSON of ``source`` in the layout of the cell's current value."""
    if cell.lines is None:
        return json.dumps(source, ensure_ascii=escaped)
    known = {json.loads(text[begin:end]): text[begin:end] for begin, end in cell.lines}
    tokens = [
        known.get(line) or json.dumps(line, ensure_ascii=escaped) for line in _LINES.findall(source)
    ]
    if not cell.lines:
        return "[" + ", ".join(tokens) + "]"
    prefix = text[cell.start + 1 : cell.lines[0][0]]
    suffix = text[cell.lines[-1][1] : cell.end - 1]
    if len(cell.lines) > 1:
        separator = text[cell.lines[0][1] : cell.lines[1][0]]
    else:
        separator = "," + prefix if prefix else ", "
    return "[" + prefix + separator.join(tokens) + suffix + "]"


def _check(text: str, new_text: str, new_sources: dict[int, str]) -> None:
    """The new notebook is the old one with exactly those sources changed."""
    before, after = json.loads(text), json.loads(new_text)
    for number, source in new_sources.items():
        cell = before["cells"][number - 1]
        new_value = after["cells"][number - 1]["source"]
        joined = "".join(new_value) if isinstance(new_value, list) else new_value
        if joined != source:
            msg = f"cell {number}: the rewritten source does not read back"
            raise AssertionError(msg)
        cell["source"] = new_value
    if before != after:
        raise AssertionError("the rewritten notebook differs outside the changed sources")


def _skip(text: str, index: int) -> int:
    match = _WS.match(text, index)
    assert match is not None
    return match.end()


def _members(text: str, index: int) -> Iterator[tuple[str, int, int]]:
    """``(key, start, end)`` of each member of the JSON object at ``index`` (valid JSON)."""
    index = _skip(text, index + 1)
    if text[index] == "}":
        return
    while True:
        key, index = json.decoder.scanstring(text, index + 1)  # type: ignore[attr-defined]
        index = _skip(text, index)  # then ":"
        start = _skip(text, index + 1)
        _, end = _DECODER.raw_decode(text, start)
        yield key, start, end
        index = _skip(text, end)
        if text[index] == "}":
            return
        index = _skip(text, index + 1)


def _elements(text: str, index: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each element of the JSON array at ``index`` (valid JSON)."""
    index = _skip(text, index + 1)
    if text[index] == "]":
        return
    while True:
        _, end = _DECODER.raw_decode(text, index)
        yield index, end
        index = _skip(text, end)
        if text[index] == "]":
            return
        index = _skip(text, index + 1)

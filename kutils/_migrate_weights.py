"""Weights file names in ``kutils migrate``: ``save_weights('x.h5')`` -> ``'x.weights.h5'``.

Keras 3's ``save_weights`` and ``ModelCheckpoint(..., save_weights_only=True)`` refuse a
file name that does not end in ``.weights.h5``. Renaming the file where it is saved is
only safe when every place that names it is renamed too, so the decision is made for the
whole run (every file migrated), after all files were read and before any is written:

- the *sites* are the literal names (``'x.h5'``, ``'out/x.hdf5'``) given to
  ``save_weights``, ``load_weights`` and ``ModelCheckpoint(..., save_weights_only=True)``;
- a name (its last path component) is renamed when at least one site saves it and each
  file's code mentions it only at sites whose literal can be rewritten: any other
  mention (``model.save('x.h5')``, ``os.path.exists('x.h5')``, a path built around it,
  a comment, a cell that was not migrated) keeps it, and its saves are reported.

A name only loaded is left alone: Keras 3 still loads a Keras 2 ``.h5`` weights file.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable

from kutils._migrate_result import FileResult, WeightSite

_LEGACY = (".h5", ".hdf5")
_NEW_SUFFIX = ".weights.h5"
_QUOTES = ("'", '"')
# A legacy suffix, or an escape that could spell one (``'w.\\x68\\x35'``).
_LEGACY_NAME = re.compile(r"(?i:\.(?:h5|hdf5))\b|\\[0-7xuUN]")


def renamed(name: str) -> str:
    """``x.h5`` -> ``x.weights.h5``."""
    for suffix in _LEGACY:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] + _NEW_SUFFIX
    return name


def sites(text: str, cell: int) -> list[tuple[WeightSite, int, int]]:
    """The sites of ``text`` (valid Python) with the span of each literal in ``text``."""
    if "_weights" not in text or _LEGACY_NAME.search(text) is None:
        return []  # most files: no re-parse
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    starts = [0] + [match.end() for match in re.finditer(r"\r\n|\r|\n", text)]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        target = _target(node)
        if target is None:
            continue
        literal, save = target
        start = _offset(text, starts, literal.lineno, literal.col_offset)
        end = _offset(text, starts, literal.end_lineno or 0, literal.end_col_offset or 0)
        value = literal.value
        assert isinstance(value, str)
        name = re.split(r"[/\\]", value)[-1]
        segment = text[start:end]
        ending = value[-len(_suffix(value)) :]
        rewritable = segment[-1:] in _QUOTES and segment[:-1].endswith(ending)
        found.append((WeightSite(name, save, rewritable, cell, literal.lineno), start, end))
    return found


def sites_of_cell(cell: int, source: str) -> list[WeightSite]:
    """The sites of a notebook cell, whose IPython magic lines are masked first."""
    from kutils._migrate_notebook import masked

    collected: list[WeightSite] = []

    def collect(text: str) -> tuple[str, list[tuple[int, str]], int, str | None]:
        collected.extend(site for site, _, _ in sites(text, cell))
        return text, [], 0, None

    masked(source, collect)
    return collected


def _target(call: ast.Call) -> tuple[ast.Constant, bool] | None:
    """The literal legacy file name the call saves or loads, and whether it saves."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name in ("save_weights", "load_weights") and _kutils_form(call):
        return None  # kutils' function keeps Keras 2's file at any name: nothing to rename
    if name == "save_weights":
        save = True
    elif name == "load_weights":
        save = False
    elif name == "ModelCheckpoint" and any(
        keyword.arg == "save_weights_only"
        and isinstance(keyword.value, ast.Constant)
        and keyword.value.value is True
        for keyword in call.keywords
    ):
        save = True
    else:
        return None
    value = call.args[0] if call.args else None
    value = next((k.value for k in call.keywords if k.arg == "filepath"), value)
    if isinstance(value, ast.Constant) and isinstance(value.value, str) and _suffix(value.value):
        return value, save
    return None


def _kutils_form(call: ast.Call) -> bool:
    """``save_weights(model, name)``/``kutils.load_weights(model, filepath=name)``: the
    form of kutils' functions, which a rewrite made (the model first, then the name)."""
    func = call.func
    if isinstance(func, ast.Attribute) and not (
        isinstance(func.value, ast.Name) and func.value.id == "kutils"
    ):
        return False  # a method: x.save_weights(name)
    named = any(keyword.arg == "filepath" for keyword in call.keywords)
    return len(call.args) >= 2 or (len(call.args) == 1 and named)


def _suffix(value: str) -> str:
    lowered = value.lower()
    if lowered.endswith(_NEW_SUFFIX):
        return ""
    return next((suffix for suffix in _LEGACY if lowered.endswith(suffix)), "")


def _offset(text: str, starts: list[int], line: int, col: int) -> int:
    start = starts[line - 1]
    end = starts[line] if line < len(starts) else len(text)
    part = text[start:end]
    if not part.isascii():
        col = len(part.encode("utf-8")[:col].decode("utf-8", "ignore"))
    return start + col


# -- the project-wide decision ---------------------------------------------------------


def decide(results: Iterable[FileResult]) -> tuple[set[str], dict[str, list[str]]]:
    """The names to rename, and for each name kept, the files that keep it."""
    results = list(results)
    saved = {site.name for result in results for site in result.weight_sites if site.save}
    chosen: set[str] = set()
    kept: dict[str, list[str]] = {}
    for name in sorted(saved):
        blocking = [
            result.path
            for result in results
            if any(not s.rewritable and s.name == name for s in result.weight_sites)
            or _mentions(result, name)
            != sum(s.rewritable and s.name == name for s in result.weight_sites)
        ]
        if blocking:
            kept[name] = blocking
        else:
            chosen.add(name)
    return chosen, kept


def _mentions(result: FileResult, name: str) -> int:
    """How often the code of ``result`` names the file ``name`` (as a path's last part)."""
    data = result.new if result.new is not None else result.original
    encoded = name.encode("utf-8")
    if encoded not in data:
        return 0
    pattern = re.compile(r"(?<![\w.\-])" + re.escape(name) + r"(?![\w.\-])")
    if result.path.lower().endswith(".ipynb") and result.error is None:
        from kutils._migrate_notebook import code_cells

        _, cells = code_cells(data)
        return sum(len(pattern.findall(cell.source)) for cell in cells)
    return len(pattern.findall(data.decode("utf-8", "replace")))


def rename_in(text: str, cell: int, names: set[str]) -> tuple[str, int, list[int]]:
    """``text`` with the rewritable sites of ``names`` renamed; the count and their lines."""
    edits = [
        (start, end, site.line)
        for site, start, end in sites(text, cell)
        if site.rewritable and site.name in names
    ]
    for start, end, _ in sorted(edits, reverse=True):
        segment = text[start:end]
        value = ast.literal_eval(segment)
        cut = len(_suffix(value))
        text = text[:start] + segment[: -1 - cut] + _NEW_SUFFIX + segment[-1] + text[end:]
    return text, len(edits), [line for _, _, line in edits]


def apply(result: FileResult, chosen: set[str], kept: dict[str, list[str]]) -> None:
    """Rename the chosen names in ``result`` (its new bytes) and report the kept ones."""
    from kutils import _migrate_rules as rules

    generic = rules.by_kind("saving")[".h5"].message
    mine = [site for site in result.weight_sites if site.save and site.name in kept]
    if not mine and not any(site.name in chosen for site in result.weight_sites):
        return
    # The sites' lines are those of the rewritten text, the findings' those of the file
    # as it was: an import the rewrite added moves the lines below it.
    original = _original_line(result)
    renamed_at = _rename(result, chosen) if result.error is None else []
    drop = {(cell, original(cell, line)) for cell, line in renamed_at}
    drop |= {(site.cell, original(site.cell, site.line)) for site in mine}
    result.findings = [
        (line, m) for line, m in result.findings if not (m == generic and (0, line) in drop)
    ]
    result.cell_findings = [
        (cell, line, m)
        for cell, line, m in result.cell_findings
        if not (m == generic and (cell, line) in drop)
    ]
    for site in mine:
        others = ", ".join(sorted({path for path in kept[site.name] if path != result.path}))
        where = f"{others} and this file name it" if others else "this file names it"
        if result.path not in kept[site.name]:
            where = f"{others} name(s) it"
        message = (
            f"weights file {site.name!r} not renamed to {renamed(site.name)!r} (Keras 3's "
            f"save_weights and ModelCheckpoint(save_weights_only=True) need the .weights.h5 "
            f"suffix): {where} elsewhere than in a save or load kutils can rewrite; "
            "rename it in every save and load by hand"
        )
        if site.cell:
            result.cell_findings.append((site.cell, original(site.cell, site.line), message))
        else:
            result.findings.append((original(0, site.line), message))
    result.findings.sort()
    result.cell_findings.sort()


def _original_line(result: FileResult) -> Callable[[int, int], int]:
    """``(cell, line of the rewritten text) -> line of the original``, in a ``.py`` file
    (cell 0) or a notebook's cell (an import added at the top of a cell moves its lines)."""
    if result.new is None:
        return lambda cell, line: line
    if not result.path.lower().endswith(".ipynb"):
        mapping = _line_mapping(result.original, result.new)
        return lambda cell, line: line if cell else mapping.get(line, line)
    from kutils._migrate_notebook import code_cells

    before = {cell.number: cell.source.encode() for cell in code_cells(result.original)[1]}
    after = {cell.number: cell.source.encode() for cell in code_cells(result.new)[1]}
    mappings = {
        number: _line_mapping(before[number], source)
        for number, source in after.items()
        if number in before and before[number] != source
    }
    return lambda cell, line: mappings.get(cell, {}).get(line, line)


def _line_mapping(old_text: bytes, new_text: bytes) -> dict[int, int]:
    """Lines of ``new_text`` -> lines of ``old_text`` (bytes: split at ``\\n``, ``\\r``
    and ``\\r\\n`` only, as Python's parser counts lines)."""
    import difflib

    old, new = old_text.splitlines(), new_text.splitlines()
    mapping: dict[int, int] = {}
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            mapping.update({j1 + k + 1: i1 + k + 1 for k in range(j2 - j1)})
    return mapping


def _rename(result: FileResult, chosen: set[str]) -> list[tuple[int, int]]:
    """Rename in the file's bytes; the (cell, line) of each site renamed."""
    data = result.new if result.new is not None else result.original
    if result.path.lower().endswith(".ipynb"):
        return _rename_notebook(result, data, chosen)
    import io
    import tokenize

    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    text, count, lines = rename_in(data.decode(encoding), 0, chosen)
    if not count:
        return []
    compile(text, "<rewritten>", "exec", dont_inherit=True)  # a literal for a literal
    result.new = text.encode(encoding)
    result.changes += count
    return [(0, line) for line in lines]


def _rename_notebook(result: FileResult, data: bytes, chosen: set[str]) -> list[tuple[int, int]]:
    from kutils import _migrate_notebook as notebook

    text, cells = notebook.code_cells(data)
    new_sources: dict[int, str] = {}
    done: list[tuple[int, int]] = []
    for cell in cells:
        lines: list[int] = []

        def rename_cell(
            source: str, number: int = cell.number, into: list[int] = lines
        ) -> tuple[str, list[tuple[int, str]], int, str | None]:
            new, count, at = rename_in(source, number, chosen)
            into += at
            return new, [], count, None

        new, _, count, _ = notebook.masked(cell.source, rename_cell)
        if count:
            new_sources[cell.number] = new
            done += [(cell.number, line) for line in lines]
    if new_sources:
        result.new = notebook.splice(text, cells, new_sources)
        result.changes += len(done)
    return done

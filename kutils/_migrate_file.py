"""The one-file API of ``kutils migrate`` behind :mod:`kutils.migrate`: a text or a file
rewritten in memory. Nothing here writes a file (``kutils._migrate_write`` does, for the
command line, ``kutils._migrate_command``).
"""

from __future__ import annotations

import ast
import io
import tokenize
import warnings
from functools import partial

from kutils._migrate_result import FileResult, describe, worth_reading

__all__ = ["FileResult", "migrate_file", "migrate_source"]

# From this many files on, the command reads the files in worker processes, one per CPU.
_PARALLEL_FROM = 64


def migrate_file(path: str) -> FileResult:
    """Migrate the file at ``path`` in memory: the rewritten bytes and the findings.

    Nothing is written. Any failure (the file cannot be read or decoded, does not
    parse, nests too deeply for Python's parser, or its rewrite would not compile) is
    the result's ``error``, never an exception. A notebook (``.ipynb``) has its code
    cells migrated (``kutils._migrate_notebook``); its findings name the cell. Weights
    file names are renamed by the command only (the decision needs the whole project).
    """
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as error:
        return FileResult(
            path, b"", error=f"cannot read it ({error.strerror or error})", read=False
        )
    return remigrate(FileResult(path, data))


def remigrate(result: FileResult, kept_weights: frozenset[str] = frozenset()) -> FileResult:
    """Migrate ``result``'s original bytes (again) into a new result.

    ``kept_weights``: the weights file names (last path parts) the command keeps in the
    whole run (``kutils._migrate_weights``), whose literal saves and loads go through
    kutils' ``save_weights``/``load_weights`` (``kutils._migrate_model_calls``).
    """
    path = result.path
    result = FileResult(path, result.original)
    try:
        if path.lower().endswith(".ipynb"):
            _notebook(result, kept_weights)
        else:
            _migrate_bytes(result, kept_weights)
    except (RecursionError, MemoryError) as error:
        result.error = f"it nests deeper than Python's parser can read ({type(error).__name__})"
    except Exception as error:  # a defect of kutils migrate: this file fails, not the run
        result.error = (
            f"kutils migrate failed on it ({type(error).__name__}: {error}); "
            "please report this to kutils"
        )
    if result.error is not None:
        result.new, result.changes = None, 0
    return result


def _migrate_bytes(result: FileResult, kept_weights: frozenset[str]) -> None:
    data = result.original
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as error:
        result.error = f"cannot decode it ({error})"
        return
    if text.encode(encoding) != data:
        result.error = f"its bytes do not survive decoding as {encoding}"
        return
    try:
        new_text, findings, changes, problem = _migrate_text(text, 0, kept_weights)
    except SyntaxError as error:
        result.error = f"it does not parse ({describe(error)})"
        return
    result.findings = findings
    if problem is not None:
        result.error = problem
        return
    if changes:
        result.new = new_text.encode(encoding)
        result.changes = changes
    from kutils._migrate_weights import sites

    result.weight_sites = [site for site, _, _ in sites(new_text, 0)]


def _notebook(result: FileResult, kept_weights: frozenset[str]) -> None:
    """Migrate the code cells of a notebook (``kutils._migrate_notebook``)."""
    from kutils import _migrate_notebook as notebook
    from kutils import _migrate_weights as weights

    try:
        result.new, result.cell_findings, result.changes = notebook.migrate(
            result.original, partial(_migrate_cell, kept_weights=kept_weights)
        )
        _, cells = notebook.code_cells(result.new or result.original)
    except notebook.NotANotebook as error:
        result.error = str(error)
        return
    for cell in cells:
        result.weight_sites += weights.sites_of_cell(cell.number, cell.source)


def _migrate_cell(
    text: str, kept_weights: frozenset[str] = frozenset()
) -> tuple[str, list[tuple[int, str]], int, str | None]:
    """A notebook cell through the engine; one that does not parse is left alone."""
    try:  # IPython runs top-level await
        return _migrate_text(text, ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, kept_weights)
    except SyntaxError as error:
        if not worth_reading(text):
            return text, [], 0, None
        return text, [], 0, f"it does not parse ({describe(error)})"


def _parse(text: str) -> ast.Module:
    """The syntax tree of ``text``; SyntaxError if it does not parse."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences and the like
        try:
            tree = compile(text, "<file>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        except ValueError as error:  # null bytes
            raise SyntaxError(str(error)) from error
    assert isinstance(tree, ast.Module)
    return tree


def _compile_problem(text: str, flags: int = 0) -> str | None:
    """Why ``text`` does not compile, or None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(text, "<rewritten>", "exec", flags, dont_inherit=True)
        except (SyntaxError, ValueError) as error:
            if isinstance(error, SyntaxError):
                return describe(error)
            return str(error)
    return None


def migrate_source(text: str) -> tuple[str, list[tuple[int, str]], int]:
    """Rewrite the Python source ``text``.

    Returns:
        The tuple ``(new_text, findings, changes)``, that is the rewritten text,
        ``(line, message)`` for each thing left to do by hand, and the number of spans
        rewritten. A rewrite that would not compile is not made: the text comes back
        unchanged, with a finding that says why.

    Raises:
        SyntaxError: ``text`` is not valid Python.
    """
    new_text, findings, changes, problem = _migrate_text(text)
    if problem is not None:
        return text, sorted({*findings, (1, f"not rewritten: {problem}")}), 0
    return new_text, findings, changes


def _migrate_text(
    text: str, flags: int = 0, kept_weights: frozenset[str] = frozenset()
) -> tuple[str, list[tuple[int, str]], int, str | None]:
    """``migrate_source``'s result, and why the rewrite was not made (or None)."""
    tree = _parse(text)
    if not worth_reading(text) and not kept_weights:
        return text, [], 0, None
    from kutils._migrate_engine import rewrite

    new_text, findings, changes = rewrite(text, tree, kept_weights)
    if not changes:
        return new_text, findings, changes, None
    problem = _compile_problem(new_text, flags)
    if problem is None:
        return new_text, findings, changes, None
    itself = _compile_problem(text, flags)
    if itself is not None:
        reason = f"the rewritten file would not compile, nor does the file itself ({itself})"
    else:
        reason = f"the rewritten file would not compile ({problem}); please report this to kutils"
    return text, findings, 0, reason

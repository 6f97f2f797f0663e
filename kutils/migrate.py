"""``kutils migrate``: move a tree of Keras 2 scripts to Keras 3 with kutils.

    python -m kutils migrate PATH...        # rewrite in place
    python -m kutils migrate --diff PATH... # show the change, write nothing

The command rewrites every import and use of the Keras 2 utilities (``keras.utils``,
``keras.utils.np_utils`` and the other Keras 2 module paths, ``tensorflow.keras.utils``)
into its kutils form, and ``model.fit_generator(...)``, ``evaluate_generator`` and
``predict_generator`` into the kutils functions that keep their Keras 2 meaning. It
reports, with file and line, every other Keras 2 API the code uses that Keras 3 removed
or changed (the rules are ``kutils._migrate_rules``). Notebooks have their code cells
migrated (``kutils._migrate_notebook``); weights file names are renamed to
``.weights.h5`` where every file of the run agrees (``kutils._migrate_weights``).

This module is the one-file API: :func:`migrate_source` rewrites a text,
:func:`migrate_file` reads a file and rewrites it in memory, and :func:`main` runs the
command line (``kutils._migrate_command``), which writes the files back
(``kutils._migrate_write``). The rewriting itself is ``kutils._migrate_engine``.

Each file is parsed once by Python's own parser (``ast``), whose node positions locate
the spans to rewrite; only those spans are replaced in the source text, so comments,
formatting, line endings and the file's encoding are kept byte for byte. A rewritten
text is compiled again before it is used; one that would not compile is reported and
the file left alone. Every file is read before any is written. A second run changes
nothing. Exit status: 0 when nothing is left to do, 1 when the report lists something
(or ``--diff`` shows a change), 2 on usage errors.
"""

from __future__ import annotations

import ast
import io
import tokenize
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

from kutils._migrate_weights import WeightSite

__all__ = ["FileResult", "main", "migrate_file", "migrate_source"]

# From this many files on, the command reads the files in worker processes, one per CPU.
_PARALLEL_FROM = 64


@dataclass
class FileResult:
    """What ``migrate`` made of one file.

    Attributes:
        path: the file.
        original: its bytes.
        new: the rewritten bytes, or ``None`` when nothing changes or it failed.
        findings: ``(line, message)`` for each thing left to do by hand.
        error: why the file was left alone (it does not parse...), or ``None``.
        changes: how many spans were rewritten.
        read: whether the file could be read at all.
        cell_findings: for a notebook, ``(cell, line, message)`` for each thing left to
            do by hand (cells counted from 1, markdown cells included).
        weight_sites: the weights file names (``save_weights('x.h5')``...) the file
            uses, for the command's project-wide decision (``kutils._migrate_weights``).
    """

    path: str
    original: bytes
    new: bytes | None = None
    findings: list[tuple[int, str]] = field(default_factory=list)
    error: str | None = None
    changes: int = 0
    read: bool = True
    cell_findings: list[tuple[int, int, str]] = field(default_factory=list)
    weight_sites: list[WeightSite] = field(default_factory=list)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kutils migrate`` with ``argv`` (without the ``migrate`` word); return the status.

    Safe to call from a script without an ``if __name__ == "__main__"`` guard: the
    worker processes of a large tree never re-import the caller's script.
    """
    from kutils._migrate_command import run

    return run(argv)


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
    result = FileResult(path, data)
    try:
        if path.lower().endswith(".ipynb"):
            _notebook(result)
        else:
            _migrate_bytes(result)
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


def _migrate_bytes(result: FileResult) -> None:
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
        new_text, findings, changes, problem = _migrate_text(text)
    except SyntaxError as error:
        result.error = f"it does not parse ({_describe(error)})"
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


def _notebook(result: FileResult) -> None:
    """Migrate the code cells of a notebook (``kutils._migrate_notebook``)."""
    from kutils import _migrate_notebook as notebook
    from kutils import _migrate_weights as weights

    try:
        result.new, result.cell_findings, result.changes = notebook.migrate(
            result.original, _migrate_cell
        )
        _, cells = notebook.code_cells(result.new or result.original)
    except notebook.NotANotebook as error:
        result.error = str(error)
        return
    for cell in cells:
        result.weight_sites += weights.sites_of_cell(cell.number, cell.source)


def _migrate_cell(text: str) -> tuple[str, list[tuple[int, str]], int, str | None]:
    """A notebook cell through the engine; one that does not parse is left alone."""
    try:
        return _migrate_text(text, ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)  # IPython runs it
    except SyntaxError as error:
        if not _worth_reading(text):
            return text, [], 0, None
        return text, [], 0, f"it does not parse ({_describe(error)})"


def _describe(error: SyntaxError) -> str:
    where = f"line {error.lineno}: " if error.lineno else ""
    return f"{where}{error.msg}"


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
                return _describe(error)
            return str(error)
    return None


# A file that mentions none of these has nothing to migrate.
_WORDS = ("keras", "_generator", "predict_classes", "predict_proba", "numpy")


def _worth_reading(text: str) -> bool:
    return any(word in text for word in _WORDS)


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


def _migrate_text(text: str, flags: int = 0) -> tuple[str, list[tuple[int, str]], int, str | None]:
    """``migrate_source``'s result, and why the rewrite was not made (or None)."""
    tree = _parse(text)
    if not _worth_reading(text):
        return text, [], 0, None
    from kutils._migrate_engine import rewrite

    new_text, findings, changes = rewrite(text, tree)
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

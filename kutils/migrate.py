"""``kutils migrate``: move a tree of Keras 2 scripts to Keras 3 with kutils.

    python -m kutils migrate PATH...        # rewrite in place
    python -m kutils migrate --diff PATH... # show the change, write nothing

The command rewrites every import and use of the Keras 2 utilities (``keras.utils``,
``keras.utils.np_utils`` and the other Keras 2 module paths, ``tensorflow.keras.utils``)
into its kutils form, and ``model.fit_generator(...)``, ``evaluate_generator`` and
``predict_generator`` into the kutils functions that keep their Keras 2 meaning. It
reports, with file and line, every other Keras 2 API the code uses that Keras 3 removed
or changed (the table is ``kutils._migrate_rules``).

Each file is parsed once by Python's own parser (``ast``), whose node positions
locate the spans to rewrite (``tokenize`` reads the module names of rewritten ``from``
imports); only those spans are replaced in the source text, so comments, formatting,
line endings and the file's encoding are kept byte for byte. Every file is parsed before any is written; a file that cannot be
parsed is reported and left alone. A second run changes nothing. Exit status: 0 when
nothing is left to do by hand, 1 when the report lists something, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import ast
import bisect
import difflib
import io
import os
import re
import sys
import tempfile
import tokenize
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from kutils import _migrate_rules as rules

__all__ = ["FileResult", "main", "migrate_file", "migrate_source"]

_PROG = "kutils migrate"
_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})


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
    """

    path: str
    original: bytes
    new: bytes | None = None
    findings: list[tuple[int, str]] = field(default_factory=list)
    error: str | None = None
    changes: int = 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kutils migrate`` with ``argv`` (without the ``migrate`` word); return the status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        return int(exit_.code or 0)
    try:
        # Each file once, even when named twice or inside a folder also named.
        files = list(dict.fromkeys(_python_files(args.paths)))
    except _UsageError as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        return 2
    results = _migrate_all(files)
    out = sys.stdout
    for result in results:
        if result.error is not None:
            print(f"{result.path}: not migrated: {result.error}", file=out)
        for line, message in result.findings:
            print(f"{result.path}:{line}: {message}", file=out)
    changed = [result for result in results if result.new is not None]
    if args.diff:
        for result in changed:
            assert result.new is not None
            out.write(_diff(result))
    else:
        for result in changed:
            assert result.new is not None
            try:
                _write_atomically(result.path, result.new)
            except OSError as error:
                result.error = f"cannot write it ({error.strerror or error})"
                print(f"{result.path}: not migrated: {result.error}", file=out)
    findings = sum(len(result.findings) for result in results)
    failed = sum(result.error is not None for result in results)
    verb = "would rewrite" if args.diff else "rewrote"
    print(
        f"{_PROG}: {len(files)} file(s) read, {verb} {len(changed)}, "
        f"{findings} thing(s) to change by hand, {failed} file(s) not parsed",
        file=sys.stderr,
    )
    return 1 if findings or failed else 0


# From this many files on, the files are read in worker processes, one per CPU.
_PARALLEL_FROM = 64


def _migrate_all(files: list[str]) -> list[FileResult]:
    """Migrate each file in memory (nothing is written here), in parallel for many files."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    if len(files) < _PARALLEL_FROM or cpus < 2:
        return [migrate_file(path) for path in files]
    import concurrent.futures
    import multiprocessing

    workers = min(cpus, 8)
    # spawn: safe even when the caller runs threads (TensorFlow's, in a notebook).
    context = multiprocessing.get_context("spawn")
    chunk = max(1, len(files) // (workers * 8))
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(migrate_file, files, chunksize=chunk))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description=(
            "Rewrite Keras 2 scripts for Keras 3 with kutils: keras.utils imports become "
            "kutils imports, model.fit_generator(...) becomes fit_generator(model, ...), "
            "and other Keras 2 APIs that Keras 3 removed are reported with their fix."
        ),
        epilog=(
            "Files are rewritten in place only after all of them were parsed. Exit status: "
            "0 nothing left to do by hand, 1 the report lists something, 2 usage error."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="Python files or folders")
    parser.add_argument(
        "--diff", action="store_true", help="print the changes as a unified diff, write nothing"
    )
    return parser


class _UsageError(Exception):
    pass


def _python_files(paths: Sequence[str]) -> Iterator[str]:
    for path in paths:
        if os.path.isdir(path):
            for folder, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
                for name in sorted(names):
                    if name.endswith(".py"):
                        yield os.path.normpath(os.path.join(folder, name))
        elif os.path.isfile(path):
            yield os.path.normpath(path)
        else:
            msg = f"no such file or folder: {path!r}"
            raise _UsageError(msg)


def _diff(result: FileResult) -> str:
    assert result.new is not None
    before = result.original.decode("latin-1").splitlines(keepends=True)
    after = result.new.decode("latin-1").splitlines(keepends=True)
    lines = difflib.unified_diff(before, after, result.path, result.path)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _write_atomically(path: str, data: bytes) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    mode = os.stat(path).st_mode
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".kutils-migrate-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


# -- one file ---------------------------------------------------------------------------


def migrate_file(path: str) -> FileResult:
    """Migrate the file at ``path`` in memory: the rewritten bytes and the findings."""
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as error:
        return FileResult(path, b"", error=f"cannot read it ({error.strerror or error})")
    result = FileResult(path, data)
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as error:
        result.error = f"cannot decode it ({error})"
        return result
    if text.encode(encoding) != data:
        result.error = f"its bytes do not survive decoding as {encoding}"
        return result
    try:
        new_text, findings, changes = migrate_source(text)
    except SyntaxError as error:
        result.error = f"it does not parse ({_describe(error)})"
        return result
    result.findings = findings
    if changes:
        result.new = new_text.encode(encoding)
        result.changes = changes
    return result


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


def migrate_source(text: str) -> tuple[str, list[tuple[int, str]], int]:
    """Rewrite the Python source ``text``.

    Returns:
        The tuple ``(new_text, findings, changes)``, that is the rewritten text,
        ``(line, message)`` for each thing left to do by hand, and the number of spans
        rewritten.

    Raises:
        SyntaxError: ``text`` is not valid Python.
    """
    tree = _parse(text)
    if "keras" not in text and "_generator" not in text:
        return text, [], 0
    migrator = _Migrator(text, tree)
    migrator.run()
    return migrator.result()


# -- the rewriting ----------------------------------------------------------------------
#
# The file is parsed once by Python's own parser (``ast``); its node positions locate
# the spans to rewrite, and only those spans are replaced in the source text. A full
# pass of ``tokenize`` over every file cost more than the whole 10 s budget of 1,000
# files on the reference machine; ``tokenize`` reads only the few ``from ... import``
# statements whose module name is rewritten (the syntax tree does not place it).

# Nodes without anything to migrate below them.
_LEAVES = (ast.expr_context, ast.Constant, ast.operator, ast.boolop, ast.cmpop, ast.unaryop)
# Fields that never hold a node worth visiting.
_NOT_CHILDREN = frozenset({"ctx", "op", "ops", "id", "attr", "name", "asname", "arg", "level"})
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(kind: type) -> tuple[str, ...]:
    fields = _CHILD_FIELDS.get(kind)
    if fields is None:
        fields = tuple(f for f in kind._fields if f not in _NOT_CHILDREN)  # type: ignore[attr-defined]
        _CHILD_FIELDS[kind] = fields
    return fields


_NEWLINES = re.compile(r"\r\n|\r|\n")
_IMPORT_LINE = re.compile(r"^[^\r\n]*?\bimport\b", re.MULTILINE)
_KUTILS_FUNCTION = re.compile(r"\bdef\s+(fit_generator|evaluate_generator|predict_generator)\b")


def _normalize(path: str) -> str:
    """``tensorflow.keras.x`` and ``tensorflow.python.keras.x`` -> ``keras.x``."""
    for prefix in ("tensorflow.python.keras", "tensorflow.keras"):
        if path == prefix or path.startswith(prefix + "."):
            return "keras" + path[len(prefix) :]
    return path


_TOP: frozenset[str] | None = None
_LEGACY: dict[str, frozenset[str]] = {}


def _tables() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """The names kutils offers at the top, and in each Keras 2 module path."""
    global _TOP, _LEGACY
    if _TOP is None:
        import importlib

        import kutils

        _LEGACY = {
            name: frozenset(importlib.import_module(f"kutils.{name}").__all__)
            for name in kutils._LEGACY_MODULES
        }
        top = frozenset(name for name in kutils.__all__ if not name.startswith("_"))
        _TOP = top | frozenset(_LEGACY)
    return _TOP, _LEGACY


def _watched(path: str) -> bool:
    """Whether uses of a name bound to ``path`` may need a rewrite or a report.

    Modules and functions of Keras (and TensorFlow, for ``tf.keras``) may: their
    attributes are checked. A Keras class used by name (``Dense(...)``) needs nothing
    beyond its import, which is checked already, except an optimizer's arguments.
    """
    path = _normalize(path)
    if path in ("keras", "tensorflow") or path.startswith("keras.optimizers."):
        return True
    if not path.startswith(("keras.", "tensorflow.")):
        return False
    if path.startswith("keras.utils.") and path.count(".") == 2:
        return path[12:] in _tables()[1]  # a legacy module's names are checked
    return not path.rsplit(".", 1)[-1][:1].isupper()


def _utils_target(module: str) -> str | None:
    """The kutils module for a Keras 2 utilities module path, or None."""
    _, legacy = _tables()
    if module == "keras.utils":
        return "kutils"
    if module.startswith("keras.utils.") and module[12:] in legacy:
        return f"kutils.{module[12:]}"
    return None


class _Migrator:
    def __init__(self, text: str, tree: ast.Module) -> None:
        self.text = text
        self.tree = tree
        self.starts = [0] + [match.end() for match in _NEWLINES.finditer(text)]
        first_break = _NEWLINES.search(text)
        self.newline = first_break.group() if first_break else "\n"
        self.edits: list[tuple[int, int, str]] = []
        self.findings: list[tuple[int, str]] = []
        self.bindings: dict[str, str] = {}
        self.needs_kutils = False
        self.kutils_bound = False
        self.generator_functions: set[str] = set()
        # A script that defines its own fit_generator (function or method) keeps its calls.
        self.own_functions = set(_KUTILS_FUNCTION.findall(text))
        self.lines: list[int] = []
        self.watched: set[str] = set()

    # -- positions

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

    # -- the passes

    def run(self) -> None:
        imports: list[tuple[ast.Import | ast.ImportFrom, bool]] = []
        self.lines = [self.line_of(m.start()) for m in _IMPORT_LINE.finditer(self.text)]
        self._walk(self.tree, lambda node, top: self._collect_import(node, top, imports))
        for statement, _ in imports:
            self._bind(statement)
        for statement, top in imports:
            self._rewrite_import(statement, top)
        self.watched = {name for name, path in self.bindings.items() if _watched(path)}
        words = self.watched | set(rules.GENERATOR_METHODS) | set(rules.METHODS)
        words |= rules.SAVING_CALLS | {"class"}
        # One match per line at most: the line's start.
        alternatives = "|".join(sorted(map(re.escape, words)))
        pattern = re.compile(r"^[^\r\n]*?\b(?:" + alternatives + r")\b", re.MULTILINE)
        self.lines = [self.line_of(m.start()) for m in pattern.finditer(self.text)]
        self._walk(self.tree, self._use)
        self._insert_imports()

    def result(self) -> tuple[str, list[tuple[int, str]], int]:
        edits = sorted(self.edits, key=lambda edit: (edit[0], edit[1]))
        pieces: list[str] = []
        cursor = 0
        applied = 0
        for start, end, new in edits:
            if start < cursor:  # overlapping spans: keep the first, report the other
                self.findings.append(
                    (self.line_of(start), "overlapping rewrites; change this line by hand")
                )
                continue
            pieces.append(self.text[cursor:start])
            pieces.append(new)
            cursor = end
            applied += 1
        pieces.append(self.text[cursor:])
        return "".join(pieces), sorted(set(self.findings)), applied

    def _walk(self, node: ast.AST, visit: Callable[[ast.AST, bool], bool]) -> None:
        """Call ``visit(node, module_level)`` on the nodes of statements on ``self.lines``.

        ``visit`` returns False to skip the children of a node. Statements whose lines
        hold none of the words searched for are skipped whole.
        """
        lines = self.lines

        def relevant(statement: ast.stmt) -> bool:
            first = bisect.bisect_left(lines, statement.lineno)
            end = statement.end_lineno or statement.lineno
            return first < len(lines) and lines[first] <= end

        stack: list[tuple[ast.AST, bool]] = [
            (statement, True) for statement in reversed(self.tree.body) if relevant(statement)
        ]
        while stack:
            node, top = stack.pop()
            if not visit(node, top):
                continue
            for name in _child_fields(type(node)):
                value = getattr(node, name, None)
                if type(value) is list:
                    for item in reversed(value):
                        if isinstance(item, ast.stmt):
                            if relevant(item):
                                stack.append((item, False))
                        elif isinstance(item, ast.AST) and not isinstance(item, _LEAVES):
                            stack.append((item, False))
                elif isinstance(value, ast.AST) and not isinstance(value, _LEAVES):
                    stack.append((value, False))

    # -- imports

    def _collect_import(
        self, node: ast.AST, top: bool, found: list[tuple[ast.Import | ast.ImportFrom, bool]]
    ) -> bool:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append((node, top))
            return False
        return isinstance(node, ast.stmt)  # imports are statements: skip expressions

    def _bind(self, statement: ast.Import | ast.ImportFrom) -> None:
        for item in statement.names:
            if isinstance(statement, ast.Import):
                if item.asname is None:
                    head = item.name.split(".")[0]
                    self.bindings[head] = head
                else:
                    self.bindings[item.asname] = item.name
            elif not statement.level and statement.module and item.name != "*":
                self.bindings[item.asname or item.name] = f"{statement.module}.{item.name}"

    def _rewrite_import(self, statement: ast.Import | ast.ImportFrom, top: bool) -> None:
        if isinstance(statement, ast.Import):
            for item in statement.names:
                if item.name == "kutils" and item.asname is None and top:
                    self.kutils_bound = True
                module = _normalize(item.name)
                target = _utils_target(module)
                if target is None:
                    self._check_path(item, module, "")
                    continue
                if item.asname is None:
                    # `import keras.utils.np_utils` also binds `keras`: keep it bound.
                    target = f"{item.name.split('.')[0]}, {target}"
                    self.kutils_bound = self.kutils_bound or top
                self._replace_name(item, item.name, target)
            return
        if statement.level or not statement.module:
            return
        module = _normalize(statement.module)
        names = [item.name for item in statement.names]
        target = _utils_target(module)
        if target is not None:
            top_names, legacy = _tables()
            offered = top_names if target == "kutils" else legacy[target[7:]]
            ours = [item for item in statement.names if item.name in offered | {"*"}]
            others = [item for item in statement.names if item not in ours]
            # Names Keras 3's keras.utils still has may stay there.
            missing = [
                item
                for item in others
                if module != "keras.utils" or item.name not in rules.KERAS3_UTILS
            ]
            for item in missing:
                self.report(
                    item,
                    f"kutils does not offer {statement.module}.{item.name}: this import was "
                    "left unchanged; use the Keras 3 replacement, if any, by hand",
                )
            if not others:
                self._replace_from_module(statement, target)
            elif ours and not missing:
                self._split_import(statement, ours, others)
            return
        if module == "keras" and "utils" in names:
            item = statement.names[names.index("utils")]
            if len(names) == 1:
                start, end = self.span(statement)
                self.edits.append((start, end, f"import kutils as {item.asname or 'utils'}"))
            else:
                self.report(
                    item,
                    f"from {statement.module} import utils: move utils to its own line as "
                    "'import kutils as utils' (the other names stay)",
                )
            return
        self._check_path(statement, module, "")
        for item in statement.names:
            self._check_path(item, f"{module}.{item.name}", module)

    def _split_import(
        self, statement: ast.ImportFrom, ours: list[ast.alias], others: list[ast.alias]
    ) -> None:
        """``from keras.utils import a, b`` where only ``a`` is kutils's: two lines."""
        start, end = self.span(statement)
        indent = self.text[self.starts[statement.lineno - 1] : start]
        if statement.lineno != statement.end_lineno or indent.strip():
            names = ", ".join(item.name for item in ours)
            self.report(
                statement,
                f"import {names} from kutils on a line of their own; the other names "
                "may stay in keras.utils (Keras 3 has them)",
            )
            return

        def listed(items: list[ast.alias]) -> str:
            return ", ".join(
                item.name if item.asname is None else f"{item.name} as {item.asname}"
                for item in items
            )

        new = (
            f"from kutils import {listed(ours)}{self.newline}"
            f"{indent}from {statement.module} import {listed(others)}"
        )
        self.edits.append((start, end, new))

    def _replace_name(self, item: ast.alias, name: str, target: str) -> None:
        start, _ = self.span(item)
        if self.text[start : start + len(name)] == name:
            self.edits.append((start, start + len(name), target))
        else:
            self.report(item, f"unusual spacing in 'import {name}': change it to {target} by hand")

    def _replace_from_module(self, statement: ast.ImportFrom, target: str) -> None:
        start, end = self.span(statement)
        segment = self.text[start:end]
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(segment).readline))
        except (tokenize.TokenError, SyntaxError):
            tokens = []
        names = [t for t in tokens if t.type not in (tokenize.NL, tokenize.COMMENT)]
        # from <module> import ...: the module's tokens are those before `import`.
        if len(names) < 3 or names[0].string != "from":
            self.report(statement, f"cannot read this import: change its module to {target}")
            return
        last = next(i for i, t in enumerate(names) if t.string == "import") - 1
        segment_starts = [0] + [m.end() for m in _NEWLINES.finditer(segment)]
        first_tok, last_tok = names[1], names[last]
        begin = segment_starts[first_tok.start[0] - 1] + first_tok.start[1]
        stop = segment_starts[last_tok.end[0] - 1] + last_tok.end[1]
        self.edits.append((start + begin, start + stop, target))

    def _check_path(self, node: ast.AST, path: str, known: str) -> None:
        """Report ``path`` if a rule names it; ``known`` was reported already (its import)."""
        parts = path.split(".")
        for size in range(2, len(parts) + 1):
            prefix = ".".join(parts[:size])
            message = rules.MODULES.get(prefix)
            if message is not None:
                if not (known == prefix or known.startswith(prefix + ".")):
                    self.report(node, message)
                return
        if path in rules.NAMES and known != path:
            self.report(node, rules.NAMES[path])
            return
        if path.startswith("keras.backend.") and known != path:
            function = path.split(".")[2]
            if function in rules.BACKEND_KEPT:
                return
            if function in rules.BACKEND_FIXES:
                message = rules.BACKEND_FIXES[function]
            elif function in rules.BACKEND_TO_OPS:
                message = f"use keras.ops.{function}"
            else:
                message = "see keras.ops for its replacement"
            self.report(node, f"keras.backend.{function} is not in Keras 3: {message}")

    # -- uses

    def _use(self, node: ast.AST, top: bool) -> bool:
        kind = type(node)
        if kind is ast.Name:
            return node.id in self.watched and self._chain(node)  # type: ignore[attr-defined,arg-type]
        if kind is ast.Attribute:
            return self._chain(node)  # type: ignore[arg-type]
        if kind is ast.Call:
            self._call(node)  # type: ignore[arg-type]
        elif kind is ast.ClassDef:
            self._class(node)  # type: ignore[arg-type]
        elif kind is ast.Import or kind is ast.ImportFrom:
            return False
        return True

    def _chain_of(self, node: ast.AST) -> list[ast.AST] | None:
        """[Name, Attribute, Attribute...] of a dotted chain ending at ``node``."""
        nodes = [node]
        while isinstance(node, ast.Attribute):
            node = node.value
            nodes.append(node)
        if not isinstance(node, ast.Name):
            return None
        nodes.reverse()
        return nodes

    @staticmethod
    def _names(nodes: list[ast.AST]) -> list[str]:
        return [n.id if isinstance(n, ast.Name) else n.attr for n in nodes]  # type: ignore[attr-defined]

    def _resolve(self, node: ast.AST) -> str | None:
        nodes = self._chain_of(node)
        if nodes is None:
            return None
        names = self._names(nodes)
        binding = self.bindings.get(names[0])
        if binding is None:
            return None
        return _normalize(".".join([binding, *names[1:]]))

    def _chain(self, node: ast.Attribute | ast.Name) -> bool:
        if isinstance(node, ast.Attribute):
            self._method(node)
        nodes = self._chain_of(node)
        if nodes is None:
            return True  # e.g. f().attr: look inside
        names = self._names(nodes)
        if names[0] not in self.watched:
            return False
        binding = self.bindings[names[0]]
        known = _normalize(binding)

        def path_upto(last: int) -> str:
            return _normalize(".".join([binding, *names[1 : last + 1]]))

        top, legacy = _tables()
        # A chain that reaches keras.utils from a binding above it (keras.utils.X after
        # `import keras`, tf.keras.utils.X after `import tensorflow as tf`): to kutils.
        path = path_upto(len(names) - 1)
        utils_at = None
        if path.startswith("keras.utils.") and not known.startswith("keras.utils"):
            utils_at = next(k for k in range(1, len(names)) if path_upto(k) == "keras.utils")
        if utils_at is not None and utils_at + 1 < len(names):
            rest = names[utils_at + 1 :]
            if rest[0] in legacy and len(rest) > 1:
                if rest[1] in legacy[rest[0]]:
                    self._to_kutils(nodes[0], nodes[utils_at + 2], f"kutils.{rest[0]}.{rest[1]}")
                else:
                    self.report(
                        node,
                        f"kutils does not offer keras.utils.{rest[0]}.{rest[1]}; left unchanged",
                    )
            elif rest[0] in top:
                self._to_kutils(nodes[0], nodes[utils_at + 1], f"kutils.{rest[0]}")
            elif rest[0] not in rules.KERAS3_UTILS:  # those stay in keras.utils
                self.report(node, f"kutils does not offer keras.utils.{rest[0]}; left unchanged")
            return False
        if _utils_target(known) is not None:
            # an alias of a keras.utils module, rewritten at its import: check the name
            offered = top if known == "keras.utils" else legacy[known[12:]]
            if len(names) > 1 and names[1] not in offered:
                self.report(node, f"kutils does not offer {known}.{names[1]}")
            return False
        if path.startswith("keras."):
            self._check_path(node, path, known)
        return False

    def _to_kutils(self, first: ast.AST, last: ast.AST, target: str) -> None:
        start, _ = self.span(first)
        _, end = self.span(last)
        self.edits.append((start, end, target))
        self.needs_kutils = True

    def _method(self, node: ast.Attribute) -> None:
        if node.attr in rules.METHODS:
            self.report(node, rules.METHODS[node.attr])
        elif (
            node.attr in rules.GENERATOR_METHODS
            and node.attr not in self.own_functions
            and not getattr(node, "_kutils_called", False)
        ):
            self.report(
                node,
                f"{node.attr} used without a call: Keras 3 models have no {node.attr}; "
                f"call kutils.{node.attr}(model, ...) instead",
            )

    def _call(self, call: ast.Call) -> None:
        func = call.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in rules.GENERATOR_METHODS:
            for keyword_ in call.keywords:
                if keyword_.arg in rules.GENERATOR_KEYWORDS:
                    self.report(keyword_, rules.GENERATOR_KEYWORDS[keyword_.arg])
            if isinstance(func, ast.Attribute) and name not in self.own_functions:
                func._kutils_called = True  # type: ignore[attr-defined]
                self._rewrite_generator_call(call, func)
        if name in rules.SAVING_CALLS:
            values = [*call.args, *(k.value for k in call.keywords)]
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    lowered = value.value.lower()
                    if lowered.endswith((".h5", ".hdf5")) and not lowered.endswith(".weights.h5"):
                        self.report(value, rules.SAVING_MESSAGE)
                        break
        path = self._resolve(func)
        if path is not None and path.startswith("keras.optimizers."):
            for keyword_ in call.keywords:
                if keyword_.arg in rules.OPTIMIZER_KEYWORDS:
                    self.report(keyword_, rules.OPTIMIZER_KEYWORDS[keyword_.arg])

    def _rewrite_generator_call(self, call: ast.Call, func: ast.Attribute) -> None:
        receiver_start, receiver_end = self.span(func.value)
        _, after_name = self.span(func)
        opener = after_name
        while opener < len(self.text) and self.text[opener] in " \t\\\r\n\f":
            opener += 1
        if self.text[opener : opener + 1] != "(":
            self.report(func, f"cannot read this call of {func.attr}: change it by hand")
            return
        after = opener + 1
        if not call.args and not call.keywords:
            separator = ""
        elif self.text[after : after + 1] in ("\n", "\r", "\\", "#"):
            separator = ","
        else:
            separator = ", "
        receiver = self.text[receiver_start:receiver_end]
        if isinstance(func.value, (ast.Tuple, ast.NamedExpr, ast.Yield, ast.YieldFrom)):
            receiver = f"({receiver})"
        self.edits.append((receiver_start, after, f"{func.attr}({receiver}{separator}"))
        self.generator_functions.add(func.attr)

    def _class(self, node: ast.ClassDef) -> None:
        if not any(self._resolve(base) in rules.CUSTOM_OBJECT_BASES for base in node.bases):
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
            self.report(node, rules.CUSTOM_OBJECT_MESSAGE.format(name=node.name))

    # -- the imports the rewrites need

    def _insert_imports(self) -> None:
        lines = []
        if self.needs_kutils and not self.kutils_bound:
            lines.append("import kutils")
        wanted = sorted(
            name
            for name in self.generator_functions
            if self.bindings.get(name) not in (f"kutils.{name}", f"kutils.generators.{name}")
        )
        if wanted:
            lines.append(f"from kutils import {', '.join(wanted)}")
        if not lines:
            return
        block = "".join(line + self.newline for line in lines)
        body = self.tree.body
        last: ast.stmt | None = None
        for index, statement in enumerate(body):
            docstring = (
                index == 0
                and isinstance(statement, ast.Expr)
                and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str)
            )
            if docstring or isinstance(statement, (ast.Import, ast.ImportFrom)):
                last = statement
                continue
            break
        if last is None:
            position = self.starts[body[0].lineno - 1] if body else len(self.text)
        else:
            end_line = last.end_lineno or last.lineno
            if end_line < len(self.starts):
                position = self.starts[end_line]
            else:  # the last line has no line break
                position = len(self.text)
                block = self.newline + block[: -len(self.newline)]
        self.edits.append((position, position, block))

"""``kutils migrate``: move a tree of Keras 2 scripts to Keras 3 with kutils.

    python -m kutils migrate PATH...        # rewrite in place
    python -m kutils migrate --diff PATH... # show the change, write nothing

The command rewrites every import and use of the Keras 2 utilities (``keras.utils``,
``keras.utils.np_utils`` and the other Keras 2 module paths, ``tensorflow.keras.utils``)
into its kutils form, and ``model.fit_generator(...)``, ``evaluate_generator`` and
``predict_generator`` into the kutils functions that keep their Keras 2 meaning. It
reports, with file and line, every other Keras 2 API the code uses that Keras 3 removed
or changed (the table is ``kutils._migrate_rules``).

The source is read with the standard library's ``tokenize``: only the changed spans
are replaced, so comments, formatting, line endings and the file's encoding are kept
byte for byte. Every file is parsed before any is written; a file that cannot be
parsed is reported and left alone. A second run changes nothing. Exit status: 0 when
nothing is left to do by hand, 1 when the report lists something, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import keyword
import os
import sys
import tempfile
import tokenize
import warnings
from collections.abc import Iterator, Sequence
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
        files = list(_python_files(args.paths))
    except _UsageError as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        return 2
    results = [migrate_file(path) for path in files]
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
            _write_atomically(result.path, result.new)
    findings = sum(len(result.findings) for result in results)
    failed = sum(result.error is not None for result in results)
    verb = "would rewrite" if args.diff else "rewrote"
    print(
        f"{_PROG}: {len(files)} file(s) read, {verb} {len(changed)}, "
        f"{findings} thing(s) to change by hand, {failed} file(s) not parsed",
        file=sys.stderr,
    )
    return 1 if findings or failed else 0


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
                        yield os.path.join(folder, name)
        elif os.path.isfile(path):
            yield path
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
    syntax = _syntax_error(text)
    if syntax is not None:
        result.error = f"it does not parse ({syntax})"
        return result
    new_text, findings, changes = migrate_source(text)
    result.findings = findings
    if changes:
        syntax = _syntax_error(new_text)
        if syntax is not None:  # a bug of this command: never write such a file
            result.error = f"the rewritten file would not parse ({syntax}); left unchanged"
            return result
        result.new = new_text.encode(encoding)
        result.changes = changes
    return result


def _syntax_error(text: str) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(text, "<file>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        except (SyntaxError, ValueError) as error:
            line = getattr(error, "lineno", None)
            where = f"line {line}: " if line else ""
            return f"{where}{getattr(error, 'msg', error)}"
    return None


def migrate_source(text: str) -> tuple[str, list[tuple[int, str]], int]:
    """Rewrite the Python source ``text``.

    Returns:
        ``(new_text, findings, changes)``: the rewritten text, ``(line, message)`` for
        each thing left to do by hand, and the number of spans rewritten.

    Raises:
        tokenize.TokenError, SyntaxError: ``text`` is not valid Python.
    """
    if "keras" not in text and "_generator" not in text:
        return text, [], 0
    migrator = _Migrator(text)
    migrator.run()
    return migrator.result()


# -- the rewriting ----------------------------------------------------------------------

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {")", "]", "}"}


def _normalize(path: str) -> str:
    """``tensorflow.keras.x`` and ``tensorflow.python.keras.x`` -> ``keras.x``."""
    for prefix in ("tensorflow.python.keras", "tensorflow.keras"):
        if path == prefix or path.startswith(prefix + "."):
            return "keras" + path[len(prefix) :]
    return path


def _offered() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """The names ``kutils`` offers at the top and in each legacy module."""
    import importlib

    import kutils

    legacy = {
        name: frozenset(importlib.import_module(f"kutils.{name}").__all__)
        for name in kutils._LEGACY_MODULES
    }
    top = frozenset(name for name in kutils.__all__ if not name.startswith("_"))
    return top | frozenset(legacy), legacy


_TOP: frozenset[str] | None = None
_LEGACY: dict[str, frozenset[str]] = {}


def _tables() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    global _TOP, _LEGACY
    if _TOP is None:
        _TOP, _LEGACY = _offered()
    return _TOP, _LEGACY


@dataclass
class _Import:
    first: int  # index of the `import`/`from` token
    last: int  # index of the last token of the statement
    module_level: bool
    kind: str  # "import" or "from"
    module: str = ""  # for `from`
    module_span: tuple[int, int] = (0, 0)  # token indices of the module name
    relative: bool = False
    # (name or dotted name, alias, first token, last token of the dotted name)
    items: list[tuple[str, str | None, int, int]] = field(default_factory=list)
    star: bool = False


class _Migrator:
    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        for line in text.split("\n")[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)
        raw = tokenize.generate_tokens(io.StringIO(text).readline)
        skip = (tokenize.COMMENT, tokenize.NL)
        self.toks = [tok for tok in raw if tok.type not in skip]
        self.match: dict[int, int] = {}
        stack: list[int] = []
        for index, tok in enumerate(self.toks):
            if tok.type == tokenize.OP:
                if tok.string in _OPEN:
                    stack.append(index)
                elif tok.string in _CLOSE and stack:
                    opener = stack.pop()
                    self.match[opener] = index
                    self.match[index] = opener
        self.edits: list[tuple[int, int, str]] = []
        self.findings: list[tuple[int, str]] = []
        self.bindings: dict[str, str] = {}
        self.imports: list[_Import] = []
        self.in_import: set[int] = set()
        self.needs_kutils = False
        self.kutils_bound = False
        self.generator_functions: set[str] = set()
        # A script that defines its own fit_generator (function or method) keeps its calls.
        self.own_functions = {
            self.toks[i + 1].string
            for i in range(len(self.toks) - 1)
            if self.toks[i].string == "def" and self.toks[i].type == tokenize.NAME
        }
        self.newline = "\r\n" if "\r\n" in text[: text.find("\n") + 1] else "\n"

    # -- helpers

    def off(self, position: tuple[int, int]) -> int:
        row, col = position
        return self.starts[row - 1] + col

    def span(self, first: int, last: int) -> tuple[int, int]:
        return self.off(self.toks[first].start), self.off(self.toks[last].end)

    def replace(self, first: int, last: int, new: str) -> None:
        start, end = self.span(first, last)
        self.edits.append((start, end, new))

    def report(self, index: int, message: str) -> None:
        self.findings.append((self.toks[index].start[0], message))

    def is_op(self, index: int, string: str) -> bool:
        return (
            0 <= index < len(self.toks)
            and self.toks[index].string == string
            and (self.toks[index].type == tokenize.OP)
        )

    def is_name(self, index: int) -> bool:
        return 0 <= index < len(self.toks) and self.toks[index].type == tokenize.NAME

    # -- passes

    def run(self) -> None:
        self._scan_imports()
        for statement in self.imports:
            self._bind(statement)
        for statement in self.imports:
            self._rewrite_import(statement)
        self._scan_uses()
        self._scan_classes()
        self._insert_imports()

    def result(self) -> tuple[str, list[tuple[int, str]], int]:
        edits = sorted(self.edits, key=lambda edit: (edit[0], edit[1]))
        pieces: list[str] = []
        cursor = 0
        applied = 0
        for start, end, new in edits:
            if start < cursor:  # overlapping spans: keep the first, report the other
                line = self.text.count("\n", 0, start) + 1
                self.findings.append((line, "overlapping rewrites; change this line by hand"))
                continue
            pieces.append(self.text[cursor:start])
            pieces.append(new)
            cursor = end
            applied += 1
        pieces.append(self.text[cursor:])
        findings = sorted(set(self.findings))
        return "".join(pieces), findings, applied

    def _scan_imports(self) -> None:
        toks = self.toks
        depth = 0
        indent = 0
        at_start = True
        index = 0
        while index < len(toks):
            tok = toks[index]
            if tok.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
                indent += {tokenize.INDENT: 1, tokenize.DEDENT: -1}.get(tok.type, 0)
                at_start = True
                index += 1
                continue
            if at_start and tok.type == tokenize.NAME and tok.string in ("import", "from"):
                end = index
                while end + 1 < len(toks):
                    nxt = toks[end + 1]
                    if nxt.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                        break
                    if nxt.type == tokenize.OP and nxt.string == ";":
                        break
                    end += 1
                statement = self._parse_import(index, end, module_level=indent == 0)
                if statement is not None:
                    self.imports.append(statement)
                    self.in_import.update(range(index, end + 1))
                index = end + 1
                at_start = False
                continue
            at_start = False
            if tok.type == tokenize.OP:
                if tok.string in _OPEN:
                    depth += 1
                elif tok.string in _CLOSE:
                    depth = max(depth - 1, 0)
                elif tok.string in (";", ":") and depth == 0:
                    at_start = True
            index += 1

    def _dotted(self, index: int, last: int) -> tuple[str, int]:
        """The dotted name starting at token ``index``: (name, index of its last token)."""
        parts = [self.toks[index].string]
        while index + 2 <= last and self.is_op(index + 1, ".") and self.is_name(index + 2):
            parts.append(self.toks[index + 2].string)
            index += 2
        return ".".join(parts), index

    def _parse_import(self, first: int, last: int, *, module_level: bool) -> _Import | None:
        toks = self.toks
        kind = toks[first].string
        statement = _Import(first, last, module_level, kind)
        index = first + 1
        if kind == "from":
            while index <= last and toks[index].string in (".", "..."):
                statement.relative = True
                index += 1
            if index <= last and toks[index].string != "import":
                if not self.is_name(index):
                    return None
                statement.module, end = self._dotted(index, last)
                statement.module_span = (index, end)
                index = end + 1
            if index > last or toks[index].string != "import":
                return None
            index += 1
            if index <= last and toks[index].string == "*":
                statement.star = True
                return statement
        while index <= last:
            tok = toks[index]
            if tok.string in ("(", ")", ","):
                index += 1
                continue
            if not self.is_name(index):
                return None
            if kind == "from":
                name, end = tok.string, index
            else:
                name, end = self._dotted(index, last)
            alias = None
            after = end + 1
            if after + 1 <= last and toks[after].string == "as" and self.is_name(after + 1):
                alias = toks[after + 1].string
                after += 2
            statement.items.append((name, alias, index, end))
            index = after
        return statement

    def _bind(self, statement: _Import) -> None:
        for name, alias, _, _ in statement.items:
            if statement.kind == "import":
                if alias is None:
                    head = name.split(".")[0]
                    self.bindings[head] = head
                else:
                    self.bindings[alias] = name
            elif not statement.relative:
                self.bindings[alias or name] = f"{statement.module}.{name}"
        for name, _, _, _ in statement.items:
            if statement.kind == "import" and name == "kutils" and statement.module_level:
                self.kutils_bound = True

    def _rewrite_import(self, statement: _Import) -> None:
        top, legacy = _tables()
        if statement.kind == "from":
            if statement.relative:
                return
            module = _normalize(statement.module)
            first, last = statement.module_span
            names = [name for name, _, _, _ in statement.items]
            if module == "keras.utils" or (
                module.startswith("keras.utils.") and module[12:] in legacy
            ):
                sub = module[12:]
                target = f"kutils.{sub}" if sub else "kutils"
                offered = legacy[sub] if sub else top
                missing = [(n, i) for n, _, i, _ in statement.items if n not in offered]
                for name, index in missing:
                    self.report(
                        index,
                        f"kutils does not offer {statement.module}.{name}: this import was "
                        "left unchanged; use the Keras 3 replacement, if any, by hand",
                    )
                if not missing:
                    self.replace(first, last, target)
                return
            if module == "keras" and "utils" in names:
                if len(statement.items) == 1:
                    bound = statement.items[0][1] or "utils"
                    self.replace(statement.first, statement.last, f"import kutils as {bound}")
                else:
                    index = statement.items[names.index("utils")][2]
                    self.report(
                        index,
                        f"from {statement.module} import utils: move utils to its own line "
                        "as 'import kutils as utils' (the other names stay)",
                    )
                return
            self._check_path(statement.module_span[0], module, "")
            for item, _, index, _ in statement.items:
                self._check_path(index, f"{module}.{item}", module)
            return
        for name, alias, first, last in statement.items:
            module = _normalize(name)
            if module == "keras.utils" or (
                module.startswith("keras.utils.") and module[12:] in legacy
            ):
                sub = module[12:]
                target = f"kutils.{sub}" if sub else "kutils"
                if alias is None:
                    target = f"{name.split('.')[0]}, {target}"
                    if statement.module_level:
                        self.kutils_bound = True
                self.replace(first, last, target)
            else:
                self._check_path(first, module, "")

    def _check_path(self, index: int, path: str, known: str) -> None:
        """Report ``path`` if a rule names it; ``known`` was reported already (its import)."""
        for prefix, message in rules.MODULES.items():
            if (path == prefix or path.startswith(prefix + ".")) and not (
                known == prefix or known.startswith(prefix + ".")
            ):
                self.report(index, message)
                return
        if path in rules.NAMES and known != path:
            self.report(index, rules.NAMES[path])
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
            self.report(index, f"keras.backend.{function} is not in Keras 3: {message}")

    def _scan_uses(self) -> None:
        toks = self.toks
        index = 0
        while index < len(toks):
            tok = toks[index]
            if index in self.in_import:
                index += 1
                continue
            if tok.type == tokenize.OP and tok.string == "." and self.is_name(index + 1):
                self._method(index)
                index += 2
                continue
            if tok.type == tokenize.NAME and not self.is_op(index - 1, "."):
                if self.is_name(index - 1) and toks[index - 1].string in ("def", "class"):
                    index += 1
                    continue
                if tok.string in rules.GENERATOR_METHODS and self.is_op(index + 1, "("):
                    self._keras1_keywords(index + 1)
                if tok.string in self.bindings:
                    index = self._chain(index) + 1
                    continue
                if tok.string in rules.SAVING_CALLS and self.is_op(index + 1, "("):
                    self._saving_call(index)
            index += 1

    def _chain(self, index: int) -> int:
        """Handle the dotted chain at ``index``; return the index of its last name."""
        toks = self.toks
        names = [toks[index].string]
        positions = [index]
        end = index
        while self.is_op(end + 1, ".") and self.is_name(end + 2):
            end += 2
            names.append(toks[end].string)
            positions.append(end)
        binding = self.bindings[names[0]]
        known = _normalize(binding)

        def path_upto(last: int) -> str:
            return _normalize(".".join([binding, *names[1 : last + 1]]))

        path = path_upto(len(names) - 1)
        top, legacy = _tables()
        # A chain that reaches keras.utils from a binding above it (keras.utils.X after
        # `import keras`, tf.keras.utils.X after `import tensorflow as tf`): to kutils.
        utils_at = next((k for k in range(1, len(names)) if path_upto(k) == "keras.utils"), None)
        if utils_at is not None and utils_at + 1 < len(names):
            rest = names[utils_at + 1 :]
            if rest[0] in legacy:
                if len(rest) == 1:
                    self._to_kutils(index, positions[utils_at + 1], f"kutils.{rest[0]}")
                elif rest[1] in legacy[rest[0]]:
                    target = f"kutils.{rest[0]}.{rest[1]}"
                    self._to_kutils(index, positions[utils_at + 2], target)
                else:
                    self.report(
                        index,
                        f"kutils does not offer keras.utils.{rest[0]}.{rest[1]}; left unchanged",
                    )
            elif rest[0] in top:
                self._to_kutils(index, positions[utils_at + 1], f"kutils.{rest[0]}")
            else:
                self.report(index, f"kutils does not offer keras.utils.{rest[0]}; left unchanged")
            return end
        if known == "keras.utils" or (known.startswith("keras.utils.") and known[12:] in legacy):
            # an alias of a keras.utils module, rewritten at its import: check the name
            offered = top if known == "keras.utils" else legacy[known[12:]]
            if len(names) > 1 and names[1] not in offered:
                self.report(index, f"kutils does not offer {known}.{names[1]}")
            return end
        if path.startswith("keras."):
            self._check_path(index, path, known)
            if self.is_op(end + 1, "(") and path.startswith("keras.optimizers."):
                self._optimizer_call(end + 1)
            if names[-1] in rules.SAVING_CALLS and self.is_op(end + 1, "("):
                self._saving_call(end)
        return end

    def _to_kutils(self, first: int, last: int, target: str) -> None:
        self.replace(first, last, target)
        self.needs_kutils = True

    def _arguments(self, opener: int) -> Iterator[int]:
        """Indices of the tokens directly inside the brackets opened at ``opener``."""
        close = self.match.get(opener)
        if close is None:
            return
        index = opener + 1
        while index < close:
            yield index
            index = self.match[index] + 1 if index in self.match else index + 1

    def _optimizer_call(self, opener: int) -> None:
        for index in self._arguments(opener):
            word = self.toks[index].string
            if word in rules.OPTIMIZER_KEYWORDS and self.is_op(index + 1, "="):
                self.report(index, rules.OPTIMIZER_KEYWORDS[word])

    def _saving_call(self, name_index: int) -> None:
        for index in self._arguments(name_index + 1):
            tok = self.toks[index]
            if tok.type != tokenize.STRING:
                continue
            body = tok.string.rstrip("'\"").lower()
            if body.endswith((".h5", ".hdf5")) and not body.endswith(".weights.h5"):
                self.report(index, rules.SAVING_MESSAGE)
                return

    def _method(self, dot: int) -> None:
        name_index = dot + 1
        name = self.toks[name_index].string
        if name in rules.METHODS:
            self.report(name_index, rules.METHODS[name])
        elif name in rules.GENERATOR_METHODS and name not in self.own_functions:
            if not self.is_op(name_index + 1, "("):
                self.report(
                    name_index,
                    f"{name} used without a call: Keras 3 models have no {name}; call "
                    f"kutils.{name}(model, ...) instead",
                )
                return
            self._rewrite_generator_call(dot, name)
        elif name in rules.SAVING_CALLS and self.is_op(name_index + 1, "("):
            self._saving_call(name_index)

    def _rewrite_generator_call(self, dot: int, name: str) -> None:
        opener = dot + 2
        start = self._receiver_start(dot - 1)
        if start is None:
            self.report(dot + 1, f"cannot tell which model calls {name}: change it by hand")
            return
        self._keras1_keywords(opener)
        receiver_start, receiver_end = self.span(start, dot - 1)
        receiver = self.text[receiver_start:receiver_end]
        after = self.off(self.toks[opener].end)
        if self.is_op(opener + 1, ")"):
            separator = ""
        elif self.text[after : after + 1] in ("\n", "\r", "\\", "#"):
            separator = ","
        else:
            separator = ", "
        self.edits.append(
            (receiver_start, after, f"{name}({receiver}{separator}"),
        )
        self.generator_functions.add(name)

    def _keras1_keywords(self, opener: int) -> None:
        for index in self._arguments(opener):
            word = self.toks[index].string
            if word in rules.GENERATOR_KEYWORDS and self.is_op(index + 1, "="):
                self.report(index, rules.GENERATOR_KEYWORDS[word])

    def _receiver_start(self, index: int) -> int | None:
        """First token of the expression ending at token ``index`` (before ``.name``)."""
        toks = self.toks
        while True:
            tok = toks[index]
            if tok.type == tokenize.OP and tok.string in _CLOSE:
                opener = self.match.get(index)
                if opener is None:
                    return None
                before = opener - 1
                if before >= 0 and (
                    (
                        toks[before].type == tokenize.NAME
                        and not keyword.iskeyword(toks[before].string)
                    )
                    or toks[before].string in _CLOSE
                    or toks[before].type == tokenize.STRING
                ):
                    index = before  # a call or subscript: its callee comes first
                    continue
                start = opener
            elif (
                (tok.type == tokenize.NAME and not keyword.iskeyword(tok.string))
                or tok.type in (tokenize.STRING, tokenize.NUMBER)
                or tok.string in ("self", "super")
            ):
                start = index
            else:
                return None
            if self.is_op(start - 1, "."):
                index = start - 2
                if index < 0:
                    return None
                continue
            return start

    def _scan_classes(self) -> None:
        toks = self.toks
        for index, tok in enumerate(toks):
            if tok.type != tokenize.NAME or tok.string != "class" or not self.is_name(index + 1):
                continue
            if not self.is_op(index + 2, "("):
                continue
            bases = []
            for arg in self._arguments(index + 2):
                if (
                    self.is_name(arg)
                    and not self.is_op(arg - 1, ".")
                    and not self.is_op(arg + 1, "=")
                ):
                    dotted, _ = self._dotted(arg, len(toks) - 1)
                    head, _, rest = dotted.partition(".")
                    if head in self.bindings:
                        resolved = self.bindings[head] + (f".{rest}" if rest else "")
                        bases.append(_normalize(resolved))
            if not any(base in rules.CUSTOM_OBJECT_BASES for base in bases):
                continue
            body = self._class_body(index)
            methods = {
                toks[i + 1].string for i in body if toks[i].string == "def" and self.is_name(i + 1)
            }
            if "get_config" in methods or "__init__" not in methods:
                continue
            init = next(
                i for i in body if toks[i].string == "def" and toks[i + 1].string == "__init__"
            )
            params = [
                toks[i].string
                for i in self._arguments(init + 2)
                if self.is_name(i)
                and not self.is_op(i - 1, "*")
                and not self.is_op(i - 1, "**")
                and not self.is_op(i - 1, "=")
                and not self.is_op(i - 1, ":")
            ]
            if [p for p in params if p not in ("self",)]:
                self.report(
                    index + 1, rules.CUSTOM_OBJECT_MESSAGE.format(name=toks[index + 1].string)
                )

    def _class_body(self, index: int) -> list[int]:
        """Token indices of the body of the class statement at ``index`` (one level)."""
        toks = self.toks
        position = index
        while position < len(toks) and toks[position].type != tokenize.NEWLINE:
            position += 1
        if position + 1 >= len(toks) or toks[position + 1].type != tokenize.INDENT:
            return []
        level = 0
        body = []
        for i in range(position + 1, len(toks)):
            kind = toks[i].type
            if kind == tokenize.INDENT:
                level += 1
            elif kind == tokenize.DEDENT:
                level -= 1
                if level == 0:
                    break
            elif level == 1:
                body.append(i)
        return body

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
        position, lead = self._import_position()
        text = lead + "".join(line + self.newline for line in lines)
        if lead:
            text = text[: -len(self.newline)]
        self.edits.append((position, position, text))

    def _import_position(self) -> tuple[int, str]:
        """Where module-level imports go: after the leading imports (or docstring)."""
        toks = self.toks
        module_imports = {s.first: s for s in self.imports if s.module_level}
        after: int | None = None
        index = 0
        first_statement: int | None = None
        seen_docstring = False
        while index < len(toks) and toks[index].type != tokenize.ENDMARKER:
            tok = toks[index]
            if tok.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
                index += 1
                continue
            if first_statement is None:
                first_statement = index
            end = index
            while end < len(toks) and toks[end].type not in (tokenize.NEWLINE, tokenize.ENDMARKER):
                end += 1
            if index in module_imports or (
                not seen_docstring and after is None and tok.type == tokenize.STRING
            ):
                seen_docstring = seen_docstring or tok.type == tokenize.STRING
                after = end
                index = end + 1
                continue
            break
        if after is None:
            if first_statement is None:
                return len(self.text), ""
            row = toks[first_statement].start[0]
            return self.starts[row - 1], ""
        newline_tok = toks[after] if after < len(toks) else None
        if newline_tok is None or newline_tok.type != tokenize.NEWLINE or not newline_tok.string:
            end_tok = toks[after - 1] if newline_tok is None else newline_tok
            return self.off(end_tok.end), self.newline
        return self.off(newline_tok.end), ""

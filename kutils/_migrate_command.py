"""The command line of ``kutils migrate``: find the files, migrate, report, write back.

Every file is read and rewritten in memory first (by :func:`kutils.migrate.migrate_file`,
in worker processes for a large tree), then the report is printed, then the files are
written back one by one (``kutils._migrate_write``), or shown as a diff. A file that
fails at any step is reported with the reason and the run goes on. The summary counts
what really happened; the exit status follows docs/migrate.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import difflib
import os
import pickle
import re
import stat
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

from kutils import _migrate_file as api
from kutils._migrate_write import Refused, write_back

_PROG = "kutils migrate"
_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})
_SUFFIXES = (".py", ".ipynb")
_MODEL_SUFFIXES = (".h5", ".hdf5")


def run(argv: Sequence[str] | None = None) -> int:
    """Run ``kutils migrate`` with ``argv`` (without the ``migrate`` word); return the status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        return int(exit_.code or 0)
    try:
        files = _unique(_files(args.paths))
    except _UsageError as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        return 2
    models: list[str] = []
    if args.convert_models:
        models = [path for path in files if path.endswith(_MODEL_SUFFIXES)]
        models += _model_files(args.paths)
        files = [path for path in files if not path.endswith(_MODEL_SUFFIXES)]
    results = _migrate_all(files)
    _weight_names(results)
    out = sys.stdout
    for result in results:
        if result.error is not None:
            _print(out, f"{_shown(result.path)}: not migrated: {result.error}")
        for line, message in result.findings:
            _print(out, f"{_shown(result.path)}:{line}: {message}")
        for cell, line, message in result.cell_findings:
            _print(out, f"{_shown(result.path)}: cell {cell}, line {line}: {message}")
    changed = [result for result in results if result.new is not None]
    if args.diff:
        for result in changed:
            _write_bytes(out, _diff(result))
        done = len(changed)
    else:
        done = _write_all(out, changed)
    findings = sum(len(result.findings) + len(result.cell_findings) for result in results)
    failed = sum(result.error is not None for result in results)
    read = sum(result.read for result in results)
    verb = "would rewrite" if args.diff else "rewrote"
    converted = ""
    if args.convert_models:
        made, not_made = _convert_models(out, _unique(iter(models)), dry_run=args.diff)
        failed += not_made
        verb_models = "would convert" if args.diff else "converted"
        converted = f", {verb_models} {made} model file(s)"
    print(
        f"{_PROG}: {read} file(s) read, {verb} {done}{converted}, "
        f"{findings} thing(s) to change by hand, {failed} file(s) not migrated",
        file=sys.stderr,
    )
    return 1 if findings or failed or (args.diff and (changed or converted)) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description=(
            "Rewrite Keras 2 scripts for Keras 3 with kutils: keras.utils imports become "
            "kutils imports, model.fit_generator(...) becomes fit_generator(model, ...), "
            "and other Keras 2 APIs that Keras 3 removed are reported with their fix."
        ),
        epilog=(
            "Files are rewritten in place only after all of them were read; a file "
            "changed meanwhile is left alone. Exit status: 0 nothing left to do, 1 the "
            "report lists something (or --diff shows a change), 2 usage error."
        ),
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="Python files, notebooks or folders"
    )
    parser.add_argument(
        "--diff", action="store_true", help="print the changes as a unified diff, write nothing"
    )
    parser.add_argument(
        "--convert-models",
        action="store_true",
        help=(
            "also save each Keras 2 model file (.h5/.hdf5 written by model.save) as "
            ".keras beside it, kept only when it predicts the same as the original on a "
            "probe input; existing files are never overwritten (needs Keras and h5py)"
        ),
    )
    return parser


class _UsageError(Exception):
    pass


def _files(paths: Sequence[str]) -> Iterator[str]:
    for path in paths:
        if os.path.isdir(path):
            for folder, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
                for name in sorted(names):
                    full = os.path.join(folder, name)
                    if name.endswith(_SUFFIXES) and not _special(full):
                        yield os.path.normpath(full)
        elif os.path.isfile(path):
            yield os.path.normpath(path)
        else:
            msg = f"no such file or folder: {path!r}"
            raise _UsageError(msg)


def _special(path: str) -> bool:
    """A pipe, socket or device: not a file to read (a dangling link is reported)."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _unique(paths: Iterator[str]) -> list[str]:
    """Each file once, even when named twice, inside a folder also named, or linked."""
    seen: dict[object, str] = {}
    for path in paths:
        try:
            info = os.stat(path)
            key: object = (info.st_dev, info.st_ino)
        except OSError:  # reported when it is read
            key = os.path.realpath(path)
        seen.setdefault(key, path)
    return list(seen.values())


def _model_files(paths: Sequence[str]) -> list[str]:
    """The .h5/.hdf5 files inside the folders named (files named are taken as they are)."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            for folder, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
                found += [
                    os.path.normpath(os.path.join(folder, name))
                    for name in sorted(names)
                    if name.endswith(_MODEL_SUFFIXES)
                ]
    return found


def _convert_models(out: TextIO, paths: list[str], *, dry_run: bool) -> tuple[int, int]:
    """Convert (or, dry, list) the Keras 2 model files; return (converted, failed)."""
    from kutils import _model_conversion

    made = failed = 0
    for path in paths:
        if not _model_conversion.is_keras2_model_file(path):
            continue  # weights only, or written by Keras 3: nothing to convert
        if dry_run:
            _print(out, f"{_shown(path)}: would convert to .keras")
            made += 1
            continue
        result = _model_conversion.convert_model_file(path)
        if result.target is not None:
            note = " (load it with kutils.load_model)" if result.needs_kutils else ""
            shown = f"{_shown(path)}: converted to {_shown(result.target)}"
            _print(out, f"{shown} (same predictions){note}")
            made += 1
        else:
            _print(out, f"{_shown(path)}: model not converted: {result.error}")
            failed += 1
    return made, failed


def _weight_names(results: list[api.FileResult]) -> None:
    """Rename the weights file names every file of the run agrees on; report the others.

    Decided for the whole run once every file was read, before any is written
    (``kutils._migrate_weights``). A file whose renaming fails is left alone, reported.
    """
    from kutils import _migrate_weights as weights

    if not any(result.weight_sites for result in results):
        return
    chosen, kept = weights.decide(results)
    while True:
        done = [_through_kutils(result, frozenset(kept)) for result in results]
        failed: tuple[api.FileResult, Exception] | None = None
        for result in done:
            try:
                weights.apply(result, chosen, kept)
            except Exception as error:  # a defect: this file fails, not the run
                failed = result, error
                break
        if failed is None:
            results[:] = done
            return
        # Its names stay as they are everywhere, so that saves and loads still agree.
        bad, problem = failed
        names = {site.name for site in bad.weight_sites}
        chosen -= names
        kept.update({name: [bad.path] for name in names if name not in kept})
        original = next(item for item in results if item.path == bad.path)
        original.new, original.changes, original.weight_sites = None, 0, []
        original.error = (
            f"kutils migrate failed renaming its weights files ({type(problem).__name__}: "
            f"{problem}); please report this to kutils"
        )


def _through_kutils(result: api.FileResult, kept: frozenset[str]) -> api.FileResult:
    """A copy of ``result``, migrated again when it saves or loads a kept weights name:
    its literal ``save_weights``/``load_weights`` of that name then call kutils'
    functions, which keep Keras 2's file at any name (``kutils._migrate_model_calls``).
    Where that fails, the first migration stays (and its saves are reported)."""
    if result.error is None and any(site.name in kept for site in result.weight_sites):
        again = api.remigrate(result, kept)
        if again.error is None:
            return again
    return dataclasses.replace(result)


# -- migrating, in worker processes for a large tree ----------------------------------


def _migrate_all(files: list[str]) -> list[api.FileResult]:
    """Migrate each file in memory (nothing is written here), in parallel for many files.

    The workers are fresh interpreters that import kutils only (never the caller's
    ``__main__``, so a script without a ``__main__`` guard can call :func:`run`); a
    worker that fails has its files migrated here instead.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    if len(files) < api._PARALLEL_FROM or cpus < 2 or not sys.executable:
        return [api.migrate_file(path) for path in files]
    workers = min(cpus, 8)
    chunks = [files[index::workers] for index in range(workers)]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(_in_worker, chunks))
    results: list[api.FileResult] = [None] * len(files)  # type: ignore[list-item]
    for index, part in enumerate(parts):
        results[index::workers] = part
    return results


# `-c` puts the current folder first on sys.path: drop it, so that a user's tree being
# migrated (a `pickle.py` in it...) cannot shadow the modules the worker imports.
_WORKER = "import sys; del sys.path[0]; from kutils._migrate_command import serve; serve()"


def _in_worker(paths: list[str]) -> list[api.FileResult]:
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(api.__file__)))
    python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    try:
        done = subprocess.run(
            [sys.executable, "-c", _WORKER],
            input=pickle.dumps(paths),
            capture_output=True,
            env={**os.environ, "PYTHONPATH": python_path},
            check=True,
        )
        results = pickle.loads(done.stdout)
        if isinstance(results, list) and len(results) == len(paths):
            return results
    except (OSError, subprocess.SubprocessError, pickle.UnpicklingError, EOFError):
        pass
    return [api.migrate_file(path) for path in paths]


def serve() -> None:
    """A worker: migrate the pickled list of paths on stdin, pickle the results to stdout."""
    paths = pickle.loads(sys.stdin.buffer.read())
    results = [api.migrate_file(path) for path in paths]
    sys.stdout.buffer.write(pickle.dumps(results))
    sys.stdout.buffer.flush()


# -- output ----------------------------------------------------------------------------


def _shown(path: str) -> str:
    """The path for the report: bytes that are not UTF-8 shown as ``\\xe9``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _print(stream: TextIO, line: str) -> None:
    try:
        stream.write(line + "\n")
    except UnicodeEncodeError:  # a stream that cannot encode it, with strict errors
        encoding = stream.encoding or "ascii"
        stream.write(line.encode(encoding, "backslashreplace").decode(encoding) + "\n")


def _write_bytes(stream: TextIO, data: bytes) -> None:
    """Write the bytes as they are (a diff must apply), on the stream's binary layer."""
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(data.decode("utf-8", "replace"))
        return
    stream.flush()
    buffer.write(data)
    buffer.flush()


def _write_all(out: TextIO, results: list[api.FileResult]) -> int:
    """Write each file back; report those not written; return how many were.

    Files are independent, and each write waits for its data to reach the disk
    (``fsync``): a few threads let those waits overlap.
    """
    with concurrent.futures.ThreadPoolExecutor(min(8, len(results) or 1)) as pool:
        written = list(pool.map(_write, results))
    for result, ok in zip(results, written, strict=True):
        if not ok:
            _print(out, f"{_shown(result.path)}: not migrated: {result.error}")
    return sum(written)


def _write(result: api.FileResult) -> bool:
    assert result.new is not None
    try:
        write_back(result.path, result.original, result.new)
    except Refused as refused:
        result.error = str(refused)
    except OSError as error:
        result.error = f"cannot write it ({error.strerror or error})"
    else:
        return True
    return False


_LINES = re.compile(rb"[^\n]*\n|[^\n]+")


def _diff(result: api.FileResult) -> bytes:
    """A unified diff of the file's own bytes, with git's a/ b/ names: ``git apply`` takes it."""
    assert result.new is not None
    name = os.path.relpath(result.path)
    if name.startswith(os.pardir):
        name = os.path.abspath(result.path).lstrip(os.sep)
    name_bytes = os.fsencode(name.replace(os.sep, "/"))
    before = _LINES.findall(result.original)
    after = _LINES.findall(result.new)
    lines = difflib.diff_bytes(
        difflib.unified_diff, before, after, b"a/" + name_bytes, b"b/" + name_bytes
    )
    return b"".join(
        line if line.endswith(b"\n") else line + b"\n\\ No newline at end of file\n"
        for line in lines
    )

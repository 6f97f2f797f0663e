"""Command line: the Keras 2 summary and diagram of a saved model.

    python -m kutils summary MODEL_FILE
    python -m kutils plot MODEL_FILE -o model.png --show-shapes

MODEL_FILE is a ``.keras`` or legacy ``.h5`` file. Exit status: 0 on success, 2 for bad
arguments or a model file that cannot be read or loaded, 1 when drawing fails (for
example without graphviz). Errors are one line on stderr, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import itertools
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from kutils._version import __version__

_PROG = "python -m kutils"


class _Failure(Exception):
    """An error to report on one line, with the exit status to use."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` by default); return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["migrate"]:  # its own parser and logic: kutils/_migrate_command.py
        from kutils.migrate import main as migrate_main

        return migrate_main(arguments[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    # TensorFlow reads this once, when it is first imported (by a --custom-object module
    # or by the model loading): set it first, unless the user chose a level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if args.command == "summary":
            _check_positions(args.positions)
        with _native_logs_hidden():
            custom_objects = _custom_objects(args.custom_objects)
        model = _load_model(args.model_file, custom_objects)
        if args.command == "summary":
            _summary(model, args)
        else:
            from kutils.plotting import plot_model

            _plot(plot_model, model, args)
    except _Failure as failure:
        print(f"{_PROG}: error: {failure}", file=sys.stderr)
        return failure.status
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line, as the command's other errors are."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=_PROG,
        description=(
            "Print the Keras 2 summary of a saved Keras model (.keras or .h5), or draw "
            "it with graphviz, as keras.utils.print_summary and plot_model did."
        ),
        epilog=(
            "Exit status: 0 on success, 2 for bad arguments or a model file that cannot "
            "be read or loaded, 1 when drawing fails (e.g. graphviz is not installed)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"kutils {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = _Parser(add_help=False)
    common.add_argument("model_file", metavar="MODEL_FILE", help="a .keras or .h5 model file")
    common.add_argument(
        "-c",
        "--custom-object",
        dest="custom_objects",
        action="append",
        default=[],
        metavar="MODULE:ATTRIBUTE",
        help=(
            "a custom layer, function or dict of them that the model needs, as "
            "module:attribute (e.g. mypackage.layers:MyLayer); may be repeated. The "
            "module is imported, so anything it registers is found too."
        ),
    )

    summary = commands.add_parser(
        "summary",
        parents=[common],
        help="print the Keras 2 text summary",
        description="Print the Keras 2.3.1 text summary of a saved model.",
    )
    summary.add_argument(
        "--line-length", type=_positive_int, default=None, help="table width (65 or 98)"
    )
    summary.add_argument(
        "--positions",
        type=_position,
        nargs="+",
        default=None,
        metavar="POS",
        help="end of each column: fractions of the line length, or column numbers",
    )

    plot = commands.add_parser(
        "plot",
        parents=[common],
        help="draw the model with graphviz (png, svg, pdf, dot)",
        description=(
            "Draw a saved model as Keras 2.3.1's plot_model did. The output format is "
            "the extension of --output: png, svg, pdf, dot, or any format graphviz knows."
        ),
    )
    plot.add_argument(
        "-o", "--output", default="model.png", help="file to write (default: model.png)"
    )
    plot.add_argument("--show-shapes", action="store_true", help="show input and output shapes")
    plot.add_argument(
        "--hide-layer-names", action="store_true", help="show only the class of each layer"
    )
    plot.add_argument(
        "--rankdir",
        choices=["TB", "LR", "BT", "RL"],
        default="TB",
        help="direction of the graph (default: TB, top to bottom)",
    )
    plot.add_argument("--expand-nested", action="store_true", help="draw nested models as clusters")
    plot.add_argument("--dpi", type=_positive_int, default=96, help="dots per inch (default: 96)")
    commands.add_parser(
        "migrate",
        help="rewrite Keras 2 scripts for Keras 3 with kutils (see: migrate --help)",
        add_help=False,
    )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def _position(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        msg = f"expected a positive number (a fraction or a column), received {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _check_positions(positions: list[float] | None) -> None:
    if positions is None:
        return
    received = f"Received: --positions {' '.join(f'{p:g}' for p in positions)}"
    if any(b <= a for a, b in itertools.pairwise(positions)):
        _fail(f"--positions must increase from one column to the next. {received}")
    if len({p <= 1 for p in positions}) > 1:
        _fail(
            "--positions takes either fractions of the line length (all at most 1) "
            f"or column numbers (all above 1), not both. {received}"
        )


def _summary(model: Any, args: argparse.Namespace) -> None:
    from kutils.summary import print_summary

    positions = args.positions
    lines: list[str] = []
    try:
        # Collected first, so that a bad --positions prints nothing but the error.
        print_summary(
            model, line_length=args.line_length, positions=positions, print_fn=lines.append
        )
    except IndexError as error:  # too few --positions for this model's table
        _fail(f"--positions: {error}")
    print("\n".join(lines))


def _custom_objects(specs: Sequence[str]) -> dict[str, Any]:
    objects: dict[str, Any] = {}
    for spec in specs:
        module_name, _, attribute = spec.partition(":")
        if not module_name or not attribute:
            _fail(
                f"--custom-object takes MODULE:ATTRIBUTE, e.g. mypackage.layers:MyLayer. Received: {spec!r}"
            )
        try:
            value: Any = importlib.import_module(module_name)
        except Exception as error:
            _fail(
                f"cannot import module {module_name!r} for --custom-object {spec!r}: {_one_line(error)}"
            )
        for part in attribute.split("."):
            if not hasattr(value, part):
                _fail(
                    f"module {module_name!r} has no attribute {attribute!r} (--custom-object {spec!r})"
                )
            value = getattr(value, part)
        if isinstance(value, dict):
            objects.update(value)
        else:
            objects[attribute.rsplit(".", 1)[-1]] = value
            objects[getattr(value, "__name__", attribute)] = value
    return objects


def _load_model(path: str, custom_objects: dict[str, Any]) -> Any:
    if not os.path.exists(path):
        _fail(f"cannot read model file {path!r}: no such file")
    if os.path.isdir(path):
        _fail(f"cannot read model file {path!r}: it is a directory, not a .keras or .h5 file")
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as error:
        _fail(f"cannot read model file {path!r}: {error.strerror or error}")

    with _native_logs_hidden():
        try:
            import keras

            model = keras.models.load_model(path, custom_objects=custom_objects, compile=False)
        except Exception as error:
            _fail(f"cannot load a Keras model from {path!r}: {_one_line(error)}")
    return model


# TensorFlow's C++ start-up logs (CUDA probing and the like) go straight to file
# descriptor 2 and ignore TF_CPP_MIN_LOG_LEVEL; a command line should not print them.
_NATIVE_LOG = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl)")


@contextlib.contextmanager
def _native_logs_hidden() -> Iterator[None]:
    """Capture file descriptor 2 for the block.

    When the block succeeds, what was captured is printed again without the native
    TensorFlow log lines (Python warnings stay visible); when it raises, all of it is
    dropped, because the caller reports the error on one line.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    failed = False
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if not failed:
                sink.seek(0)
                lines = sink.read().decode("utf-8", "replace").splitlines()
                keep = [line for line in lines if not _NATIVE_LOG.match(line)]
                if keep:
                    print("\n".join(keep), file=sys.stderr)


def _plot(plot_model: Any, model: Any, args: argparse.Namespace) -> None:
    try:
        plot_model(
            model,
            to_file=args.output,
            show_shapes=args.show_shapes,
            show_layer_names=not args.hide_layer_names,
            rankdir=args.rankdir,
            expand_nested=args.expand_nested,
            dpi=args.dpi,
        )
    except (ImportError, ValueError, RuntimeError, OSError) as error:
        raise _Failure(_one_line(error), 1) from error
    print(f"Wrote {args.output}")


def _fail(message: str, status: int = 2) -> NoReturn:
    raise _Failure(message, status)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())

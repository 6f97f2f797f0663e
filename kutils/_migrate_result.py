"""The results of ``kutils migrate`` that its modules hand each other, and two small
text helpers they share. This module imports no other kutils module, so every part of
migrate can import it without a circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FileResult", "WeightSite", "describe", "worth_reading"]


@dataclass(frozen=True)
class WeightSite:
    """A literal weights file name at a save or load.

    Attributes:
        name: the last path component of the name (``x.h5``).
        save: whether the site writes the file (else it loads it).
        rewritable: whether the literal's text ends with the suffix as written.
        cell: the notebook cell (from 1), 0 in a .py file.
        line: the line (in the cell).
    """

    name: str
    save: bool
    rewritable: bool
    cell: int
    line: int


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


def describe(error: SyntaxError) -> str:
    where = f"line {error.lineno}: " if error.lineno else ""
    return f"{where}{error.msg}"


# A file that mentions none of these has nothing to migrate.
_WORDS = (
    "keras",
    "_generator",
    "predict_classes",
    "predict_proba",
    "reset_states",
    "add_loss",
    "numpy",
)


def worth_reading(text: str) -> bool:
    return any(word in text for word in _WORDS)

"""The record of one ``kutils migrate`` rule (the rules are in ``kutils._migrate_rules``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """One Keras 2 to Keras 3 change that ``kutils migrate`` looks for.

    Attributes:
        kind: the syntactic position it matches (see the module's docstring).
        keras2: what it matches there: a path, a function, method or keyword name.
        message: the fix, reported with file and line when the code is not rewritten.
        keras3: the form the code is rewritten to, or ``None`` when it is only reported.
        within: for ``keyword`` and ``saving`` rules, the calls the rule applies to.
    """

    kind: str
    keras2: str
    message: str
    keras3: str | None = None
    within: tuple[str, ...] = ()

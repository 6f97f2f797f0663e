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

This module is the public API: :func:`migrate_source` rewrites a text,
:func:`migrate_file` reads a file and rewrites it in memory (both in
``kutils._migrate_file``), and :func:`main` runs the command line
(``kutils._migrate_command``), which writes the files back (``kutils._migrate_write``).
The rewriting itself is ``kutils._migrate_engine``.

Each file is parsed once by Python's own parser (``ast``), whose node positions locate
the spans to rewrite; only those spans are replaced in the source text, so comments,
formatting, line endings and the file's encoding are kept byte for byte. A rewritten
text is compiled again before it is used; one that would not compile is reported and
the file left alone. Every file is read before any is written. A second run changes
nothing. Exit status: 0 when nothing is left to do, 1 when the report lists something
(or ``--diff`` shows a change), 2 on usage errors.
"""

from __future__ import annotations

from collections.abc import Sequence

from kutils._migrate_file import FileResult, migrate_file, migrate_source

__all__ = ["FileResult", "main", "migrate_file", "migrate_source"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kutils migrate`` with ``argv`` (without the ``migrate`` word); return the status.

    Safe to call from a script without an ``if __name__ == "__main__"`` guard: the
    worker processes of a large tree never re-import the caller's script.
    """
    from kutils._migrate_command import run

    return run(argv)

"""Progbar: Keras 2.3.1's redraw timing and target formatting (the rest of its output is
checked through the legacy module in tests/test_legacy_modules.py)."""

from __future__ import annotations

import contextlib
import io
import time

from kutils import Progbar


def _draws(output: str) -> list[str]:
    # Outside a terminal every redraw starts on a new line.
    return [line for line in output.split("\n") if "/" in line]


def test_frequent_updates_redraw_about_once_per_interval():
    """Updates every 10 ms with interval=0.05 s redraw every ~5th update, as Keras 2 did
    (the time of the last *redraw* decides, not the time of the last update)."""
    out = io.StringIO()
    updates = 100
    with contextlib.redirect_stdout(out):
        bar = Progbar(updates, interval=0.05)
        started = time.monotonic()
        for step in range(1, updates + 1):
            time.sleep(0.01)
            bar.update(step)
        elapsed = time.monotonic() - started
    draws = _draws(out.getvalue())
    # At most one redraw per interval (plus the first and the last); at least half of
    # that many, since every update after an interval without a redraw redraws.
    most = elapsed / 0.05 + 2
    assert most / 2 <= len(draws) <= most, (len(draws), elapsed)
    assert draws[-1].startswith(f"{updates}/{updates} [")


def test_updates_closer_than_the_interval_skip_the_redraw():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        bar = Progbar(10, interval=3600)
        for step in range(1, 10):
            bar.update(step)
    # Only the first update is drawn: every later one is within the hour.
    assert len(_draws(out.getvalue())) == 1


def test_a_float_target_is_printed_as_an_integer_as_keras_2_did():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        Progbar(4.0, interval=0).update(2)
    assert _draws(out.getvalue())[0].startswith("2/4 [")

"""Oracle cases for ``Progbar``: its output byte for byte, under a frozen clock.

Each case builds a bar on a captured stdout (a terminal or not), then replays a list of
steps: ``(advance_seconds, method, current_or_n, values)``. The clock only moves when a
step says so, so the timings printed are the same on both sides.
"""

from __future__ import annotations

import contextlib
import itertools

import numpy as np

import _oracle
import _shim

AREA = "progbar"


def _run(target, steps, tty, **kwargs):
    out = _oracle.Capture(tty=tty)
    with _oracle.frozen_clock() as clock, contextlib.redirect_stdout(out):
        bar = _shim.legacy("generic_utils").Progbar(target, **kwargs)
        for advance, method, amount, values in steps:
            clock.advance(advance)
            getattr(bar, method)(amount, values)
    return out.getvalue()


def _steps(seed, target, n_updates, metrics, method):
    rng = np.random.RandomState(seed)
    steps, current = [], 0
    top = target if target else 25
    for _ in range(n_updates):
        amount = int(rng.randint(1, max(2, top // max(1, n_updates) + 2)))
        current += amount
        values = [(name, float(np.round(rng.uniform(-2, 3), 6))) for name in metrics]
        advance = float(rng.choice([0.0, 0.01, 0.06, 0.5, 2.0, 75.0, 4000.0]))
        steps.append((advance, method, amount if method == "add" else current, values))
    return steps


TARGETS = [None, 1, 4, 10, 37, 100, 1000]
METRIC_SETS = [[], ["loss"], ["loss", "acc"], ["loss", "tiny"]]


def _generated():
    seed = 0
    for target, metrics, verbose, tty in itertools.product(
        TARGETS, METRIC_SETS, (1, 2), (False, True)
    ):
        for method in ("update", "add"):
            seed += 1
            steps = _steps(seed, target, 6, metrics, method)
            name = "progbar/target={}/metrics={}/verbose={}/tty={}/{}".format(
                target, "+".join(metrics) or "none", verbose, tty, method
            )
            yield name, (lambda t=target, s=steps, v=verbose, y=tty: _run(t, s, y, verbose=v))


def _special():
    t, f = True, False
    cases = {
        "float-target": lambda: _run(4.0, [(0.1, "update", 2, None), (0.1, "update", 4, None)], f),
        "width-10": lambda: _run(
            10, [(0.1, "update", 3, None), (0.1, "update", 10, None)], f, width=10
        ),
        "width-1": lambda: _run(
            10, [(0.1, "update", 3, None), (0.1, "update", 10, None)], f, width=1
        ),
        "interval-skips": lambda: _run(10, [(0.01, "update", i, None) for i in range(1, 11)], f),
        "interval-0": lambda: _run(
            10, [(0.0, "update", i, None) for i in range(1, 11)], f, interval=0
        ),
        "stateful": lambda: _run(
            3,
            [(0.1, "update", i, [("loss", float(i)), ("acc", 0.5 * i)]) for i in (1, 2, 3)],
            f,
            stateful_metrics=["acc"],
        ),
        "stateful-tty": lambda: _run(
            3,
            [(0.1, "update", i, [("loss", float(i)), ("acc", 0.5 * i)]) for i in (1, 2, 3)],
            t,
            stateful_metrics=["acc"],
        ),
        "negative-metric-verbose2": lambda: _run(
            2, [(1.0, "update", 2, [("loss", -0.5)])], f, verbose=2
        ),
        "tiny-metric": lambda: _run(2, [(1.0, "update", 2, [("loss", 1e-5)])], f),
        "array-metric": lambda: _run(2, [(1.0, "update", 2, [("loss", np.array([1.0, 3.0]))])], f),
        "numpy-scalar-metric": lambda: _run(
            2, [(1.0, "update", 2, [("loss", np.float32(0.25))])], f
        ),
        "past-target": lambda: _run(3, [(0.1, "update", 5, None)], f),
        "shrinking-line-tty": lambda: _run(
            10,
            [(0.1, "update", 9, [("loss", 123456.0)]), (0.1, "update", 10, [("loss", 1.0)])],
            t,
        ),
        "unknown-target-tty": lambda: _run(None, [(0.1, "update", i, None) for i in (1, 5, 50)], t),
        "verbose-0": lambda: _run(3, [(0.1, "update", 3, [("loss", 1.0)])], f, verbose=0),
        "eta-hours": lambda: _run(1000, [(7200.0, "update", 1, None)], f),
        "eta-minutes": lambda: _run(100, [(90.0, "update", 10, None)], f),
        "per-step-seconds": lambda: _run(2, [(5.0, "update", 2, None)], f),
        "per-step-ms": lambda: _run(2, [(0.5, "update", 2, None)], f),
        "per-step-us": lambda: _run(2000, [(0.5, "update", 2000, None)], f),
        "current-zero": lambda: _run(5, [(0.1, "update", 0, None)], f),
        "same-current-twice": lambda: _run(
            4, [(0.1, "update", 2, [("loss", 1.0)]), (0.1, "update", 2, [("loss", 3.0)])], f
        ),
    }
    for name, fn in cases.items():
        yield "progbar/special/" + name, fn


def _legacy():
    generic_utils = _shim.legacy("generic_utils")
    yield "progbar/legacy/same-object", lambda: generic_utils.Progbar is _shim.utils.Progbar
    yield "progbar/legacy/defaults", lambda: _defaults(generic_utils.Progbar(10))


def _defaults(bar):
    return [bar.target, bar.width, bar.verbose, bar.interval, sorted(bar.stateful_metrics)]


def cases():
    yield from _generated()
    yield from _special()
    yield from _legacy()


_oracle.main(__name__, AREA, cases)

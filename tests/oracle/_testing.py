"""The default test run's side of the oracle: kutils against the Keras 2.3.1 goldens.

Every case of an area is either the same as in Keras 2.3.1 or covered by a decision in
``decisions.py``: a documented difference, named by its section and a phrase of
docs/compat.md, with a check of what kutils does instead. A decided case that matches
Keras 2.3.1 again fails too (the decision is stale).
"""

from __future__ import annotations

import fnmatch
import importlib
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _oracle  # noqa: E402
import decisions  # noqa: E402


def load(area, module_name):
    """The goldens of ``area`` and the cases of its recording script, run on kutils."""
    goldens = _oracle.load_goldens(area)
    module = importlib.import_module(module_name)
    fns = dict(module.cases())
    return goldens, fns


def decision_for(area, case_id):
    for pattern, decision in decisions.DECISIONS.get(area, []):
        if fnmatch.fnmatchcase(case_id, pattern):
            return decision
    return None


def differences(area):
    """The case ids of ``area`` where kutils differs from Keras 2.3.1 by a decision
    (tests/goldens/<area>/differences.txt, one id a line)."""
    path = os.path.join(_oracle.GOLDENS, area, "differences.txt")
    if not os.path.exists(path):
        return frozenset()
    with open(path) as file:
        return frozenset(line.strip() for line in file if line.strip())


def check_case(area, case_id, golden, fn):
    """Assert one case: the Keras 2.3.1 outcome, or the documented kutils one."""
    actual = _oracle.run_case(fn)
    decision = decision_for(area, case_id)
    listed = case_id in differences(area)
    if decision is not None and decision.may_match and _oracle.matches(golden, actual):
        return  # a rounding decision: this case's values happen to round the same
    if not listed:
        assert _oracle.matches(golden, actual), _diff(case_id, golden, actual)
        return
    assert decision is not None, f"{case_id} is listed as a difference but no decision covers it"
    assert not _oracle.matches(golden, actual), (
        f"{case_id} matches Keras 2.3.1 again: drop it from differences.txt"
    )
    assert decision.check(actual, golden, case_id), (
        f"{case_id} is not as documented in {decision.anchor}: {_diff(case_id, golden, actual)}"
    )


def case_ids(area):
    return sorted(_oracle.load_goldens(area))


def area_fixture(area, module_name):
    """A module-scoped fixture with the goldens and kutils' case functions."""

    @pytest.fixture(scope="module")
    def fixture():
        return load(area, module_name)

    return fixture


def _diff(case_id, golden, actual):
    return f"{case_id}:\n  Keras 2.3.1: {_short(golden)}\n  kutils:      {_short(actual)}"


def _short(outcome):
    text = repr(outcome)
    return text if len(text) < 1500 else text[:1500] + "..."


def write_differences(area, module_name):
    """List the decided cases of ``area`` that differ now (run by hand after a change:
    ``python tests/oracle/_testing.py AREA MODULE``); undecided ones are printed."""
    goldens, fns = load(area, module_name)
    decided, undecided = [], []
    for case_id in sorted(goldens):
        actual = _oracle.run_case(fns[case_id])
        if _oracle.matches(goldens[case_id], actual):
            continue
        (decided if decision_for(area, case_id) else undecided).append(case_id)
    with open(os.path.join(_oracle.GOLDENS, area, "differences.txt"), "w") as file:
        file.write("".join(case_id + "\n" for case_id in decided))
    for case_id in undecided:
        print("undecided:", case_id)


if __name__ == "__main__":
    write_differences(sys.argv[1], sys.argv[2])

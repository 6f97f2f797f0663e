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


def check_case(area, case_id, golden, fn):
    """Assert one case: the Keras 2.3.1 outcome, or the documented kutils one."""
    actual = _oracle.run_case(fn)
    decision = decision_for(area, case_id)
    if decision is None:
        assert _oracle.matches(golden, actual), _diff(case_id, golden, actual)
        return
    assert decision.may_match or not _oracle.matches(golden, actual), (
        "{} matches Keras 2.3.1 again: drop its decision ({})".format(case_id, decision.anchor)
    )
    assert decision.check(actual, golden), "{} is not as documented in {}: {}".format(
        case_id, decision.anchor, _diff(case_id, golden, actual)
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
    return "{}:\n  Keras 2.3.1: {}\n  kutils:      {}".format(
        case_id, _short(golden), _short(actual)
    )


def _short(outcome):
    text = repr(outcome)
    return text if len(text) < 1500 else text[:1500] + "..."

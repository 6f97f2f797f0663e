"""kutils against the real Keras 2.3.1, area by area: every case that
tests/oracle/record_<area>.py recorded under Keras 2.3.1 (tests/goldens/<area>/) is run on
kutils and must give Keras 2.3.1's outcome, or the documented one of its decision
(tests/oracle/decisions.py; see tests/oracle/_testing.py)."""

from __future__ import annotations

import functools
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "oracle"))

import _testing

AREAS = [
    "enqueuers",
    "fit_generator",
    "generic_utils",
    "get_file",
    "hdf5_matrix",
    "np_utils",
    "progbar",
    "summary",
]


@functools.cache
def _oracle(area: str):
    """The goldens of ``area`` and kutils' case functions, loaded once per run."""
    return _testing.load(area, f"record_{area}")


@pytest.mark.parametrize("area", AREAS)
def test_kutils_runs_every_recorded_case(area):
    goldens, fns = _oracle(area)
    assert sorted(fns) == sorted(goldens)


@pytest.mark.parametrize(
    ("area", "case_id"), [(area, case_id) for area in AREAS for case_id in _testing.case_ids(area)]
)
def test_case(area, case_id):
    goldens, fns = _oracle(area)
    _testing.check_case(area, case_id, goldens[case_id], fns[case_id])

"""kutils' Progbar against the real Keras 2.3.1 (goldens recorded by
tests/oracle/record_progbar.py; see tests/oracle/_testing.py)."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "oracle"))

import _testing

AREA = "progbar"
oracle = _testing.area_fixture(AREA, "record_progbar")


def test_kutils_runs_every_recorded_case(oracle):
    goldens, fns = oracle
    assert sorted(fns) == sorted(goldens)


@pytest.mark.parametrize("case_id", _testing.case_ids(AREA))
def test_case(oracle, case_id):
    goldens, fns = oracle
    _testing.check_case(AREA, case_id, goldens[case_id], fns[case_id])

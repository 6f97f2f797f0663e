"""The oracle's bookkeeping: every decided difference names a docs/compat.md entry that
exists, every listed difference is a recorded case with a decision, and the goldens
cover at least 2,000 cases."""

from __future__ import annotations

import os
import pathlib
import re
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "oracle"))

import _oracle
import _testing
import decisions
import test_oracle

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The areas of this harness, each run by tests/test_oracle.py (other recording scripts,
# such as record_keras2_helpers.py, keep their own format and tests).
AREAS = sorted(test_oracle.AREAS)


def _sections() -> dict[str, str]:
    text = (ROOT / "docs" / "compat.md").read_text(encoding="utf-8")
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


ALL_DECISIONS = [
    (area, pattern, decision)
    for area, entries in decisions.DECISIONS.items()
    for pattern, decision in entries
]


@pytest.mark.parametrize(
    ("area", "pattern", "decision"), ALL_DECISIONS, ids=[f"{a}:{p}" for a, p, _ in ALL_DECISIONS]
)
def test_each_decision_names_an_entry_of_compat_md(area, pattern, decision):
    section, phrase = decision.anchor
    sections = _sections()
    assert section in sections, f"docs/compat.md has no section '## {section}'"
    assert phrase in sections[section], f"'{phrase}' is not in the section {section!r}"


@pytest.mark.parametrize("area", AREAS)
def test_every_listed_difference_is_a_case_with_a_decision(area):
    goldens = _oracle.load_goldens(area)
    for case_id in _testing.differences(area):
        assert case_id in goldens, f"{case_id} is listed in {area}/differences.txt but not recorded"
        assert _testing.decision_for(area, case_id) is not None, f"{case_id} has no decision"


@pytest.mark.parametrize("area", AREAS)
def test_every_area_has_its_recording_script(area):
    assert (ROOT / "tests" / "oracle" / f"record_{area}.py").exists()


def test_every_recording_script_of_this_harness_is_run_by_the_tests():
    for script in (ROOT / "tests" / "oracle").glob("record_*.py"):
        area = script.stem[len("record_") :]
        if "_oracle.main(" in script.read_text(encoding="utf-8"):
            assert area in test_oracle.AREAS, script
            assert (ROOT / "tests" / "goldens" / area / "cases.json").exists(), script


def test_the_goldens_were_recorded_on_keras_2_3_1_and_cover_2000_cases():
    import json

    total = 0
    for area in AREAS:
        payload = json.loads((ROOT / "tests" / "goldens" / area / "cases.json").read_text())
        assert payload["keras"] == "2.3.1"
        total += len(payload["cases"])
    assert total >= 2000

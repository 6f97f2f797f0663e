"""The documentation site covers the package: a reference entry per public name, every page linked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import kutils

DOCS = Path(__file__).resolve().parents[1] / "docs"
AUTODOC = re.compile(r"^\.\. auto(?:function|class):: (kutils(?:\.\w+)+)", re.MULTILINE)
# Public names whose reference names them through their defining module.
MODULE_PATH = {"data_parallel": "kutils.parallel.data_parallel"}


def _documented() -> set[str]:
    return {m for page in DOCS.glob("*.md") for m in AUTODOC.findall(page.read_text())}


@pytest.mark.parametrize("name", sorted(kutils._EXPORTS))
def test_every_public_name_has_an_autodoc_reference(name):
    target = MODULE_PATH.get(name, f"kutils.{name}")
    assert target in _documented(), f"no '.. autofunction/autoclass:: {target}' in docs/"


def _toctree_entries(index: str) -> set[str]:
    entries = set()
    for block in re.findall(r"```\{toctree\}\n(.*?)```", index, re.DOTALL):
        entries.update(line.strip() for line in block.splitlines() if line.strip()[:1].isalnum())
    return entries


def test_every_page_is_in_the_index_toctree():
    entries = _toctree_entries((DOCS / "index.md").read_text())
    pages = {p.stem for p in DOCS.glob("*.md")} - {"index"}
    assert pages - entries == set()


@pytest.mark.parametrize("page", ["migration", "compat", "performance"])
def test_the_notes_pages_are_linked_from_the_index(page):
    assert page in _toctree_entries((DOCS / "index.md").read_text())


@pytest.mark.parametrize("name", sorted(kutils._EXPORTS))
def test_the_migration_guide_has_a_section_per_public_name(name):
    # A heading names one or more public names ("model_to_dot and plot_model"); each
    # must be one of them whole, so that "Sequence" is not found in "SequenceEnqueuer".
    headings = re.findall(r"^## (.+)$", (DOCS / "migration.md").read_text(), re.MULTILINE)
    named = {
        part
        for heading in headings
        for part in re.split(r",\s*(?:and\s+)?|\s+and\s+", heading.removesuffix(" (new)"))
    }
    assert name in named, headings

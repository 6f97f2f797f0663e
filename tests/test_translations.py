"""The Japanese, Chinese and Korean sites: complete catalogues, and pages that render.

The catalogue template is built from the English pages as they are now (Sphinx's gettext
builder), so a sentence changed in English is a message no catalogue translates yet, and
the completeness test names it. Messages that come only from docstrings (autodoc) stay in
English by design and are not required.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LANGUAGES = ["ja", "zh_CN", "ko"]
# The pages translated in full: the index, every public API page, the migration guide and
# command, the compatibility notes and the install page.
PAGES = [
    "index",
    "to_categorical",
    "normalize",
    "custom_objects",
    "print_summary",
    "model_to_dot",
    "plot_model",
    "cli",
    "migrate",
    "multi_gpu_model",
    "data_parallel",
    "multi_worker",
    "hdf5_matrix",
    "hdf5_dataset",
    "sequence",
    "get_file",
    "legacy_modules",
    "install",
    "migration",
    "compat",
]
BUILD_TIMEOUT = 600  # seconds: a docs build imports kutils (and TensorFlow) once
ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
# A role (``{doc}`title <target>` ``): its name and target stay, its title is translated.
ROLE = re.compile(r"\{([\w:-]+)\}`(?:[^`<]*<([^`>]+)>|([^`]*))`")
CODE = re.compile(r"`+[^`]+`+")
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")


def _untranslatable(text: str) -> list[str]:
    """The parts of a message a translation keeps as they are: roles' names and targets,
    code spans and link targets, sorted (a translation may reorder them)."""
    roles = [f"{{{name}}}{target or title}" for name, target, title in ROLE.findall(text)]
    rest = ROLE.sub("", text)
    return sorted(roles + CODE.findall(rest) + LINK_TARGET.findall(rest))


def _sphinx(*args: str, cwd: Path = ROOT) -> None:
    import os

    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", *args],
        cwd=cwd,
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-4000:]


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """The catalogue templates (.pot) of the English pages as they are now."""
    out = tmp_path_factory.mktemp("gettext")
    _sphinx("-b", "gettext", str(DOCS), str(out))
    return out


def _read(path: Path):
    with path.open("rb") as file:
        return read_po(file)


def _from_pages(message) -> bool:
    """True when a message appears in a page's own text, not only in a docstring."""
    # Locations are file names (with a line): docs/<page>.md, or a module for docstrings.
    return any(location.endswith(".md") for location, _ in message.locations)


def _required(templates: Path, page: str) -> list[str]:
    template = _read(templates / f"{page}.pot")
    return [m.id for m in template if m.id and _from_pages(m)]


def test_every_translated_page_exists_in_english():
    assert [page for page in PAGES if not (DOCS / f"{page}.md").exists()] == []


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("page", PAGES)
def test_every_message_of_the_page_is_translated(templates, language, page):
    path = DOCS / "locale" / language / "LC_MESSAGES" / f"{page}.po"
    assert path.exists(), f"no catalogue {path}: run `nox -s translations`"
    catalogue = _read(path)
    problems = []
    for msgid in _required(templates, page):
        message = catalogue.get(msgid)
        if message is None:
            problems.append(f"not in the catalogue (run `nox -s translations`): {msgid!r}")
        elif not message.string:
            problems.append(f"untranslated: {msgid!r}")
        elif message.fuzzy:
            problems.append(f"fuzzy (the English changed; check and clear the flag): {msgid!r}")
    assert problems == [], f"{len(problems)} messages of {page}.md in {language}:\n" + "\n".join(
        problems[:20]
    )


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("page", PAGES)
def test_translations_keep_code_and_link_targets_as_they_are(language, page):
    """Code spans (names, signatures, values), link targets and the roles' targets are
    never translated (a role's title is)."""
    path = DOCS / "locale" / language / "LC_MESSAGES" / f"{page}.po"
    problems = []
    for message in _read(path):
        if not message.id or not message.string or not _from_pages(message):
            continue
        if _untranslatable(message.id) != _untranslatable(message.string):
            problems.append(f"{message.id!r}\n  -> {message.string!r}")
    assert problems == [], f"{page}.po ({language}):\n" + "\n".join(problems[:10])


@pytest.fixture(scope="module")
def japanese_site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "ja"
    _sphinx("-W", "--keep-going", "-b", "html", "-D", "language=ja", str(DOCS), str(out))
    return out


def test_the_japanese_site_renders_the_translation(japanese_site):
    for page in ("index", "sequence", "compat"):
        html_text = (japanese_site / f"{page}.html").read_text(encoding="utf-8")
        catalogue = _read(DOCS / "locale" / "ja" / "LC_MESSAGES" / f"{page}.po")
        # Plain sentences (no markup) appear in the page exactly as translated.
        plain = [
            m.string
            for m in catalogue
            if m.id and m.string and _from_pages(m) and not re.search(r"[`*\[\]{}<>&_\\]", m.string)
        ]
        assert plain, f"{page}.po has no plain translated sentence"
        missing = [text for text in plain if text not in html_text]
        assert missing == [], f"{page}.html lacks {len(missing)} translations: {missing[:3]}"
        assert re.search(r'<html[^>]* lang="ja"', html_text), "the page does not say it is Japanese"


def test_the_theme_words_are_translated_too(japanese_site):
    """Next, Previous ... come from the theme; docs/locale/<lang>/LC_MESSAGES/sphinx.po
    translates the ones furo and Sphinx leave in English."""
    html_text = (japanese_site / "sequence.html").read_text(encoding="utf-8")
    for message in _read(DOCS / "locale" / "ja" / "LC_MESSAGES" / "sphinx.po"):
        if message.id:
            assert message.string and message.string in html_text, message.id


def test_each_page_links_the_other_three_languages(japanese_site):
    for page in ("index", "sequence"):
        html = (japanese_site / f"{page}.html").read_text(encoding="utf-8")
        line = re.search(r'<p class="kutils-languages">(.*?)</p>', html)
        assert line is not None, f"{page}.html has no language line"
        links = dict(re.findall(r'href="([^"]+)"[^>]*>([^<]+)</a>', line.group(1)))
        assert links == {
            f"../{page}.html": "English",
            f"../zh_CN/{page}.html": "中文",
            f"../ko/{page}.html": "한국어",
        }

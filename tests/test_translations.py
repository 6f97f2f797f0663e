"""The Japanese, Chinese and Korean sites: complete catalogues, and pages that render.

The catalogue template is built from the English pages as they are now (Sphinx's gettext
builder), so a sentence changed in English is a message no catalogue translates yet, and
the completeness test names it. Messages that come only from docstrings (autodoc) stay in
English by design and are not required.

Code blocks are messages too (``gettext_additional_targets`` in docs/conf.py), so that
their comments can be translated; everything else in them stays byte for byte (see
_comments_split for what a comment is). A code block with a comment must be translated,
and one whose comments hold English words (two in a row) may not be copied unchanged; a
block without comments may stay empty (Sphinx then shows the English, the same text).
docs/conf.py puts the translated blocks in the page itself (Sphinx's own transform turns a
translated MyST code block into "::"), which the site test checks.

Each language has a glossary in docs/development.md (``## Translation glossary``): an
English term, its one rendering, the renderings it must not have, and the source.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from markdown_it import MarkdownIt

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
    "reliability",
    "performance",
    "saved_models",
]
BUILD_TIMEOUT = 600  # seconds: a docs build imports kutils (and TensorFlow) once
ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
# A role (``{doc}`title <target>` ``): its name and target stay, its title is translated.
ROLE = re.compile(r"\{([\w:-]+)\}`(?:[^`<]*<([^`>]+)>|([^`]*))`")
CODE = re.compile(r"`+[^`]+`+")
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")


# Code blocks. A message is a code block's when its text is, byte for byte, the content of
# a fenced (```lang or ```{code-block} lang) or indented code block of the English page
# (markdown-it, the parser MyST uses, finds them).
# The block's language says what a comment is:
# - Python (python, py, python3, pycon) and shell (bash, sh, shell, console): a comment
#   starts at a `#` outside a string literal ('...' or "..." on one line; in Python also
#   triple-quoted strings over several lines) and, in shell, only at the start of a line
#   or after a space or tab, as the shell reads it; it runs to the end of the line. The
#   `#` itself and everything before it are code.
# - Any other block (text, output, no language) has no comments.
# A translation must equal the English block with only the comments' text changed: the
# same lines, the same code on each, the same number of comments in the same places.
PYTHON_BLOCKS = {"python", "py", "python3", "pycon"}
SHELL_BLOCKS = {"bash", "sh", "shell", "console"}
CODE_DIRECTIVES = {"{code-block}", "{code}", "{sourcecode}"}
# Comments with two words in a row are English to translate; comments without (a value
# printed by the code, "Keras 2.0/2.1", column headings of names) may stay as they are.
ENGLISH_WORDS = re.compile(r"[A-Za-z]{2,} +[A-Za-z]{2,}")


def _comments_split(code: str, language: str) -> tuple[list[str], list[str]]:
    """The block cut at its comments: the code around them, and the comments' texts."""
    if language not in PYTHON_BLOCKS | SHELL_BLOCKS:
        return [code], []
    python = language in PYTHON_BLOCKS
    pieces, comments, start, i, quote = [], [], 0, 0, ""
    while i < len(code):
        char = code[i]
        if quote:  # inside a string literal: look for its end
            if char == "\\" and (python or quote == '"'):
                i += 2
            elif code.startswith(quote, i):
                i += len(quote)
                quote = ""
            else:
                if char == "\n" and len(quote) == 1:
                    quote = ""  # an unterminated one-line string ends with its line
                i += 1
        elif char in "'\"":
            triple = char * 3
            quote = triple if python and code.startswith(triple, i) else char
            i += len(quote)
        elif char == "#" and (python or i == 0 or code[i - 1] in " \t\n"):
            end = code.find("\n", i)
            end = len(code) if end == -1 else end
            pieces.append(code[start : i + 1])
            comments.append(code[i + 1 : end])
            start = i = end
        else:
            i += 1
    return [*pieces, code[start:]], comments


@cache
def _code_blocks(page: str) -> dict[str, str]:
    """The code blocks of an English page: their text (as a message has it) -> language."""
    blocks = {}
    for token in MarkdownIt("commonmark").parse((DOCS / f"{page}.md").read_text("utf-8")):
        words = token.info.split()
        if token.type == "code_block" or (token.type == "fence" and not words):
            language = ""
        elif token.type == "fence" and words[0] in CODE_DIRECTIVES:
            # A directive's content reaches Sphinx without its last line break.
            blocks[token.content.rstrip("\n")] = words[1].lower() if len(words) > 1 else ""
            continue
        elif token.type == "fence" and not words[0].startswith("{"):
            language = words[0]
        else:
            continue  # not code: a directive ({eval-rst}, {toctree}, ...) or prose
        blocks[token.content] = language.lower()
    return blocks


def _code_block_problem(english: str, translation: str, language: str) -> str | None:
    """What is wrong with a code block's translation beyond its comments (None: nothing)."""
    code, comments = _comments_split(english, language)
    translated_code, translated_comments = _comments_split(translation, language)
    if translated_code == code:
        return None
    if len(translated_comments) != len(comments):
        return f"{len(translated_comments)} comments where the English has {len(comments)}"
    changed = [f"{a!r} -> {b!r}" for a, b in zip(code, translated_code, strict=True) if a != b]
    return "the code changed: " + "; ".join(changed[:3])


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
    blocks = _code_blocks(page)
    for msgid in _required(templates, page):
        comments = _comments_split(msgid, blocks[msgid])[1] if msgid in blocks else None
        if comments == []:
            continue  # a code block without comments: its translation is the English
        message = catalogue.get(msgid)
        if message is None:
            problems.append(f"not in the catalogue (run `nox -s translations`): {msgid!r}")
        elif not message.string:
            problems.append(f"untranslated: {msgid!r}")
        elif message.fuzzy:
            problems.append(f"fuzzy (the English changed; check and clear the flag): {msgid!r}")
        elif comments and message.string == msgid and ENGLISH_WORDS.search("\n".join(comments)):
            problems.append(f"the code block's comments are still English: {msgid!r}")
    assert problems == [], f"{len(problems)} messages of {page}.md in {language}:\n" + "\n".join(
        problems[:20]
    )


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("page", PAGES)
def test_translations_keep_code_and_link_targets_as_they_are(language, page):
    """Code spans (names, signatures, values), link targets and the roles' targets are
    never translated (a role's title is). In a code block only the comments' text is
    (see _comments_split for what a comment is)."""
    path = DOCS / "locale" / language / "LC_MESSAGES" / f"{page}.po"
    blocks = _code_blocks(page)
    problems = []
    for message in _read(path):
        if not message.id or not message.string or not _from_pages(message):
            continue
        if message.id in blocks:
            problem = _code_block_problem(message.id, message.string, blocks[message.id])
            if problem:
                problems.append(f"code block {message.id[:60]!r}...: {problem}")
        elif _untranslatable(message.id) != _untranslatable(message.string):
            problems.append(f"{message.id!r}\n  -> {message.string!r}")
    assert problems == [], f"{page}.po ({language}):\n" + "\n".join(problems[:10])


@pytest.mark.parametrize("page", PAGES)
def test_each_code_block_of_a_page_is_a_message(templates, page):
    """The code-block tests above find a block's message by its text: each block must
    have one, or its comments would go unchecked."""
    messages = {m.id for m in _read(templates / f"{page}.pot") if m.id}
    assert [block for block in _code_blocks(page) if block not in messages] == []


# The glossary: docs/development.md, section "## Translation glossary", one subsection per
# language headed as below, each a table | English | Rendering | Not | Source |.
GLOSSARY_HEADINGS = {"ja": "Japanese (ja)", "zh_CN": "Chinese (zh_CN)", "ko": "Korean (ko)"}
TITLED_ROLE = re.compile(r"\{[\w:-]+\}`([^`<]*)<[^`>]+>`")
QUOTATION = re.compile(r'"[^"\n]*"')
CODE_WORD = re.compile(r"\S*(?:\w\(|=)\S*")
Row = tuple[str, str, tuple[str, ...]]  # English term, rendering, renderings it must not have


def _glossary(language: str) -> list[Row]:
    """The language's glossary rows: (English term, rendering, renderings it must not have)."""
    text = (DOCS / "development.md").read_text("utf-8")
    section = re.search(r"^## Translation glossary\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, "docs/development.md has no '## Translation glossary' section"
    heading = re.escape(f"### {GLOSSARY_HEADINGS[language]}")
    part = re.search(rf"^{heading}\n(.*?)(?=^### |\Z)", section.group(1), re.M | re.S)
    rows = []
    for line in part.group(1).splitlines() if part else []:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or cells[0] == "English" or set(cells[0]) <= set("-: "):
            continue  # not a table row, the header, or the line under it
        assert len(cells) == 4 and all(cells[i] for i in (0, 1, 3)), (
            f"glossary row {line!r} ({language}): needs | English | Rendering | Not | Source |"
        )
        nots = [form.strip() for form in cells[2].split(",") if form.strip() not in ("", "—")]
        rows.append((cells[0], cells[1], tuple(nots)))
    return rows


def _prose(text: str) -> str:
    """A message's words: without code spans, link targets and roles' targets (a role's
    title stays)."""
    text = TITLED_ROLE.sub(r"\1", text)
    text = CODE.sub(" ", ROLE.sub(" ", text))
    return LINK_TARGET.sub("] ", text)


def _english_prose(text: str) -> str:
    """The English words a glossary term is looked for in: the prose without its
    "double-quoted" quotations (error messages and the like, which stay English) and
    without code written without backticks (a word with a call or an `=` in it:
    `next(batches)`, `workers=4`)."""
    return CODE_WORD.sub(" ", QUOTATION.sub(" ", _prose(text)))


def _term(term: str) -> re.Pattern[str]:
    """The English term as a word, in any case, also in the plural ("layer": "Layers"); a
    part of a dotted name (`keras.layers.merge` written without backticks) is not a word."""
    words = r"\s+".join(re.escape(word) for word in term.split())
    return re.compile(rf"(?<![\w.]){words}(?:s|es)?(?!\w|\.\w)", re.I)


def _terms_in(english: str, glossary: list[Row]) -> list[Row]:
    """The glossary rows whose term the English text contains, not counting a term found
    only inside a longer term's words ("generator" in "random number generator")."""
    spans = {row: [m.span() for m in _term(row[0]).finditer(english)] for row in glossary}
    longer = [span for row in glossary for span in spans[row]]

    def inside_a_longer(span: tuple[int, int]) -> bool:
        return any(a <= span[0] and span[1] <= b and (a, b) != span for a, b in longer)

    return [row for row in glossary if any(not inside_a_longer(s) for s in spans[row])]


def _uses(translation: str, form: str, present: list[Row]) -> bool:
    """True when the translation has the form outside the renderings of the message's
    terms that contain it: "random number generator" may render as 乱数生成器 in a
    glossary that keeps 生成器 from rendering "generator"."""
    for _, rendering, _ in present:
        if form in rendering:
            translation = translation.replace(rendering, " ")
    return form in translation


@pytest.mark.parametrize("language", LANGUAGES)
def test_glossary_terms_have_their_one_rendering(language):
    """For each glossary term: every translated message of the translated pages whose
    English words (code spans, link targets, "double-quoted" quotations and code without
    backticks aside; in a code block, its comments) contain the term has the rendering, and none of the renderings listed under Not.
    The term is matched as a word in any case, plural too; an occurrence inside a longer
    glossary term counts for the longer term only."""
    glossary = _glossary(language)
    assert glossary, (
        f"docs/development.md has no glossary table for {language}: add the subsection "
        f"'### {GLOSSARY_HEADINGS[language]}' under '## Translation glossary' with the table "
        "| English | Rendering | Not | Source |"
    )
    problems = []
    for page in PAGES:
        blocks = _code_blocks(page)
        for message in _read(DOCS / "locale" / language / "LC_MESSAGES" / f"{page}.po"):
            if not message.id or not message.string or message.fuzzy:
                continue
            if message.id in blocks:
                english = CODE_WORD.sub(
                    " ", "\n".join(_comments_split(message.id, blocks[message.id])[1])
                )
                translation = "\n".join(_comments_split(message.string, blocks[message.id])[1])
            else:
                english, translation = _english_prose(message.id), _prose(message.string)
            present = _terms_in(english, glossary)
            for term, rendering, nots in present:
                wrong = [form for form in nots if _uses(translation, form, present)]
                if rendering not in translation or wrong:
                    problems.append(
                        f"{page}: {term!r} should be {rendering!r}"
                        + (f" (not {', '.join(wrong)})" if wrong else "")
                        + f": {message.string!r}"
                    )
    assert problems == [], f"{len(problems)} in {language}:\n" + "\n".join(problems[:30])


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


def test_translated_code_blocks_show_their_translated_comments(japanese_site):
    """Each translated code block of these pages shows in the page as translated: its
    code highlighted as before, its comments in Japanese (not "::", which Sphinx's own
    transform makes of a translated MyST code block)."""
    for page in ("migration", "cli", "multi_gpu_model"):
        html_text = (japanese_site / f"{page}.html").read_text(encoding="utf-8")
        text = html.unescape(re.sub(r"<[^>]+>", "", html_text))
        blocks = _code_blocks(page)
        catalogue = _read(DOCS / "locale" / "ja" / "LC_MESSAGES" / f"{page}.po")
        translated = [m for m in catalogue if m.id in blocks and m.string and m.string != m.id]
        assert translated, f"{page}.po translates no code block"
        for message in translated:
            language = blocks[message.id]
            comments = _comments_split(message.string, language)[1]
            missing = [c for c in comments if c.strip() and c not in text]
            assert missing == [], f"{page}.html lacks the translated comments {missing[:3]}"
            assert message.string.splitlines()[-1] in text, f"{page}.html lacks its code"
        assert '<span class="p">::</span>' not in html_text, f"{page}.html has a '::' block"


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

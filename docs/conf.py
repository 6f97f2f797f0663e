"""Sphinx configuration for the kutils documentation (built by ``nox -s docs``)."""

from __future__ import annotations

import gettext
import os
import sys

sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx.util.i18n import docname_to_domain

import kutils

project = "kutils"
author = "The kutils developers"
copyright = "2026, The kutils developers"
release = kutils.__version__
version = release

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_custom_sections = [("Differences", "notes_style"), ("Threads", "notes_style")]
html_theme = "furo"
html_title = f"kutils {release}"

# -- Translations ----------------------------------------------------------------------
# English is the single source. The Japanese, Chinese and Korean sites are built from the
# gettext catalogues under docs/locale/<lang>/LC_MESSAGES/ (one per page): a sentence
# changed in English shows in English on those sites until its catalogue entry is
# translated again, and tests/test_translations.py fails until then. `nox -s translations`
# updates the catalogues; `nox -s docs` builds the four sites.
locale_dirs = ["locale/"]
gettext_compact = False
gettext_uuid = False
gettext_last_translator = "The kutils developers"
gettext_language_team = "The kutils developers"
# Code blocks are messages too, so that their comments can be translated; the code itself
# stays byte for byte as in English (tests/test_translations.py checks it). A block with
# no comment may stay untranslated: Sphinx then shows the English, which is the same.
gettext_additional_targets = ["literal-block"]

# Each language's site: its folder under the English one, and its name in that language.
SITES = {"en": "", "ja": "ja/", "zh_CN": "zh_CN/", "ko": "ko/"}
LANGUAGE_NAMES = {"en": "English", "ja": "日本語", "zh_CN": "中文", "ko": "한국어"}
READ_THIS_IN = {
    "en": "Read this in:",
    "ja": "この文書を他の言語で読む:",
    "zh_CN": "阅读其他语言版本：",
    "ko": "다른 언어로 읽기:",
}


def language_links(current: str, pagename: str) -> str:
    """The "Read this in" line: links to this page on the other three sites."""
    # From this page up to the English site's root, then down to the other language's page.
    up = "../" * pagename.count("/") + ("../" if SITES[current] else "")
    links = [
        f'<a href="{up}{SITES[language]}{pagename}.html" hreflang="{language.replace("_", "-")}"'
        f' lang="{language.replace("_", "-")}">{LANGUAGE_NAMES[language]}</a>'
        for language in SITES
        if language != current
    ]
    return f'<p class="kutils-languages">{READ_THIS_IN[current]} {" / ".join(links)}</p>\n'


def _add_language_links(app, pagename, templatename, context, doctree):
    if doctree is None or "body" not in context:
        return  # the search and index pages have no page to translate
    current = app.config.language if app.config.language in SITES else "en"
    context["body"] = language_links(current, pagename) + context["body"]


class TranslateCodeBlocks(SphinxTransform):
    """Put the translated code blocks (their comments translated) in the page.

    Sphinx's own Locale transform parses a translated code block as markup, which works
    for reStructuredText but turns each block of a MyST page into "::" (MyST-Parser issue
    444). This one runs first and sets the translated text as it is; Locale then skips
    the block, marked translated.
    """

    default_priority = 19  # before Sphinx's Locale transform (20)

    def apply(self, **kwargs):
        if "literal-block" not in self.config.gettext_additional_targets:
            return
        domain = docname_to_domain(self.env.current_document.docname, self.config.gettext_compact)
        translations = {}
        for directory in self.config.locale_dirs:  # the .mo files Sphinx compiled
            path = os.path.join(
                self.env.srcdir, directory, self.config.language, "LC_MESSAGES", f"{domain}.mo"
            )
            if os.path.exists(path):
                with open(path, "rb") as file:
                    translations.update(gettext.GNUTranslations(file)._catalog)
        for node in self.document.findall(nodes.literal_block):
            english = node.rawsource or node.astext()
            translation = translations.get(english)
            if node.get("translated") or not translation or translation == english:
                continue
            node.children = [nodes.Text(translation)]
            node.rawsource = translation  # the highlighter wants rawsource == astext()
            node["translated"] = True


def setup(app):
    app.connect("html-page-context", _add_language_links)
    app.add_transform(TranslateCodeBlocks)
    return {"parallel_read_safe": True}

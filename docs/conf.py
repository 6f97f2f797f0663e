"""Sphinx configuration for the kutils documentation (built by ``nox -s docs``)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

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

"""Sphinx configuration: Markdown pages (MyST) plus an API reference from docstrings."""

from __future__ import annotations

from importlib.metadata import version as _version

project = "atlas_async"
author = "atlas_async developers"
copyright = "2026, atlas_async developers"
release = _version("atlas-async")

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# Docstrings write `Name` in single backticks as code, like the Markdown pages.
default_role = "code"

html_theme = "furo"
html_title = "atlas_async"

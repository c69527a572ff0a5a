"""mkdocs hook: Sphinx roles in docstrings (``:class:`Name```) render as plain code.

mkdocstrings renders docstrings as Markdown, where ``:class:`ExpMag``` comes out as the text
":class:" followed by ``ExpMag`` in code. The docstrings keep the roles (``help()`` reads them
fine); on the site the role prefix, and Sphinx's ``~`` that shortens a dotted path, are dropped.
"""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|exc|data|obj|const):<code>~?")


def on_page_content(html: str, **kwargs) -> str:
    """Drop Sphinx role prefixes in front of inline code."""
    return ROLE.sub("<code>", html)

"""MkDocs hooks: the site's front page is the README, its links made the site's.

The README links to `docs/*.md` so that its links work where it is read most (the
repository's page); on the site those pages sit at the root, and CHANGELOG.md is
`changelog.md`. One front page, kept in one file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).parents[1] / "README.md"

_DOCS_LINK = re.compile(r"\]\(docs/")


def on_page_markdown(markdown: str, *, page: Any, **_: Any) -> str:
    """Replace the front page's text with the README's."""
    if page.file.src_uri != "index.md":
        return markdown
    readme = README.read_text(encoding="utf-8")
    return _DOCS_LINK.sub("](", readme).replace("](CHANGELOG.md)", "](changelog.md)")

"""A griffe extension: the `#:` comment lines above an attribute are its docstring.

The package documents its constants and attributes as Sphinx reads them (`#: text` on the
lines above the assignment); griffe reads only a string below one, so without this the
reference would show those names bare.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import griffe


class CommentDocstrings(griffe.Extension):
    """Give an attribute that has no docstring the `#:` comment block above it."""

    def on_attribute_instance(self, *, attr: griffe.Attribute, **kwargs: Any) -> None:
        """Read the comment block that ends on the line above the attribute."""
        path = attr.filepath
        if attr.docstring is not None or attr.lineno is None or not isinstance(path, Path):
            return
        if path not in attr.lines_collection:
            return
        source = attr.lines_collection[path]
        comment: list[str] = []
        number = attr.lineno - 2  # the line above, 0-based
        while number >= 0 and source[number].lstrip().startswith("#:"):
            comment.insert(0, source[number].lstrip()[2:].strip())
            number -= 1
        if comment:
            attr.docstring = griffe.Docstring(
                "\n".join(comment), lineno=number + 2, endlineno=attr.lineno - 1, parent=attr
            )

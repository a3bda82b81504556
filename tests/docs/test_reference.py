"""The API reference on the documentation site covers every public name."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest

import audioscape_async
import audioscape_async.emulator

REFERENCE = Path(__file__).parents[2] / "docs" / "reference"


def documented(page: str) -> set[str]:
    """The objects the reference page `page` renders with a `:::` line."""
    text = (REFERENCE / page).read_text(encoding="utf-8")
    return set(re.findall(r"^::: (\S+)$", text, re.MULTILINE))


@pytest.mark.parametrize(
    ("module", "page"),
    [(audioscape_async, "client.md"), (audioscape_async.emulator, "emulator.md")],
    ids=["audioscape_async", "audioscape_async.emulator"],
)
def test_every_public_name_has_a_reference_entry(module: ModuleType, page: str) -> None:
    """Each name in the module's `__all__` has its own entry on its reference page."""
    public = {f"{module.__name__}.{member}" for member in vars(module)["__all__"]}
    assert public - documented(page) == set()


def test_the_plugin_reference_renders_the_plugin() -> None:
    """The pytest plugin's page renders the module that pytest loads (its fixtures)."""
    assert documented("pytest-plugin.md") == {"audioscape_async.pytest_plugin"}

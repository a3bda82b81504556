"""Every Python block in the README and on the documentation site runs, against the emulator.

A block fenced as `python` is run; output, shell sessions and code that is shown but not
meant to run take another fence (`console`, `text`, `py`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from audioscape_async.emulator import EmulatorServer

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCKS = [
    (page.relative_to(ROOT).as_posix(), number, code)
    for page in PAGES
    for number, code in enumerate(
        re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.DOTALL | re.M),
        start=1,
    )
]


def blocks_in(name: str) -> int:
    """How many runnable blocks the page `name` has."""
    return sum(1 for page, _, _ in BLOCKS if page == name)


def test_the_pages_show_code() -> None:
    """The README's tour and each guide with examples are found, so the run below tests them."""
    assert blocks_in("README.md") >= 5
    for guide in ("quickstart", "blocking", "errors", "serving", "crawling", "testing"):
        assert blocks_in(f"docs/{guide}.md") >= 1, guide
    assert len(BLOCKS) >= 25


@pytest.mark.parametrize(
    ("page", "number", "code"), BLOCKS, ids=[f"{page}-{number}" for page, number, _ in BLOCKS]
)
def test_code_block_runs(
    page: str, number: int, code: str, audioscape_server: EmulatorServer, tmp_path: Path
) -> None:
    """Python block `number` of `page` runs to completion against the emulator."""
    env = {
        **os.environ,
        "AUDIOSCAPE_BASE_URL": audioscape_server.url,
        "AUDIOSCAPE_API_KEY": audioscape_server.api_key,
    }
    script = tmp_path / "test_example.py"
    script.write_text(code, encoding="utf-8")
    if "def test_" in code:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(script)]
    else:
        command = [sys.executable, str(script)]
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False
    )
    assert result.returncode == 0, f"{page}, block {number}:\n{result.stdout}\n{result.stderr}"

"""Every Python example in the README runs, against the emulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from audioscape_async.emulator import EmulatorServer

README = Path(__file__).parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_readme_has_examples() -> None:
    """The README shows code, so this file tests something."""
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, audioscape_server: EmulatorServer, tmp_path: Path) -> None:
    """README example number `index` runs to completion against the emulator."""
    code = BLOCKS[index]
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
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"

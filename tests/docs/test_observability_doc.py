"""Every Python example in docs/observability.md runs, against the emulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from audioscape_async.emulator import EmulatorServer

PAGE = Path(__file__).parents[2] / "docs" / "observability.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)


def test_the_page_has_examples() -> None:
    """The page shows a hook, an async hook, an OpenTelemetry set-up and the switches."""
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_observability_example_runs(
    index: int, audioscape_server: EmulatorServer, tmp_path: Path
) -> None:
    """Example number `index` of docs/observability.md runs to completion against the emulator."""
    env = {
        **os.environ,
        "AUDIOSCAPE_BASE_URL": audioscape_server.url,
        "AUDIOSCAPE_API_KEY": audioscape_server.api_key,
    }
    script = tmp_path / "example.py"
    script.write_text(BLOCKS[index], encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert audioscape_server.api_key not in result.stdout + result.stderr

"""A script that forgets to close its Client still exits promptly and cleanly."""

from __future__ import annotations

import os
import subprocess
import sys

from audioscape_async.emulator import EmulatorServer

SCRIPT = """
from audioscape_async import Client
client = Client()
print(len(client.search("chill lo-fi beats", limit=3).tracks))
iterator = iter(client.iter_tracks("chill lo-fi beats"))
print(next(iterator).asset_id.isdigit())
"""


def test_unclosed_client_does_not_hang_the_exit(audioscape_server: EmulatorServer) -> None:
    """A module-level Client left open, mid-iteration, is closed at exit; the process ends."""
    env = {
        **os.environ,
        "AUDIOSCAPE_BASE_URL": audioscape_server.url,
        "AUDIOSCAPE_API_KEY": audioscape_server.api_key,
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "True"]
    assert result.stderr == ""

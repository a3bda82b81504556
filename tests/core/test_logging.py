"""`AUDIOSCAPE_LOG` turns on the SDK's own handler; DEBUG tells each attempt, never the key."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import API_KEY
from tests.reliability.servers import RawServer, answer

SCRIPT = """
import sys
from audioscape_async import Client
with Client(sys.argv[1], base_url=sys.argv[2], max_retries=0) as client:
    client.search("calm piano")
"""


def _run(level: str | None, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AUDIOSCAPE_LOG"}
    if level is not None:
        env["AUDIOSCAPE_LOG"] = level
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, API_KEY, url],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=True,
    )


def test_debug_logs_one_line_per_attempt_without_the_key() -> None:
    """AUDIOSCAPE_LOG=debug prints method, path, status, elapsed, attempt and request id."""
    with RawServer(answer()) as server:
        done = _run("debug", server.url())
    lines = [line for line in done.stderr.splitlines() if "audioscape_async" in line]
    assert len(lines) == 1, done.stderr
    assert "DEBUG" in lines[0]
    assert "POST /developer/v1/search -> 200" in lines[0]
    assert "attempt 1" in lines[0]
    assert "req_raw" in lines[0]
    assert API_KEY not in done.stderr


def test_info_and_no_variable() -> None:
    """AUDIOSCAPE_LOG=info hides the attempt lines; without the variable nothing is printed."""
    with RawServer(answer()) as server:
        info = _run("info", server.url())
        quiet = _run(None, server.url())
        odd = _run("loud", server.url())
    assert "audioscape_async" not in info.stderr
    assert quiet.stderr == ""
    assert "AUDIOSCAPE_LOG='loud' is not one of" in odd.stderr

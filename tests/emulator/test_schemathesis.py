"""The emulator against its shipped OpenAPI document, fuzzed by schemathesis.

A tool nobody here wrote, run the way a user would run it: `audioscape serve
--openapi` prints the document, `schemathesis run` fuzzes a live emulator
with it. It sends schema-valid requests (which must be answered 2xx in the
documented shape) and schema-violating ones (which must be refused), with
and without the API key, and checks every answer's status, content type,
headers and body against the document. Zero failures is the bar.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from audioscape_async.emulator import EmulatorServer, create_app

#: Examples per generation mode: enough to reach every field, fast enough for every run.
MAX_EXAMPLES = 60


@pytest.fixture(scope="module")
def contract_server() -> Iterator[EmulatorServer]:
    """An emulator just for the contract fuzz (its log fills with its requests)."""
    with EmulatorServer(create_app(tracks=2_000)) as server:
        yield server


def test_the_emulator_keeps_its_documented_contract(
    contract_server: EmulatorServer, tmp_path: Path
) -> None:
    """schemathesis, all phases and all checks, finds no failure against the emulator."""
    printed = subprocess.run(
        [sys.executable, "-m", "audioscape_async.emulator", "--openapi"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    document = tmp_path / "openapi.json"
    document.write_text(printed.stdout, encoding="utf-8")
    command = [sys.executable, "-m", "schemathesis.cli", "run", str(document)]
    command += ["--url", contract_server.url]
    command += ["--header", f"x-api-key: {contract_server.api_key}"]
    # Both modes (valid and invalid data), every check, reproducibly.
    command += ["--mode", "all", "--checks", "all", "--seed", "0", "--no-color"]
    command += ["--max-examples", str(MAX_EXAMPLES)]
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "No issues found" in report
    # The fuzz reached the emulator: valid and invalid requests alike.
    by_status = contract_server.emulator.summary()["by_status"]
    assert by_status.get("200", 0) > 20
    assert by_status.get("400", 0) > 20
    assert by_status.get("401", 0) > 0

"""The pytest plugin: loud without its extra, fast whatever Retry-After says, and honest."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from audioscape_async import AsyncClient, Client
from audioscape_async.emulator import EmulatorServer, Faults
from audioscape_async.pytest_plugin import MAX_REAL_SLEEP, RetrySleeps


def _run_pytest(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        capture_output=True,
        text=True,
        cwd=directory,
        timeout=120,
        check=False,
    )


def test_a_fixture_without_the_extra_fails_with_one_line(tmp_path: Path) -> None:
    """Without starlette and uvicorn, a test using a fixture fails (not skips) naming the extra."""
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import sys

            # What a machine without the `emulator` extra looks like to an import.
            sys.modules["starlette"] = None
            sys.modules["uvicorn"] = None
            """
        )
    )
    (tmp_path / "test_app.py").write_text(
        textwrap.dedent(
            """
            def test_uses_the_emulator(audioscape_emulator):
                assert audioscape_emulator.url
            """
        )
    )
    result = _run_pytest(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "skipped" not in result.stdout
    assert "1 error" in result.stdout or "1 failed" in result.stdout
    # The error's own line; pytest's summary repeats it after "ERROR test_app.py - " (in
    # full when CI is set, cut to the terminal's width otherwise).
    lines = [
        line
        for line in result.stdout.splitlines()
        if "pip install" in line and not line.startswith("ERROR ")
    ]
    assert lines, result.stdout
    assert "pip install 'audioscape-async[emulator]'" in lines[0]
    assert "Traceback" not in result.stdout
    assert "During handling" not in result.stdout
    assert "(starlette is not installed)" in lines[0]


def test_a_module_importing_the_emulator_without_the_extra_fails_with_one_line(
    tmp_path: Path,
) -> None:
    """A test module that imports the emulator (as the README's does) errors in one line."""
    (tmp_path / "conftest.py").write_text(
        'import sys\n\nsys.modules["starlette"] = None\nsys.modules["uvicorn"] = None\n'
    )
    (tmp_path / "test_app.py").write_text(
        textwrap.dedent(
            """
            from audioscape_async.emulator import Faults


            def test_uses_the_emulator(audioscape_emulator):
                assert Faults
            """
        )
    )
    result = _run_pytest(tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "1 error" in result.stdout
    assert "Traceback" not in result.stdout
    assert "ModuleNotFoundError" not in result.stdout
    # The error's own line; pytest's summary repeats it after "ERROR test_app.py - " (in
    # full when CI is set, cut to the terminal's width otherwise).
    lines = [
        line
        for line in result.stdout.splitlines()
        if "pip install" in line and not line.startswith("ERROR ")
    ]
    assert lines == [
        "audioscape_async.emulator needs the 'emulator' extra (starlette is not installed): "
        "pip install 'audioscape-async[emulator]'"
    ], result.stdout


@pytest.mark.anyio
async def test_the_client_does_not_sleep_out_a_long_retry_after(
    audioscape_client: AsyncClient,
    audioscape_emulator: EmulatorServer,
    audioscape_retries: RetrySleeps,
) -> None:
    """A 429 with Retry-After: 120 is retried in milliseconds, and the 120 is recorded."""
    audioscape_emulator.emulator.set_faults(Faults(retry_after=120))
    audioscape_emulator.emulator.force_fault("429")
    started = time.monotonic()
    page = await audioscape_client.search("chill lo-fi beats", limit=1)
    elapsed = time.monotonic() - started
    assert page.tracks
    assert 120.0 in audioscape_retries.sleeps
    assert all(delay == 120.0 for delay in audioscape_retries.sleeps)
    assert elapsed < 5.0
    assert [record.status for record in audioscape_emulator.emulator.requests] == [429, 200]


def test_the_sync_client_records_an_http_date_retry_after(
    audioscape_sync_client: Client,
    audioscape_emulator: EmulatorServer,
    audioscape_retries: RetrySleeps,
) -> None:
    """The blocking client's waits are recorded too; a date 60 s ahead is about 60 s."""
    audioscape_emulator.emulator.set_faults(Faults(retry_after=60, retry_after_format="date"))
    audioscape_emulator.emulator.force_fault("429")
    started = time.monotonic()
    assert audioscape_sync_client.search("upbeat summer vibes", limit=1).tracks
    assert time.monotonic() - started < 5.0
    assert audioscape_retries.sleeps
    assert 58.0 <= audioscape_retries.sleeps[0] <= 60.0


@pytest.mark.anyio
async def test_backoff_is_recorded_and_capped(
    audioscape_client: AsyncClient,
    audioscape_emulator: EmulatorServer,
    audioscape_retries: RetrySleeps,
) -> None:
    """Backoff after 503s is the policy's real delays, each waited for at most a few ms."""
    audioscape_emulator.emulator.force_fault("503", count=3)
    started = time.monotonic()
    assert (await audioscape_client.search("jazz", limit=1)).tracks
    elapsed = time.monotonic() - started
    sleeps = audioscape_retries.sleeps
    assert len(sleeps) == 3
    # The default policy's backoff (0.5 s doubling, with jitter): at least 1.75 s in all...
    assert sum(sleeps) >= 1.75
    # ...of which each retry really waited at most MAX_REAL_SLEEP.
    assert elapsed < sum(sleeps) / 2
    assert MAX_REAL_SLEEP <= 0.005


def test_the_emulator_fixture_holds_the_admin_token(audioscape_emulator: EmulatorServer) -> None:
    """The fixture's server knows its admin token and sends it with admin_headers."""
    import httpx

    response = httpx.get(
        audioscape_emulator.root_url + "/_emulator/state", headers=audioscape_emulator.admin_headers
    )
    assert response.status_code == 200

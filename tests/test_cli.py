"""The `audioscape` command: search, crawl (with kill -9 and --resume), and its errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from audioscape_async import Client
from audioscape_async._cli import main
from audioscape_async.emulator import EmulatorServer, Faults

QUERY = "chill lo-fi beats"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audioscape_async", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    """An emulator on loopback for the command's network paths."""
    with EmulatorServer(tracks=20_000, seed=3) as server:
        yield server


@pytest.fixture
def env(server: EmulatorServer) -> dict[str, str]:
    """The environment that points the command at the emulator."""
    server.emulator.reset()
    return {"AUDIOSCAPE_BASE_URL": server.url, "AUDIOSCAPE_API_KEY": server.api_key}


def test_readme_first_command_prints_fitting_tracks() -> None:
    """`audioscape search --emulator` prints a table of dark cinematic tracks and a meta line."""
    result = _run("search", "--emulator", "dark cinematic boss tension")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["ASSET", "ID", "NAME"]
    rows = lines[1:-1]
    assert len(rows) == 20
    assert sum("cinematic" in row or "orchestral" in row for row in rows) >= 15
    assert "search: semantic" in lines[-1]


def test_search_json_matches_the_sdk(env: dict[str, str], server: EmulatorServer) -> None:
    """--json prints the API's JSON for the same search the SDK makes."""
    result = _run(
        "search", QUERY, "--limit", "5", "--genre", "lo-fi", "--min-likes", "1", "--json", env=env
    )
    assert result.returncode == 0, result.stderr
    printed = orjson.loads(result.stdout)
    with Client(server.api_key, base_url=server.url) as client:
        page = client.search(QUERY, limit=5, filters={"genres": ["lo-fi"], "min_likes": 1})
    assert printed == page.to_dict()
    assert {track["genre"] for track in printed["tracks"]} == {"lo-fi"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "x", "--limit", "101"], "invalid limit: must be between 1 and 100, got 101"),
        (["search", "x", "--created-after", "2024-02-30"], "filters.created_after"),
        (["search", "x", "--min-duration", "90", "--max-duration", "30"], "min (90.0) must be"),
        (["search", "  "], "invalid query: must not be empty or blank"),
        (["crawl", "x", "--out", "o.jsonl", "--burst", "3"], "--burst goes with --rps"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad input prints one error line naming the problem, exits 2, and shows no traceback."""
    assert main([*args, "--emulator"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err
    assert "Traceback" not in err


def test_argparse_errors_exit_2_without_traceback() -> None:
    """An unknown option or a malformed number is a usage error from argparse, exit 2."""
    result = _run("search", "x", "--limit", "ten")
    assert result.returncode == 2
    assert "not a whole number" in result.stderr
    assert "Traceback" not in result.stderr


def test_api_errors_exit_1(env: dict[str, str]) -> None:
    """A wrong key is an API error: one line, exit 1, and the key is not printed."""
    result = _run("search", QUERY, env={**env, "AUDIOSCAPE_API_KEY": "wrong-key-123"})
    assert result.returncode == 1
    assert result.stderr.startswith("audioscape: error: 401: Invalid API key")
    assert "wrong-key-123" not in result.stderr + result.stdout


def test_missing_key_names_the_variable() -> None:
    """Without a key the command says which variable to set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIOSCAPE_")}
    result = subprocess.run(
        [sys.executable, "-m", "audioscape_async", "search", QUERY],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "AUDIOSCAPE_API_KEY" in result.stderr


def test_crawl_writes_every_track_and_a_summary(env: dict[str, str], tmp_path: Path) -> None:
    """`audioscape crawl` writes one JSON track per line and prints a summary."""
    out = tmp_path / "tracks.jsonl"
    result = _run("crawl", QUERY, "--out", str(out), "--max-items", "1234", env=env)
    assert result.returncode == 0, result.stderr
    ids = [orjson.loads(line)["asset_id"] for line in out.read_bytes().splitlines()]
    assert len(ids) == len(set(ids)) == 1234
    assert "wrote 1,234 tracks" in result.stdout
    assert "drift: none" in result.stdout
    # Not a terminal: plain progress lines, no carriage returns.
    assert "\r" not in result.stderr


def _wait_for_lines(path: Path, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {count} lines")


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_interrupted_crawl_resumes_exactly(
    env: dict[str, str], server: EmulatorServer, tmp_path: Path, stop: signal.Signals
) -> None:
    """A crawl killed half-way and resumed with --resume writes exactly the uninterrupted set."""
    with Client(server.api_key, base_url=server.url) as client:
        expected = [t.asset_id for t in client.iter_tracks(QUERY, max_items=4_000)]
    out = tmp_path / "tracks.jsonl"
    part = tmp_path / "tracks.jsonl.part"
    server.emulator.set_faults(Faults({"latency": 1.0}, latency=0.03))
    args = ["crawl", QUERY, "--out", str(out), "--max-items", "4000", "--concurrency", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "audioscape_async", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_lines(part, 1_500)
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    if stop == signal.SIGINT:
        assert process.returncode == 130
        assert "--resume" in stderr
        assert "Traceback" not in stderr
    else:
        assert process.returncode == -signal.SIGKILL
    assert not out.exists()
    done = part.read_bytes().count(b"\n")
    assert 1_500 <= done < 4_000

    server.emulator.set_faults(None)
    result = _run(*args, "--resume", env=env)
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    assert data.endswith(b"\n")
    ids = [orjson.loads(line)["asset_id"] for line in data.splitlines()]
    assert ids == expected
    assert "resumed at offset" in result.stdout
    assert not part.exists()


def test_resume_of_a_finished_crawl_is_a_no_op(env: dict[str, str], tmp_path: Path) -> None:
    """--resume after the crawl finished leaves the output as it is."""
    out = tmp_path / "tracks.jsonl"
    assert _run("crawl", QUERY, "--out", str(out), "--max-items", "300", env=env).returncode == 0
    before = out.read_bytes()
    result = _run("crawl", QUERY, "--out", str(out), "--max-items", "300", "--resume", env=env)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == before


def test_crawl_refuses_to_overwrite(env: dict[str, str], tmp_path: Path) -> None:
    """An existing output is kept unless --force; the error says what to do."""
    out = tmp_path / "tracks.jsonl"
    out.write_text("mine\n")
    result = _run("crawl", QUERY, "--out", str(out), env=env)
    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert out.read_text() == "mine\n"


def test_version() -> None:
    """--version prints the package version."""
    from audioscape_async import __version__

    result = _run("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout

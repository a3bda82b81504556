"""The serve command: `python -m audioscape_async.emulator` and `audioscape serve`'s parts."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from audioscape_async.emulator import (
    DEMO_API_KEY,
    add_serve_arguments,
    openapi_document,
    run_serve,
)

_ROOT = str(Path(__file__).resolve().parents[2])


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "audioscape_async.emulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=_ROOT,
    )


def _read_banner(proc: subprocess.Popen[str]) -> dict[str, str]:
    assert proc.stdout is not None
    lines: dict[str, str] = {"lines": ""}
    for line in proc.stdout:
        lines["lines"] += line
        key, sep, value = line.partition(": ")
        if sep:
            lines[key] = value.strip()
        if line.startswith("Press Ctrl-C"):
            return lines
    raise AssertionError(f"no banner; stderr: {proc.stderr.read() if proc.stderr else ''}")


@pytest.fixture
def serving() -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """`python -m audioscape_async.emulator --port 0` running, with its banner read."""
    proc = _spawn("--port", "0", "--tracks", "200", "--seed", "3")
    try:
        yield proc, _read_banner(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_prints_url_and_key_and_stops_cleanly(
    serving: tuple[subprocess.Popen[str], dict[str, str]], stop: signal.Signals
) -> None:
    """The command prints a loopback URL and the demo key, serves, and exits 0 on a signal."""
    proc, banner = serving
    assert banner["url"].startswith("http://127.0.0.1:")
    assert banner["url"].endswith("/developer/v1")
    assert banner["api key"] == DEMO_API_KEY
    response = httpx.post(
        banner["url"] + "/search", json={"query": "jazz"}, headers={"x-api-key": DEMO_API_KEY}
    )
    assert response.status_code == 200
    token = banner["admin token"]
    root = banner["url"].removesuffix("/developer/v1")
    assert httpx.get(root + "/_emulator/state").status_code == 401
    authorized = httpx.get(root + "/_emulator/state", headers={"authorization": f"Bearer {token}"})
    assert authorized.status_code == 200
    proc.send_signal(stop)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "Traceback" not in out + err
    assert "Emulator stopped." in out


def test_serve_prints_the_line_to_paste_into_a_shell(
    serving: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    """An `export ...` line that points the SDK and the CLI at the emulator, as printed."""
    _proc, banner = serving
    export = next(
        line for line in banner.get("lines", "").splitlines() if line.startswith("export ")
    )
    shown = subprocess.run(
        ["bash", "-c", f"{export}; echo $AUDIOSCAPE_BASE_URL $AUDIOSCAPE_API_KEY"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert shown == [banner["url"], banner["api key"]]


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="audioscape serve")
    add_serve_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_are_loopback_8080_and_the_demo_key() -> None:
    """Without options the command would serve 10,000 tracks on 127.0.0.1:8080."""
    args = _parse()
    assert (args.host, args.port, args.api_keys, args.semantic) == ("127.0.0.1", 8080, None, True)


@pytest.mark.parametrize(
    "argv",
    [
        ["--rate", "fast"],
        ["--rate", "0"],
        ["--fault", "bogus=0.1"],
        ["--fault", "500"],
        ["--fault", "500=2"],
        ["--port", "70000"],
        ["--tracks", "-1"],
        ["--tracks", "10", "--catalog", "x.jsonl"],
        ["--latency", "soon"],
        ["--burst", "0"],
    ],
)
def test_bad_options_are_one_line_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Malformed options exit 2 with an argparse error naming the option, no traceback."""
    with pytest.raises(SystemExit) as exit_info:
        _parse(*argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("audioscape serve: error: argument")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--burst", "3"], "--burst needs --rate"),
        (["--rate-retry-after", "date"], "--rate-retry-after needs --rate"),
        (["--admin-token", " "], "--admin-token must not be empty"),
        (["--fault", "500=0.7", "--fault", "503=0.6"], "add up to"),
        (["--catalog", "/nonexistent/catalog.jsonl"], "cannot read catalog"),
        (["--catalog", "catalog.txt"], "unknown catalog format"),
    ],
)
def test_bad_combinations_are_one_line_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Options that parse but cannot run return 2 with one error line."""
    assert run_serve(_parse(*argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("audioscape serve: error: ")
    assert message in err[0]


def test_busy_port_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    """A port in use is a one-line error and exit code 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert run_serve(_parse("--tracks", "5", "--port", str(port))) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]]
    assert f"cannot listen on 127.0.0.1:{port}" in err[0]


def test_non_loopback_host_warns_loudly(capsys: pytest.CaptureFixture[str]) -> None:
    """Asking for a non-loopback host prints a WARNING before anything else happens."""
    run_serve(_parse("--host", "0.0.0.0", "--catalog", "/nonexistent/x.jsonl"))
    err = capsys.readouterr().err
    assert err.startswith("WARNING: listening on 0.0.0.0 exposes the emulator")


def test_module_entry_point_reports_bad_input_without_traceback() -> None:
    """`python -m audioscape_async.emulator` with a bad option exits 2, no traceback."""
    proc = _spawn("--fault", "500=0.9", "--fault", "drop=0.9")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "Traceback" not in out + err
    assert err.strip().startswith("python -m audioscape_async.emulator: error:")


def test_openapi_prints_the_contract_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """--openapi prints the shipped OpenAPI document as JSON and serves nothing."""
    assert run_serve(_parse("--openapi")) == 0
    document = json.loads(capsys.readouterr().out)
    assert document == openapi_document()
    operation = document["paths"]["/search"]["post"]
    assert operation["responses"]["429"]["content"]["application/json"]["example"] == {
        "message": "Too Many Requests"
    }
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["limit"] == {
        "type": "number", "multipleOf": 1, "minimum": 1, "maximum": 100, "default": 20,
        "description": "Maximum results to return.",
    }  # fmt: skip


def test_admin_token_and_retry_after_options_are_used() -> None:
    """--admin-token sets the token; --retry-after and --rate-retry-after give 429s a header."""
    proc = _spawn(
        "--port", "0", "--tracks", "50", "--admin-token", "tok-123",
        "--retry-after", "7", "--rate", "0.01/1", "--rate-retry-after", "seconds",
    )  # fmt: skip
    try:
        banner = _read_banner(proc)
        assert banner["admin token"] == "tok-123"
        url, headers = banner["url"] + "/search", {"x-api-key": DEMO_API_KEY}
        faulted = httpx.post(
            url, json={"query": "a"}, headers={**headers, "x-emulator-fault": "429"}
        )
        assert faulted.headers["retry-after"] == "7"
        assert httpx.post(url, json={"query": "a"}, headers=headers).status_code == 200
        limited = httpx.post(url, json={"query": "a"}, headers=headers)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
    finally:
        proc.kill()
        proc.communicate(timeout=10)

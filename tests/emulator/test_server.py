"""Serving over real sockets: EmulatorServer in a thread, EmulatorProcess in a child."""

from __future__ import annotations

import threading

import httpx
import pytest

from audioscape_async.emulator import (
    EmulatorError,
    EmulatorProcess,
    EmulatorServer,
    EmulatorStartupError,
    create_app,
)


def _emulator_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("audioscape-emulator")]


def test_server_start_and_stop_leave_no_thread() -> None:
    """A started server answers on 127.0.0.1, and after stop its thread is gone."""
    before = _emulator_threads()
    server = EmulatorServer(tracks=30)
    server.start()
    try:
        assert server.url == f"http://127.0.0.1:{server.port}/developer/v1"
        assert len(_emulator_threads()) == len(before) + 1
        response = httpx.post(
            server.url + "/search", json={"query": "jazz"}, headers={"x-api-key": server.api_key}
        )
        assert response.status_code == 200
    finally:
        server.stop()
    assert not server.running
    assert _emulator_threads() == before
    server.stop()


def test_server_context_manager_stops_and_frees_the_port() -> None:
    """Leaving the with block stops the server: its port refuses connections."""
    with EmulatorServer(tracks=30) as server:
        url = server.url
        emulator = server.emulator
    assert emulator is server.emulator
    with pytest.raises(httpx.ConnectError):
        httpx.post(url + "/search", json={"query": "x"})
    with pytest.raises(EmulatorError, match="not running"):
        _ = server.url


def test_server_can_restart_with_its_state() -> None:
    """A stopped server starts again, keeping its emulator and its log."""
    server = EmulatorServer(tracks=30)
    with server:
        httpx.post(
            server.url + "/search", json={"query": "x"}, headers={"x-api-key": server.api_key}
        )
    with server:
        httpx.post(
            server.url + "/search", json={"query": "x"}, headers={"x-api-key": server.api_key}
        )
    assert len(server.emulator.requests) == 2


def test_busy_port_is_a_clear_startup_error() -> None:
    """A port already taken raises EmulatorStartupError naming host and port."""
    before = _emulator_threads()
    with EmulatorServer(tracks=10) as first:
        second = EmulatorServer(tracks=10, port=first.port)
        with pytest.raises(EmulatorStartupError, match=f"127.0.0.1:{first.port}"):
            second.start()
    assert _emulator_threads() == before


def test_server_refuses_app_and_options_together() -> None:
    """Passing an app and create_app options at once is a TypeError."""
    with pytest.raises(TypeError):
        EmulatorServer(create_app(tracks=5), tracks=5)


def test_starting_twice_is_an_error() -> None:
    """start() on a running server raises instead of leaking a second thread."""
    with EmulatorServer(tracks=10) as server, pytest.raises(EmulatorError, match="already"):
        server.start()


def test_process_serves_and_is_steered_over_admin() -> None:
    """EmulatorProcess starts a child that answers, obeys admin calls, and exits 0 on stop."""
    with EmulatorProcess(tracks=300, seed=4, faults={"503": 0.0}) as proc:
        assert proc.url.startswith("http://127.0.0.1:")
        headers = {"x-api-key": proc.api_key}
        with httpx.Client(base_url=proc.url, headers=headers) as client:
            assert client.post("/search", json={"query": "jazz"}).status_code == 200
            proc.force_fault("502")
            assert client.post("/search", json={"query": "jazz"}).status_code == 502
            proc.set_faults({"500": 1.0})
            assert client.post("/search", json={"query": "jazz"}).status_code == 500
            assert proc.requests()["by_status"] == {"200": 1, "500": 1, "502": 1}
            proc.reset()
            assert proc.state()["faults"]["rates"] == {}
            assert proc.state()["seed"] == 4
        pid = proc.pid
        assert pid is not None
    assert proc.pid is None
    assert "Traceback" not in proc.output
    assert "Emulator stopped." in proc.output


def test_process_startup_failure_is_reported() -> None:
    """A child that cannot start raises EmulatorStartupError with its own message."""
    proc = EmulatorProcess(catalog="/nonexistent/catalog.jsonl")
    with pytest.raises(EmulatorStartupError, match=r"exited before it was ready.*catalog"):
        proc.start()
    assert proc.pid is None

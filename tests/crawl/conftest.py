"""Emulators for the crawl and command-line tests, one per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from audioscape_async.emulator import EmulatorServer


@pytest.fixture(scope="module")
def big_server() -> Iterator[EmulatorServer]:
    """An emulator whose catalog matches more than 20,000 tracks for QUERY."""
    with EmulatorServer(tracks=40_000, seed=1) as server:
        yield server


@pytest.fixture
def server(big_server: EmulatorServer) -> Iterator[EmulatorServer]:
    """The big emulator for one test, reset before and after."""
    big_server.emulator.reset()
    yield big_server
    big_server.emulator.reset()


@pytest.fixture(scope="module")
def cli_server() -> Iterator[EmulatorServer]:
    """An emulator on loopback for the command's network paths."""
    with EmulatorServer(tracks=20_000, seed=3) as server:
        yield server


@pytest.fixture
def env(cli_server: EmulatorServer) -> dict[str, str]:
    """The environment that points the command at the emulator."""
    cli_server.emulator.reset()
    return {"AUDIOSCAPE_BASE_URL": cli_server.url, "AUDIOSCAPE_API_KEY": cli_server.api_key}

"""Fixtures for the emulator's tests: one catalog and one live server per session.

The server is shared because starting uvicorn costs more than most tests;
`live` resets its emulator before each test, so no test sees another's
faults, rate limits, forced faults or request log.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from audioscape_async.emulator import Catalog, EmulatorServer, create_app, generate_catalog
from tests.emulator.support import SEED, TRACKS


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The generated catalog every session-scoped emulator serves."""
    return generate_catalog(TRACKS, SEED)


@pytest.fixture(scope="session")
def _server(catalog: Catalog) -> Iterator[EmulatorServer]:
    with EmulatorServer(create_app(catalog=catalog, seed=SEED)) as server:
        yield server


@pytest.fixture
def live(_server: EmulatorServer) -> EmulatorServer:
    """The session's running server, reset to its state at creation."""
    _server.emulator.reset()
    return _server


@pytest.fixture
def http(live: EmulatorServer) -> Iterator[httpx.Client]:
    """A sync client for the live server, with its API key and a short timeout."""
    with httpx.Client(
        base_url=live.url, headers={"x-api-key": live.api_key}, timeout=5.0
    ) as client:
        yield client

"""pytest fixtures that run the AudioScape emulator for your own test suite.

Installed with the package and registered through the ``pytest11`` entry
point, so the fixtures are there as soon as ``audioscape-async[emulator]`` is
installed; nothing is imported or started until a test asks for one.

``audioscape_server``
    Session-wide: the emulator on a free 127.0.0.1 port (an
    `audioscape_async.emulator.EmulatorServer`: ``.url``, ``.api_key``,
    ``.emulator``).
``audioscape_emulator``
    The same server for one test; its faults, rate limit and request log are
    reset after the test. Steer it with ``.emulator.force_fault("429")``,
    ``.emulator.set_faults({"503": 0.5})`` or ``.emulator.set_rate_limit(...)``.
``audioscape_env``
    Sets ``AUDIOSCAPE_BASE_URL`` and ``AUDIOSCAPE_API_KEY`` for the test, so
    code that builds its own client finds the emulator.
``audioscape_client`` / ``audioscape_sync_client``
    A ready `AsyncClient` (an async fixture: run the test with anyio's pytest
    plugin, ``@pytest.mark.anyio``) or `Client` wired to the emulator, with
    retries that do not sleep long.

The marker ``@pytest.mark.audioscape_faults({"500": 1.0})`` sets fault rates
for one test. Options: ``--audioscape-tracks N`` and ``--audioscape-seed N``
shape the generated catalog (defaults 10,000 and 0).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from . import AsyncClient, Client
    from .emulator import EmulatorServer


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the options that shape the emulator's catalog."""
    group = parser.getgroup("audioscape", "AudioScape emulator")
    group.addoption(
        "--audioscape-tracks",
        type=int,
        default=10_000,
        help="tracks in the emulator's generated catalog (default 10000)",
    )
    group.addoption(
        "--audioscape-seed", type=int, default=0, help="seed of the emulator's catalog and faults"
    )


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker, so that --strict-markers accepts it."""
    config.addinivalue_line(
        "markers",
        "audioscape_faults(rates): fault rates for the AudioScape emulator in this test, "
        'e.g. {"500": 1.0}',
    )


@pytest.fixture(scope="session")
def audioscape_server(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    """The AudioScape emulator on a free loopback port, for the whole session."""
    try:
        from .emulator import EmulatorServer
    except ImportError as error:  # pragma: no cover - depends on the environment
        pytest.skip(
            f"the AudioScape emulator needs its extra: pip install 'audioscape-async[emulator]' "
            f"({error})"
        )
    server = EmulatorServer(
        tracks=request.config.getoption("--audioscape-tracks"),
        seed=request.config.getoption("--audioscape-seed"),
    )
    with server:
        yield server


@pytest.fixture
def audioscape_emulator(
    audioscape_server: EmulatorServer, request: pytest.FixtureRequest
) -> Iterator[EmulatorServer]:
    """The session's emulator for one test, reset afterwards."""
    marker = request.node.get_closest_marker("audioscape_faults")
    audioscape_server.emulator.reset()
    if marker is not None:
        audioscape_server.emulator.set_faults(*marker.args, **marker.kwargs)
    try:
        yield audioscape_server
    finally:
        audioscape_server.emulator.reset()


@pytest.fixture
def audioscape_env(
    audioscape_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> EmulatorServer:
    """Point AUDIOSCAPE_BASE_URL and AUDIOSCAPE_API_KEY at the emulator for one test."""
    from ._constants import API_KEY_ENV, BASE_URL_ENV

    monkeypatch.setenv(BASE_URL_ENV, audioscape_emulator.url)
    monkeypatch.setenv(API_KEY_ENV, audioscape_emulator.api_key)
    return audioscape_emulator


def _client_options(server: EmulatorServer) -> dict[str, Any]:
    from . import RetryPolicy

    return {
        "api_key": server.api_key,
        "base_url": server.url,
        "timeout": 10.0,
        # Retry quickly: the emulator's faults are meant to be retried, not waited for.
        "retry": RetryPolicy(initial_backoff=0.01, max_backoff=0.05, max_retry_after=5.0),
    }


@pytest.fixture
async def audioscape_client(audioscape_emulator: EmulatorServer) -> AsyncIterator[AsyncClient]:
    """An open `AsyncClient` wired to the emulator (use with ``@pytest.mark.anyio``)."""
    from . import AsyncClient

    async with AsyncClient(**_client_options(audioscape_emulator)) as client:
        yield client


@pytest.fixture
def audioscape_sync_client(audioscape_emulator: EmulatorServer) -> Iterator[Client]:
    """An open `Client` wired to the emulator."""
    from . import Client

    with Client(**_client_options(audioscape_emulator)) as client:
        yield client

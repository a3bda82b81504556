"""pytest fixtures that run the AudioScape emulator for your own test suite.

Installed with the package and registered through the ``pytest11`` entry
point; nothing is imported or started until a test asks for a fixture. The
emulator needs the ``emulator`` extra: a test that asks for one of these
fixtures without it *fails* (it is not skipped, so a CI run cannot go green
having tested nothing) with one line saying what to install.

``audioscape_server``
    Session-wide: the emulator on a free 127.0.0.1 port (an
    `audioscape_async.emulator.EmulatorServer`: ``.url``, ``.api_key``,
    ``.emulator``, and ``.admin_token`` / ``.admin_headers`` for its
    ``/_emulator/`` admin endpoints).
``audioscape_emulator``
    The same server for one test; its faults, rate limit and request log are
    reset after the test. Steer it with ``.emulator.force_fault("429")``,
    ``.emulator.set_faults({"503": 0.5})`` or ``.emulator.set_rate_limit(...)``.
``audioscape_env``
    Sets ``AUDIOSCAPE_BASE_URL`` and ``AUDIOSCAPE_API_KEY`` for the test, so
    code that builds its own client finds the emulator (with fast retries, as
    below).
``audioscape_client`` / ``audioscape_sync_client``
    A ready `AsyncClient` (an async fixture: run the test with anyio's pytest
    plugin, ``@pytest.mark.anyio``) or `Client` wired to the emulator. Its
    retry policy waits through any ``Retry-After`` up to an hour, and...
``audioscape_retries``
    ...for the test, every SDK sleep (retry backoff, ``Retry-After``, the
    client-wide pause after a 429) returns after at most
    `MAX_REAL_SLEEP` (5 ms), whatever it was asked for, and is recorded:
    ``audioscape_retries.sleeps`` lists the seconds asked for, so a test can
    assert that a ``Retry-After: 120`` was honoured as 120. The client
    fixtures and ``audioscape_env`` use it; ask for it to read the record.

The marker ``@pytest.mark.audioscape_faults({"500": 1.0})`` sets fault rates
for one test. Options: ``--audioscape-tracks N`` and ``--audioscape-seed N``
shape the generated catalog (defaults 10,000 and 0).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    from . import AsyncClient, Client
    from .emulator import EmulatorServer

#: The longest an SDK sleep really waits in a test that uses the plugin's clients.
MAX_REAL_SLEEP: Final = 0.005
#: The longest Retry-After the plugin's clients wait through (for free: see above).
_MAX_RETRY_AFTER: Final = 3600.0
#: How a missing extra shows in pytest's report of a module that imports the emulator.
_MISSING_EXTRA_LINE = re.compile(r"\bMissingExtraError: (.+)$", re.MULTILINE)


class RetrySleeps:
    """What the SDK asked to sleep during one test, in seconds, in order.

    >>> def test_honours_retry_after(audioscape_client, audioscape_retries): ...
    """

    def __init__(self) -> None:
        #: Every delay asked for: backoffs, Retry-After waits, 429 pauses.
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        """Record `seconds`, then wait at most `MAX_REAL_SLEEP` of it."""
        import anyio

        self.sleeps.append(seconds)
        await anyio.sleep(min(max(seconds, 0.0), MAX_REAL_SLEEP))

    def __repr__(self) -> str:
        return f"<RetrySleeps {self.sleeps!r}>"


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


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """A test module that imports the emulator without its extra: one line, not a traceback.

    pytest reports a module that fails to import with the import's traceback;
    when what failed is a missing extra (`MissingExtraError`), its one line
    says all there is to say.
    """
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        found = _MISSING_EXTRA_LINE.search(str(report.longrepr))
        if found is not None:
            report.longrepr = found[1]


def _emulator_server_class() -> type[EmulatorServer]:
    """`EmulatorServer`, or a one-line failure naming the extra to install."""
    message = None
    try:
        from .emulator import EmulatorServer
    except ImportError as error:
        from ._extras import MissingExtraError, missing_text

        missing = (error.name or "starlette").split(".")[0]  # a broken install of the extra
        message = (
            str(error)
            if isinstance(error, MissingExtraError)
            else missing_text("audioscape_async.emulator", "emulator", missing)
        )
    if message is not None:
        # Outside the except block, so the report is one line, not a chained traceback.
        pytest.fail(message, pytrace=False)
    return EmulatorServer


@pytest.fixture(scope="session")
def audioscape_server(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    """The AudioScape emulator on a free loopback port, for the whole session."""
    server = _emulator_server_class()(
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
def audioscape_retries(monkeypatch: pytest.MonkeyPatch) -> RetrySleeps:
    """Make every SDK sleep of this test near-instant, and record what it asked for."""
    from . import _retry

    recorder = RetrySleeps()
    # `_retry.sleep` is the SDK's one injectable sleep, looked up at call time.
    monkeypatch.setattr(_retry, "sleep", recorder.sleep)
    return recorder


@pytest.fixture
def audioscape_env(
    audioscape_emulator: EmulatorServer,
    audioscape_retries: RetrySleeps,
    monkeypatch: pytest.MonkeyPatch,
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
        # The default backoff, and Retry-After honoured up to an hour: `audioscape_retries`
        # makes every wait near-instant, so the recorded delays are the real policy's.
        "retry": RetryPolicy(max_retry_after=_MAX_RETRY_AFTER),
    }


@pytest.fixture
async def audioscape_client(
    audioscape_emulator: EmulatorServer, audioscape_retries: RetrySleeps
) -> AsyncIterator[AsyncClient]:
    """An open `AsyncClient` wired to the emulator (use with ``@pytest.mark.anyio``)."""
    from . import AsyncClient

    async with AsyncClient(**_client_options(audioscape_emulator)) as client:
        yield client


@pytest.fixture
def audioscape_sync_client(
    audioscape_emulator: EmulatorServer, audioscape_retries: RetrySleeps
) -> Iterator[Client]:
    """An open `Client` wired to the emulator."""
    from . import Client

    with Client(**_client_options(audioscape_emulator)) as client:
        yield client

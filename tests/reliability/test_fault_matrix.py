"""Every fault, every way in: the exact outcome, the exact attempts, and a bounded time.

Each case runs against the emulator over a real loopback socket (or, for what
the emulator cannot do, a raw server of `tests.reliability.servers`), through
`AsyncClient` on asyncio (with the transport it picks by default, and with
httpx's own), on trio, and through the sync `Client`. Persistent faults are
forced on every request with the ``x-emulator-fault`` header; transient ones
on the next request only, with `Emulator.force_fault`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.to_thread
import attrs
import pytest

from audioscape_async import (
    DEFAULT_BASE_URL,
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    SearchResponse,
)
from audioscape_async.emulator import FAULT_HEADER, EmulatorServer, Faults
from tests.reliability import servers
from tests.reliability.resources import wait_until

QUERY = "dark cinematic boss tension"
#: The timeout of one attempt: short, so that a hanging server costs little.
TIMEOUT = 0.2
MAX_RETRIES = 2
POLICY = RetryPolicy(
    max_retries=MAX_RETRIES, initial_backoff=0.01, max_backoff=0.02, max_retry_after=2.0
)
#: The most the policy may sleep between attempts, in all (each backoff <= its ceiling).
BACKOFF_BUDGET: float = sum(min(0.02, 0.01 * 2 ** (n - 1)) for n in range(1, MAX_RETRIES + 1))
#: Scheduling, thread start-up and loopback round trips on a busy 2-core machine.
SLACK = 1.0

#: The ways in: (event loop, transport) for AsyncClient; the sync Client has its own tests.
WAYS = {
    "asyncio": ("asyncio", "auto"),
    "asyncio-httpx": ("asyncio", "httpx"),
    "trio": ("trio", "auto"),
}


@pytest.fixture(
    params=[
        "asyncio",
        # trio runs the same httpcore pool by default; this way adds only the event loop.
        pytest.param("asyncio-httpx", marks=pytest.mark.soak),
        "trio",
    ]
)
def way(request: pytest.FixtureRequest) -> str:
    """Which event loop and transport an async test runs on."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend(way: str) -> tuple[str, dict[str, object]]:
    """The event loop of `way` (this module's async tests run per way, not per backend)."""
    return (WAYS[way][0], {})


@pytest.fixture(autouse=True)
def _warm(audioscape_server: EmulatorServer) -> None:
    """Rank QUERY once, so that no attempt of a test pays for a cold cache within TIMEOUT."""
    audioscape_server.emulator.search(QUERY, limit=1)


@attrs.frozen
class Case:
    """One fault and what a call under it must end in."""

    id: str
    fault: str | None  # None: no fault (the error comes from the client's setup)
    transient: bool = False  # forced once (then a clean answer), else on every attempt
    error: type[Exception] | None = None  # None: the call succeeds
    attempts: int = MAX_RETRIES + 1
    status: int | None = None
    retry_after: float | None = None
    has_request_id: bool = True  # the error (or page) carries the last attempt's request id
    message: str | None = None
    retry_after_setting: int = 0  # the emulator's Retry-After for "429" and "429-date"
    latency: float | None = None  # the emulator's "latency" delay
    sleeps_at_least: float = 0.0  # a Retry-After the call must honour
    sleeps_at_most: float = 0.0  # the Retry-After sleep it is allowed on top of backoff
    options: dict[str, Any] = attrs.field(factory=dict)

    def time_budget(self) -> float:
        """Timeout x attempts + allowed backoff + allowed Retry-After + slack."""
        return TIMEOUT * self.attempts + BACKOFF_BUDGET + self.sleeps_at_most + SLACK


CASES = [
    # -- persistent faults: retried until spent (or not retried at all) --------------
    Case("500", "500", error=InternalServerError, status=500, message="Internal server error"),
    Case("502-html", "502", error=InternalServerError, status=502, message="502 Bad Gateway"),
    Case("503-html", "503", error=InternalServerError, status=503, message="503 Service"),
    Case("429-seconds", "429", error=RateLimitError, status=429, retry_after=0.0),
    Case("429-date", "429-date", error=RateLimitError, status=429, retry_after=0.0),
    Case("429-no-header", "429-no-header", error=RateLimitError, status=429),
    Case(
        "429-over-the-limit",
        "429",
        error=RateLimitError,
        status=429,
        retry_after=3.0,
        attempts=1,
        retry_after_setting=3,
    ),
    Case("drop", "drop", error=APIConnectionError, has_request_id=False),
    Case("drop-mid-body", "drop-mid-body", error=APIConnectionError, has_request_id=False),
    Case("truncated", "truncated", error=APIResponseValidationError, attempts=1),
    Case("non-json", "non-json", error=APIResponseValidationError, attempts=1),
    Case("wrong-shape", "wrong-shape", error=APIResponseValidationError, attempts=1),
    Case(
        "latency-past-timeout",
        "latency",
        error=APITimeoutError,
        has_request_id=False,
        latency=TIMEOUT + 0.2,
    ),
    Case("hang", "hang", error=APITimeoutError, has_request_id=False),
    Case(
        "no-retries",
        "500",
        error=InternalServerError,
        status=500,
        attempts=1,
        options={"max_retries": 0},
    ),
    Case("bad-fault-header-400", "not-a-fault", error=BadRequestError, status=400, attempts=1),
    Case(
        "wrong-key-401",
        None,
        error=AuthenticationError,
        status=401,
        attempts=1,
        message="Invalid API key",
        options={"api_key": "not-the-key"},
    ),
    # -- transient faults: one bad answer, then the page ----------------------------
    Case("500-once", "500", transient=True, attempts=2),
    Case("502-once", "502", transient=True, attempts=2),
    Case("503-once", "503", transient=True, attempts=2),
    Case("429-no-header-once", "429-no-header", transient=True, attempts=2),
    Case("drop-once", "drop", transient=True, attempts=2),
    Case("drop-mid-body-once", "drop-mid-body", transient=True, attempts=2),
    Case("hang-once", "hang", transient=True, attempts=2),
    Case("latency-once", "latency", transient=True, attempts=2, latency=TIMEOUT + 0.2),
    Case(
        "429-seconds-once-waits",
        "429",
        transient=True,
        attempts=2,
        retry_after_setting=1,
        sleeps_at_least=0.9,
        sleeps_at_most=1.0,
    ),
]


def _arm(server: EmulatorServer, case: Case) -> dict[str, Any]:
    """Set the emulator up for `case`; return the client options."""
    emulator = server.emulator
    emulator.set_faults(
        Faults(
            retry_after=case.retry_after_setting,
            latency=case.latency if case.latency is not None else 0.0,
        )
    )
    options: dict[str, Any] = {
        "api_key": server.api_key,
        "base_url": server.url,
        "timeout": TIMEOUT,
        "retry": POLICY,
    }
    if case.fault is not None:
        if case.transient:
            emulator.force_fault(case.fault, 1)
        else:
            options["default_headers"] = {FAULT_HEADER: case.fault}
    options.update(case.options)
    return options


def _attempts_seen(server: EmulatorServer) -> int:
    """The searches the emulator saw, once those still in flight (a slow "latency") end."""
    emulator = server.emulator
    assert wait_until(lambda: emulator.in_flight == 0, timeout=5.0), "a request never ended"
    return len(emulator.requests)


def _check(server: EmulatorServer, case: Case, outcome: object, elapsed: float) -> None:
    # Records are logged as requests end; a slow one ends after the retry that replaced it.
    records = sorted(server.emulator.requests, key=lambda record: record.time)
    assert len(records) == case.attempts, [r.faults for r in records]
    if case.error is None:
        assert isinstance(outcome, SearchResponse), outcome
        assert outcome.tracks, "a clean answer to this query has tracks"
        assert outcome.request_id == records[-1].request_id
        assert records[-1].status == 200
    else:
        assert type(outcome) is case.error, repr(outcome)
        assert isinstance(outcome, case.error)
        if case.message is not None:
            assert case.message in str(outcome)
        if isinstance(outcome, APIStatusError):
            assert outcome.status_code == case.status
            assert outcome.response is not None
        if isinstance(outcome, RateLimitError):
            if case.retry_after is None:
                assert outcome.retry_after is None
            else:
                assert outcome.retry_after == pytest.approx(case.retry_after, abs=1.0)
        if case.has_request_id:
            assert isinstance(outcome, (APIStatusError, APIResponseValidationError))
            assert outcome.request_id == records[-1].request_id
    assert elapsed >= case.sleeps_at_least
    assert elapsed <= case.time_budget(), f"took {elapsed:.2f} s > {case.time_budget():.2f} s"


async def _call_async(options: dict[str, Any]) -> tuple[object, float]:
    start = time.monotonic()
    try:
        async with AsyncClient(**options) as client:
            outcome: object = await client.search(QUERY, limit=5)
    except Exception as error:
        outcome = error
    return outcome, time.monotonic() - start


def _call_sync(options: dict[str, Any]) -> tuple[object, float]:
    start = time.monotonic()
    try:
        with Client(**options) as client:
            outcome: object = client.search(QUERY, limit=5)
    except Exception as error:
        outcome = error
    return outcome, time.monotonic() - start


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
async def test_fault_async(audioscape_emulator: EmulatorServer, way: str, case: Case) -> None:
    """AsyncClient ends each fault in its exact error or page, after the exact attempts, in time."""
    options = _arm(audioscape_emulator, case) | {"transport": WAYS[way][1]}
    outcome, elapsed = await _call_async(options)
    await anyio.to_thread.run_sync(_attempts_seen, audioscape_emulator)
    _check(audioscape_emulator, case, outcome, elapsed)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_fault_sync(audioscape_emulator: EmulatorServer, case: Case) -> None:
    """The sync Client ends each fault exactly as AsyncClient does, after the same attempts."""
    outcome, elapsed = _call_sync(_arm(audioscape_emulator, case))
    _attempts_seen(audioscape_emulator)
    _check(audioscape_emulator, case, outcome, elapsed)


@pytest.mark.anyio
async def test_wrong_base_path_is_not_found(audioscape_emulator: EmulatorServer, way: str) -> None:
    """A base URL with the wrong path ends in NotFoundError 404, once, with its request id."""
    options = _arm(audioscape_emulator, Case("404", None))
    options["base_url"] = audioscape_emulator.root_url + "/developer/v2"
    outcome, _ = await _call_async(options | {"transport": WAYS[way][1]})
    assert type(outcome) is NotFoundError
    assert outcome.status_code == 404
    assert outcome.request_id is not None
    assert outcome.request_id.startswith("req_")
    assert f"ends in /developer/v1, as {DEFAULT_BASE_URL}" in str(outcome)
    assert audioscape_emulator.emulator.requests == []  # it never reached the search endpoint


# -- faults only a raw server can make -----------------------------------------------


@attrs.frozen
class RawCase:
    """A raw server's behaviour and what a call against it must end in."""

    id: str
    handler: servers.Handler
    error: type[Exception]
    attempts: int = MAX_RETRIES + 1


RAW_CASES = [
    # Accepts the connection, reads the request, never answers.
    RawCase("accepts-never-answers", servers.silent, APITimeoutError),
    # Answers a byte every 50 ms: no single read times out, only the whole attempt can.
    RawCase("trickles-forever", servers.trickle, APITimeoutError),
    # Resets the connection after reading the request.
    RawCase("resets", servers.reset, APIConnectionError),
    # A 200 whose body ends before its Content-Length.
    RawCase(
        "body-closed-midway",
        lambda conn, _request, _stop: conn.sendall(
            servers.response_bytes(200, servers.PAGE[:40], content_length=len(servers.PAGE))
        ),
        APIConnectionError,
    ),
]


@pytest.fixture(params=RAW_CASES, ids=lambda case: case.id)
def raw(request: pytest.FixtureRequest) -> Iterator[tuple[RawCase, servers.RawServer]]:
    """A raw server running one `RawCase`'s handler."""
    case: RawCase = request.param
    with servers.RawServer(case.handler) as server:
        yield case, server


def _raw_options(server: servers.RawServer) -> dict[str, Any]:
    return {"api_key": "raw-key", "base_url": server.url(), "timeout": TIMEOUT, "retry": POLICY}


def _check_raw(case: RawCase, server: servers.RawServer, outcome: object, elapsed: float) -> None:
    assert type(outcome) is case.error, repr(outcome)
    assert wait_until(lambda: len(server.requests) >= case.attempts, timeout=2.0)
    assert len(server.requests) == case.attempts
    budget = TIMEOUT * case.attempts + BACKOFF_BUDGET + SLACK
    assert elapsed <= budget, f"took {elapsed:.2f} s > {budget:.2f} s"


@pytest.mark.anyio
async def test_raw_fault_async(raw: tuple[RawCase, servers.RawServer], way: str) -> None:
    """AsyncClient against a raw server fault: the exact error, the exact attempts, in time."""
    case, server = raw
    outcome, elapsed = await _call_async(_raw_options(server) | {"transport": WAYS[way][1]})
    _check_raw(case, server, outcome, elapsed)


def test_raw_fault_sync(raw: tuple[RawCase, servers.RawServer]) -> None:
    """The sync Client against a raw server fault: the same error, attempts and time bound."""
    case, server = raw
    outcome, elapsed = _call_sync(_raw_options(server))
    _check_raw(case, server, outcome, elapsed)


@pytest.mark.anyio
async def test_connection_refused(way: str) -> None:
    """Nobody listening: APIConnectionError (not a timeout) after the retries, quickly."""
    with servers.RawServer(servers.silent) as server:
        port = server.port
    options = _raw_options(server) | {"base_url": f"http://127.0.0.1:{port}/developer/v1"}
    outcome, elapsed = await _call_async(options | {"transport": WAYS[way][1]})
    assert type(outcome) is APIConnectionError, repr(outcome)
    assert elapsed <= BACKOFF_BUDGET + SLACK

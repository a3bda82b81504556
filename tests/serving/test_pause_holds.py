"""A 429's pause holds the whole client even when the call that saw it cannot wait.

Issue 17, point 5: the pause is set first, once, where the attempt meets the
429 (or 503) with a Retry-After, before the call decides whether it retries,
gives up or fails on its deadline; capped by `RetryPolicy.max_retry_after`.
The emulator counts what reached it; `sleeps` records the SDK's waits.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import anyio
import orjson
import pytest

from audioscape_async import (
    AsyncClient,
    Client,
    DeadlineExceededError,
    RateLimitError,
    RetryPolicy,
)
from audioscape_async.emulator import EmulatorServer, Faults
from tests.helpers import page_json
from tests.reliability.servers import Handler, RawRequest, RawServer, read_request, response_bytes

QUERY = "storm over the harbour"
#: What the emulator's forced 429 and 503 say in Retry-After.
RETRY_AFTER = 2
FAULT = {"x-emulator-fault": "429"}
#: A first call that sets up a client's wire (the import of its library), so that the
#: short deadlines below are spent on the exchange with the server, not on the set-up.
WARM_UP = "warm-up"


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    """An emulator whose 429s say `Retry-After: 2`."""
    with EmulatorServer(tracks=300, faults=Faults(retry_after=RETRY_AFTER)) as running:
        yield running


def statuses(server: EmulatorServer) -> list[int | None]:
    """The statuses of the requests that reached the server, warm-up calls aside."""
    return [record.status for record in server.emulator.requests if record.query != WARM_UP]


def client_for(server: EmulatorServer, transport: str, **options: object) -> AsyncClient:
    return AsyncClient(
        server.api_key,
        base_url=server.url,
        transport=transport,  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.anyio
async def test_a_429_the_call_cannot_wait_for_still_pauses_the_client(
    server: EmulatorServer, sdk_transport: str, sleeps: list[float]
) -> None:
    """deadline=0.2 meets Retry-After: 2; the next calls wait or fail, none reaches the server."""
    async with client_for(server, sdk_transport) as client:
        await client.search(WARM_UP, limit=1)
        with pytest.raises(DeadlineExceededError, match="429"):
            await client.search(QUERY, limit=1, deadline=0.2, extra_headers=FAULT)
        assert sleeps == []  # it did not wait: it could not
        with pytest.raises(DeadlineExceededError, match="pause after a 429"):
            await client.search(QUERY, limit=1, deadline=1)  # cannot wait 2 s either
        assert statuses(server) == [429]
        page = await client.search(QUERY, limit=1)  # waits the pause out, then goes
    assert page.status_code == 200
    assert len(sleeps) == 1
    assert 1.5 < sleeps[0] <= RETRY_AFTER
    assert statuses(server) == [429, 200]


@pytest.mark.anyio
async def test_the_pause_holds_in_real_time(server: EmulatorServer) -> None:
    """With real clocks: the next call reaches the server only once the 2 s are over."""
    async with client_for(server, "httpx") as client:
        await client.search(WARM_UP, limit=1)
        with pytest.raises(DeadlineExceededError):
            await client.search(QUERY, limit=1, deadline=0.2, extra_headers=FAULT)
        await client.search(QUERY, limit=1)
    first, second = (record for record in server.emulator.requests if record.query != WARM_UP)
    assert (first.status, second.status) == (429, 200)
    assert second.time - first.time >= RETRY_AFTER - 0.1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("policy", "paused"),
    [(RetryPolicy(max_retries=0), RETRY_AFTER), (RetryPolicy(max_retry_after=1), 1)],
    ids=["retries-spent", "past-max-retry-after"],
)
async def test_a_pause_the_call_does_not_wait_holds_the_next_call(
    server: EmulatorServer,
    sdk_transport: str,
    sleeps: list[float],
    policy: RetryPolicy,
    paused: float,
) -> None:
    """No retry left, or a Retry-After past the cap: the pause still holds (for the cap at most)."""
    async with client_for(server, sdk_transport, retry=policy) as client:
        with pytest.raises(RateLimitError):
            await client.search(QUERY, limit=1, extra_headers=FAULT)
        assert sleeps == []
        await client.search(QUERY, limit=1)
    assert len(sleeps) == 1
    assert paused - 0.5 < sleeps[0] <= paused
    assert statuses(server) == [429, 200]


def unavailable_once(answers: list[int]) -> Handler:
    """A raw server's handler: the first request gets a 503 with Retry-After: 2, the rest a page."""
    lock = threading.Lock()

    def handle(conn: socket.socket, request: RawRequest | None, stop: threading.Event) -> None:
        while request is not None and not stop.is_set():
            with lock:
                status = 503 if not answers else 200
                answers.append(status)
            if status == 503:
                body = orjson.dumps({"error": "down for maintenance"})
                conn.sendall(response_bytes(503, body, headers={"retry-after": str(RETRY_AFTER)}))
            else:
                conn.sendall(response_bytes(200, orjson.dumps(page_json())))
            request = read_request(conn)

    return handle


@pytest.mark.anyio
async def test_a_503s_pause_holds_too(sdk_transport: str, sleeps: list[float]) -> None:
    """A 503 with Retry-After that the call cannot wait for pauses the next call as a 429 does."""
    answers: list[int] = []
    with RawServer(unavailable_once(answers), lifetime=10) as server:
        async with AsyncClient(
            "sk-raw-0123456789",
            base_url=server.url(),
            transport=sdk_transport,  # type: ignore[arg-type]
        ) as client:
            with pytest.raises(DeadlineExceededError, match="503"):
                await client.search(QUERY, limit=1, deadline=0.5)
            with pytest.raises(DeadlineExceededError, match="pause"):
                await client.search(QUERY, limit=1, deadline=1)
            assert answers == [503]
            await client.search(QUERY, limit=1)
    assert answers == [503, 200]
    assert len(sleeps) == 1
    assert 1.5 < sleeps[0] <= RETRY_AFTER


def test_the_sync_client_pauses_too(server: EmulatorServer, sleeps: list[float]) -> None:
    """The sync `Client`: a 429 its call cannot wait for holds the next calls."""
    with Client(server.api_key, base_url=server.url) as client:
        client.search(WARM_UP, limit=1)
        with pytest.raises(DeadlineExceededError):
            client.search(QUERY, limit=1, deadline=0.2, extra_headers=FAULT)
        with pytest.raises(DeadlineExceededError):
            client.search(QUERY, limit=1, deadline=1)
        assert statuses(server) == [429]
        client.search(QUERY, limit=1)
    assert len(sleeps) == 1
    assert 1.5 < sleeps[0] <= RETRY_AFTER
    assert statuses(server) == [429, 200]


@pytest.mark.anyio
async def test_concurrent_tasks_wait_out_one_pause(
    server: EmulatorServer, sdk_transport: str
) -> None:
    """Tasks already waiting when the hasty call meets the 429 do not reach the server early."""
    async with client_for(server, sdk_transport) as client:
        await client.search(WARM_UP, limit=1)
        with pytest.raises(DeadlineExceededError):
            await client.search(QUERY, limit=1, deadline=0.2, extra_headers=FAULT)
        began = time.monotonic()

        async def search(n: int) -> None:
            await client.search(f"{QUERY} {n}", limit=1)

        async with anyio.create_task_group() as group:
            for n in range(3):
                group.start_soon(search, n)
        took = time.monotonic() - began
    assert took >= RETRY_AFTER - 0.3
    assert sorted(status or 0 for status in statuses(server)) == [200, 200, 200, 429]

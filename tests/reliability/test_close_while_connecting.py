"""Closing a client while its requests are still connecting fails each one and leaves no socket."""

from __future__ import annotations

import socket
import threading
import time

import anyio
import pytest

from audioscape_async import AsyncClient, AudioScapeError
from tests.reliability import servers
from tests.reliability.resources import pool_state, sockets_to


def _slow(conn: socket.socket, request: servers.RawRequest | None, stop: threading.Event) -> None:
    """Answer each request after 50 ms, keeping the connection."""
    while request is not None and not stop.is_set():
        time.sleep(0.05)
        conn.sendall(servers.response_bytes(200, servers.PAGE))
        request = servers.read_request(conn)


@pytest.mark.anyio
async def test_close_while_connecting_leaks_no_socket() -> None:
    """aclose() while httpx's pool still opens connections: every call fails, no socket stays."""
    with servers.RawServer(_slow) as server:
        client = AsyncClient(
            api_key="sk-close-while-connecting", base_url=server.url(), timeout=5, max_retries=0,
            transport="httpx",
        )  # fmt: skip
        outcomes: list[object] = []

        async def one() -> None:
            try:
                outcomes.append(await client.search("q"))
            except AudioScapeError as error:
                outcomes.append(error)

        async with anyio.create_task_group() as tasks:
            for _ in range(10):
                tasks.start_soon(one)
            for _ in range(2000):  # until the pool holds connections (still opening)
                if pool_state(client).open:
                    break
                await anyio.sleep(0.001)
            await client.aclose()
        assert len(outcomes) == 10
        assert all(isinstance(outcome, AudioScapeError) for outcome in outcomes), outcomes
        for _ in range(50):
            if sockets_to(server.port) == 0:
                break
            await anyio.sleep(0.01)
        assert sockets_to(server.port) == 0

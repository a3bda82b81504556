"""Fixtures of a real Redis server (registered by `tests/conftest.py` via `pytest_plugins`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.serving.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_session_server() -> Iterator[RedisServer]:
    """One `redis-server` for the whole session, on a free loopback port."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_server(redis_session_server: RedisServer) -> RedisServer:
    """The session's Redis server, emptied for this test."""
    redis_session_server.flush()
    return redis_session_server


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A Redis server of this test's own, which the test may kill."""
    with RedisServer() as server:
        yield server

"""Safe to leave running: bounded bodies, bounded log, idle connections closed, a truthful log."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from audioscape_async.emulator import EmulatorServer, Faults, create_app
from audioscape_async.emulator._emulator import Emulator
from tests.emulator.support import search

#: Short limits, so the timeouts are seen in a fraction of a second.
BODY_TIMEOUT = 0.3
IDLE_TIMEOUT = 0.3


@pytest.fixture(scope="module")
def strict() -> Iterator[EmulatorServer]:
    """A server with short body and idle timeouts."""
    app = create_app(tracks=50, body_timeout=BODY_TIMEOUT)
    with EmulatorServer(app, idle_timeout=IDLE_TIMEOUT) as server:
        yield server


def _connect(server: EmulatorServer) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=5.0)


def _head(server: EmulatorServer, extra: str) -> bytes:
    return (
        f"POST /developer/v1/search HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
        f"x-api-key: {server.api_key}\r\ncontent-type: application/json\r\n{extra}\r\n"
    ).encode()


def _read_until_closed(sock: socket.socket, limit: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection (or `limit` seconds)."""
    sock.settimeout(limit)
    chunks = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection within `seconds`."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_a_slow_body_is_a_408_and_the_connection_closes(strict: EmulatorServer) -> None:
    """A body that does not arrive within the body timeout gets 408, then the socket closes."""
    with _connect(strict) as sock:
        sock.sendall(_head(strict, "content-length: 100\r\n") + b'{"query": ')
        started = time.monotonic()
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"not received within" in answer
    assert b"connection: close" in answer.lower()
    assert time.monotonic() - started < BODY_TIMEOUT + 2


def test_an_endless_chunked_body_is_cut_off(strict: EmulatorServer) -> None:
    """An endless chunked body is not read for ever: the server answers 413 and closes."""
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    sent = 0
    with _connect(strict) as sock:
        sock.sendall(_head(strict, "transfer-encoding: chunked\r\n"))
        try:
            while sent < 64 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        else:
            pytest.fail("the server read 64 MB of an endless body")
        answer = _read_until_closed(sock)
    assert sent < 16 * 1024 * 1024
    assert answer == b"" or answer.startswith(b"HTTP/1.1 413 ")


def test_an_endless_body_to_a_wrong_path_is_not_read_for_ever(strict: EmulatorServer) -> None:
    """A 404 does not read its body, so it closes the connection instead of draining it."""
    head = (
        f"POST /nope HTTP/1.1\r\nHost: {strict.host}:{strict.port}\r\n"
        "transfer-encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    sent = 0
    with _connect(strict) as sock:
        sock.sendall(head)
        try:
            while sent < 64 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        else:
            pytest.fail("the server read 64 MB of a body to a path that does not exist")
    assert sent < 16 * 1024 * 1024


def test_an_oversized_body_is_a_413_that_closes_the_connection(strict: EmulatorServer) -> None:
    """A body over the limit is refused with 413 and Connection: close (nothing more is read)."""
    with httpx.Client(base_url=strict.url, headers={"x-api-key": strict.api_key}) as client:
        response = search(client, {"query": "x" * 100_000})
    assert response.status_code == 413
    assert response.headers["connection"] == "close"


def test_a_connection_that_sends_nothing_is_closed(strict: EmulatorServer) -> None:
    """A connection that never sends a request is closed after the idle timeout."""
    with _connect(strict) as sock:
        assert _closed_within(sock, IDLE_TIMEOUT + 2)


def test_a_half_sent_request_head_is_closed_even_if_it_trickles(strict: EmulatorServer) -> None:
    """A head sent a byte at a time never completes: the connection still closes in time."""
    head = _head(strict, "")
    with _connect(strict) as sock:
        started = time.monotonic()
        closed = False
        for byte in head[:40]:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.05)
        closed = closed or _closed_within(sock, IDLE_TIMEOUT + 2)
    assert closed
    assert time.monotonic() - started < IDLE_TIMEOUT + 4


def test_an_idle_keep_alive_connection_is_closed(strict: EmulatorServer) -> None:
    """After an answer, a keep-alive connection with no next request is closed in time."""
    body = b'{"query": "jazz"}'
    with _connect(strict) as sock:
        sock.sendall(_head(strict, f"content-length: {len(body)}\r\n") + body)
        sock.settimeout(5.0)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        assert _closed_within(sock, IDLE_TIMEOUT + 2)


def test_a_slow_answer_is_not_cut_by_the_idle_timeout(strict: EmulatorServer) -> None:
    """The idle timeout is for idle connections: a request being served may take longer."""
    strict.emulator.set_faults(Faults(latency=IDLE_TIMEOUT * 3))
    try:
        with httpx.Client(base_url=strict.url, headers={"x-api-key": strict.api_key}) as client:
            response = search(client, x_emulator_fault="latency")
    finally:
        strict.emulator.reset()
    assert response.status_code == 200


def test_the_request_log_is_bounded_in_bytes() -> None:
    """Big queries evict old records once the log holds its byte budget; counters count all."""
    app = create_app(tracks=50, log_max_bytes=200_000)
    emulator: Emulator = app.state.emulator
    with (
        EmulatorServer(app) as server,
        httpx.Client(base_url=server.url, headers={"x-api-key": server.api_key}) as client,
    ):
        for number in range(20):
            search(client, {"query": f"{number} " + "q" * 30_000})
    kept = emulator.requests
    assert emulator.summary()["count"] == 20
    assert 3 <= len(kept) <= 7
    assert sum(len(record.query or "") for record in kept) <= 200_000
    assert (kept[-1].query or "").startswith("19 ")


def test_the_request_log_is_bounded_in_records() -> None:
    """The log keeps at most log_limit records, the newest."""
    app = create_app(tracks=50, log_limit=3)
    emulator: Emulator = app.state.emulator
    with (
        EmulatorServer(app) as server,
        httpx.Client(base_url=server.url, headers={"x-api-key": server.api_key}) as client,
    ):
        for number in range(5):
            search(client, {"query": f"song {number}"})
    assert [record.query for record in emulator.requests] == ["song 2", "song 3", "song 4"]


def test_a_client_that_left_is_logged_as_such(strict: EmulatorServer) -> None:
    """A client that gives up during a "latency" fault is logged as gone, not as a 200."""
    strict.emulator.set_faults(Faults(latency=2.0))
    started = time.monotonic()
    try:
        with (
            httpx.Client(
                base_url=strict.url, headers={"x-api-key": strict.api_key}, timeout=0.1
            ) as client,
            pytest.raises(httpx.ReadTimeout),
        ):
            search(client, x_emulator_fault="latency")
        deadline = time.monotonic() + 3
        while not strict.emulator.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        noticed = time.monotonic() - started
        (record,) = strict.emulator.requests
        summary = strict.emulator.summary()
    finally:
        strict.emulator.reset()
    assert record.status is None
    assert record.client_disconnected is True
    assert summary["by_status"] == {"client_disconnected": 1}
    # Noticed when the client left, not only once the 2 s of latency were over.
    assert noticed < 1.5


def test_a_delivered_answer_is_not_marked_disconnected(
    live: EmulatorServer, http: httpx.Client
) -> None:
    """An answer the client read is logged with its status and client_disconnected False."""
    assert search(http).status_code == 200
    (record,) = live.emulator.requests
    assert (record.status, record.client_disconnected) == (200, False)


def test_the_default_bind_is_loopback_only() -> None:
    """Without a host, the server listens on 127.0.0.1 and nowhere else."""
    with EmulatorServer(tracks=10) as server:
        assert server.host == "127.0.0.1"
        assert server.url.startswith("http://127.0.0.1:")

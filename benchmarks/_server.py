"""A tiny fixed-answer AudioScape server for the benchmarks, run in a process of its own.

A raw asyncio HTTP/1.1 keep-alive server (no framework, no routing, no
validation): every POST gets a documented search answer for the body's
``offset`` and ``limit`` over a synthetic result set of ``--total`` tracks,
so a benchmark measures the client, not the server. The answer for offset 0,
limit 100 (what the per-call benchmarks ask for) is built once; other pages
are joined from pre-encoded pieces in a few microseconds, each track with its
own asset id, so crawls page and de-duplicate as they would against the API.

    python -m benchmarks._server --total 1000000     # prints "url: http://127.0.0.1:PORT/..."
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

BASE_PATH = "/developer/v1"
URL_PREFIX = "url: "
API_KEY = "bench-key"
PAGE_SIZE = 100
ID_BASE = 1_818_000_000
#: Every field but the asset id repeats with this period.
_CYCLE = 997
_GENRES = ("electronic", "ambient", "rock", "hip-hop", "orchestral", "pop", "jazz", "lo-fi")


def track(index: int) -> dict[str, Any]:
    """The synthetic track at position `index` of the result set."""
    return {
        "asset_id": str(ID_BASE + index),
        "name": f"Synthetic Track {index % _CYCLE}",
        "artist": f"Artist {index % _CYCLE}",
        "album": f"Album {index % _CYCLE}",
        "duration": 60.0 + (index * 7) % 240 + 0.5,
        "genre": _GENRES[index % len(_GENRES)],
        "bpm": float(70 + index % 110),
        "score": round(1.0 - (index % _CYCLE) / 1000, 6),
    }


def page(offset: int, limit: int, total: int) -> dict[str, Any]:
    """The documented answer for one page, as Python data."""
    end = max(offset, min(total, offset + limit))
    return {
        "tracks": [track(i) for i in range(offset, end)],
        "artists": [{"name": f"Artist {i}", "track_count": 1000 + i} for i in range(10)],
        "albums": [
            {"name": f"Album {i}", "artist": f"Artist {i}", "track_count": 200 + i}
            for i in range(10)
        ],
        "meta": {
            "total": total,
            "limit": limit,
            "offset": offset,
            "search_method": "semantic",
            "matched_artist": None,
        },
    }


class _Pages:
    """Encodes pages fast: a track is its id spliced between two pre-encoded halves."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._tail = orjson.dumps(page(0, 0, total))  # {"tracks":[],"artists":...}
        self._tail = self._tail[self._tail.index(b"]") :]
        self._halves: list[tuple[bytes, bytes]] = []
        marker = b'"asset_id":"'
        for i in range(_CYCLE):
            encoded = orjson.dumps(track(i))
            start = encoded.index(marker) + len(marker)
            end = encoded.index(b'"', start)
            self._halves.append((encoded[:start], encoded[end:]))
        self._fixed = b""
        self._fixed = self._build(0, PAGE_SIZE)

    def _build(self, offset: int, limit: int) -> bytes:
        end = max(offset, min(self.total, offset + limit))
        if offset == 0 and limit == PAGE_SIZE and self._fixed:
            return self._fixed
        halves = self._halves
        parts = []
        for i in range(offset, end):
            head, rest = halves[i % _CYCLE]
            parts.append(head + str(ID_BASE + i).encode() + rest)
        meta = orjson.dumps(
            {
                "total": self.total,
                "limit": limit,
                "offset": offset,
                "search_method": "semantic",
                "matched_artist": None,
            }
        )
        tail = self._tail[: self._tail.index(b'"meta":') + 7] + meta + b"}"
        return b'{"tracks":[' + b",".join(parts) + tail

    def answer(self, body: bytes) -> bytes:
        try:
            request = orjson.loads(body)
            offset, limit = int(request.get("offset", 0)), int(request.get("limit", 20))
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            offset, limit = 0, PAGE_SIZE
        content = self._build(offset, limit)
        return (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: bench\r\n"
            b"content-length: " + str(len(content)).encode() + b"\r\n\r\n" + content
        )


class _Protocol(asyncio.Protocol):
    def __init__(self, pages: _Pages, latency: float) -> None:
        self._pages = pages
        self._latency = latency
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        out = []
        while True:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end < 0:
                break
            length = 0
            lowered = buffer[:head_end].lower()
            at = lowered.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = lowered.find(b"\r\n", at + 2)
                length = int(lowered[at + 17 : stop if stop >= 0 else head_end])
            end = head_end + 4 + length
            if len(buffer) < end:
                break
            out.append(self._pages.answer(buffer[head_end + 4 : end]))
            buffer = buffer[end:]
        self._buffer = buffer
        if out and self._transport is not None:
            if self._latency:  # a server that far away: the answer leaves that much later
                loop = asyncio.get_running_loop()
                loop.call_later(self._latency, self._transport.write, b"".join(out))
            else:
                self._transport.write(b"".join(out))


async def _serve(total: int, port: int, latency: float) -> None:
    loop = asyncio.get_running_loop()
    pages = _Pages(total)
    server = await loop.create_server(
        lambda: _Protocol(pages, latency), "127.0.0.1", port, backlog=2048, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"{URL_PREFIX}http://127.0.0.1:{bound}{BASE_PATH}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=10_000)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    asyncio.run(_serve(args.total, args.port, args.latency))


class ServerProcess:
    """Runs this server in a child process; `url` once it listens; `latency` s per answer."""

    def __init__(self, total: int = 10_000, latency: float = 0.0) -> None:
        self.total = total
        self.latency = latency
        self.url = ""
        self.api_key = API_KEY
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServerProcess:
        root = str(Path(__file__).resolve().parents[1])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
        }
        command = [sys.executable, "-m", "benchmarks._server", "--total", str(self.total)]
        self._process = subprocess.Popen(
            [*command, "--latency", str(self.latency)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith(URL_PREFIX):
            self.__exit__(None, None, None)
            raise RuntimeError(f"the benchmark server did not start: {line!r}")
        self.url = line[len(URL_PREFIX) :].strip()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


if __name__ == "__main__":
    main()

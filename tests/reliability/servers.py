"""Tiny raw HTTP servers for the faults the emulator cannot make.

Each `RawServer` listens on 127.0.0.1 only, serves every connection in a
daemon thread with a handler (a function of the connection and the request
it read), records what it received, and stops itself: on `close()`, on
leaving its ``with`` block, or at the latest after `lifetime` seconds. No
handler blocks longer than the server lives.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from types import TracebackType

import attrs
import orjson

#: A documented search answer with one track, as bytes.
PAGE = orjson.dumps(
    {
        "tracks": [
            {
                "asset_id": "1837070127",
                "name": "Raw Track",
                "artist": "Raw Artist",
                "album": "Raw Album",
                "duration": 90.0,
                "genre": "electronic",
                "bpm": 120,
                "score": 0.5,
            }
        ],
        "artists": [{"name": "Raw Artist", "track_count": 1}],
        "albums": [{"name": "Raw Album", "artist": "Raw Artist", "track_count": 1}],
        "meta": {
            "total": 1,
            "limit": 20,
            "offset": 0,
            "search_method": "semantic",
            "matched_artist": None,
        },
    }
)


@attrs.define
class RawRequest:
    """One HTTP request as a raw server read it."""

    head: bytes
    body: bytes

    @property
    def headers(self) -> dict[str, str]:
        """The request's headers, names lower-cased."""
        lines = self.head.decode("latin-1").split("\r\n")[1:]
        pairs = [line.split(":", 1) for line in lines if ":" in line]
        return {name.strip().lower(): value.strip() for name, value in pairs}


#: What a raw server does with one connection, once it has read the request
#: (None if the client sent nothing); `stopping` is set when the server stops.
Handler = Callable[[socket.socket, "RawRequest | None", threading.Event], None]


def read_request(conn: socket.socket) -> RawRequest | None:
    """Read one request (head and Content-Length body); None if the peer sent nothing."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = conn.recv(65536)
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    request = RawRequest(head, body)
    length = int(request.headers.get("content-length", "0") or 0)
    while len(request.body) < length:
        try:
            chunk = conn.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        request.body += chunk
    return request


def response_bytes(
    status: int,
    body: bytes = b"",
    *,
    headers: dict[str, str] | None = None,
    content_length: int | None = None,
) -> bytes:
    """A whole HTTP/1.1 answer (Content-Length is the body's unless given)."""
    lines = [f"HTTP/1.1 {status} Status"]
    merged = {"content-type": "application/json", "x-request-id": "req_raw"} | (headers or {})
    merged["content-length"] = str(len(body) if content_length is None else content_length)
    lines += [f"{name}: {value}" for name, value in merged.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class RawServer:
    """A loopback TCP server that runs `handler` on every connection; see the module doc."""

    def __init__(
        self,
        handler: Handler,
        *,
        tls: ssl.SSLContext | None = None,
        lifetime: float = 30.0,
        read: bool = True,
    ) -> None:
        self._handler = handler
        self._tls = tls
        self._read = read  # False: the handler gets the connection before any request is read
        self._lifetime = lifetime
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self._sock.settimeout(0.02)
        self.port: int = self._sock.getsockname()[1]
        #: How many connections were accepted.
        self.connections = 0
        #: Every request read, in order.
        self.requests: list[RawRequest] = []
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._serve, name=f"raw-server:{self.port}")
        self._thread.daemon = True
        self._thread.start()

    def url(self, host: str = "127.0.0.1", scheme: str = "http") -> str:
        """A base URL for the SDK that points here."""
        return f"{scheme}://{host}:{self.port}/developer/v1"

    def _serve(self) -> None:
        deadline = time.monotonic() + self._lifetime
        try:
            while not self._stopping.is_set() and time.monotonic() < deadline:
                try:
                    conn, _ = self._sock.accept()
                except (TimeoutError, OSError):
                    continue
                with self._lock:
                    self.connections += 1
                thread = threading.Thread(target=self._one, args=(conn,), daemon=True)
                self._threads.append(thread)
                thread.start()
        finally:
            self._stopping.set()
            self._sock.close()

    def _one(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(self._lifetime)
            if self._tls is not None:
                try:
                    conn = self._tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # the client refused our certificate: the point of some tests
            request = read_request(conn) if self._read else None
            if request is not None:
                with self._lock:
                    self.requests.append(request)
            self._handler(conn, request, self._stopping)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        """Stop accepting, end every handler, and wait for the threads."""
        self._stopping.set()
        self._thread.join(5)
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> RawServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# ----------------------------------------------------------------------------- handlers


def answer(status: int = 200, body: bytes = PAGE, **headers: str) -> Handler:
    """Answer every request with this status, body and headers, keeping the connection."""

    def handle(conn: socket.socket, request: RawRequest | None, stopping: threading.Event) -> None:
        while request is not None and not stopping.is_set():
            conn.sendall(response_bytes(status, body, headers=headers))
            request = read_request(conn)

    return handle


def silent(conn: socket.socket, request: RawRequest | None, stopping: threading.Event) -> None:
    """Accept, read the request, never answer; wait until the client leaves or the server stops."""
    conn.settimeout(0.05)
    while not stopping.is_set():
        try:
            if conn.recv(1) == b"":
                return
        except TimeoutError:
            continue
        except OSError:
            return


def trickle(conn: socket.socket, request: RawRequest | None, stopping: threading.Event) -> None:
    """Send the head, then one byte of a long body every 50 ms: no read ever times out."""
    if request is None:
        return
    conn.sendall(response_bytes(200, b"", content_length=1_000_000))
    while not stopping.wait(0.05):
        try:
            conn.sendall(b" ")
        except OSError:
            return


def reset(conn: socket.socket, request: RawRequest | None, stopping: threading.Event) -> None:
    """Abort the connection with a TCP reset (RST) right after reading the request."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def not_tls(conn: socket.socket, request: RawRequest | None, stopping: threading.Event) -> None:
    """Whatever arrives (a TLS hello), answer 400 in plain HTTP, as a plain-HTTP server does.

    For a server made with ``read=False``: the hello holds no HTTP request to wait for.
    """
    conn.recv(4096)
    conn.sendall(response_bytes(400, b"Bad Request"))


def redirect(status: int, location: str) -> Handler:
    """Answer every request with a redirect to `location`."""
    return answer(status, b"", location=location)

"""The search endpoint, `POST /developer/v1/search`, faults and all.

It is a raw ASGI callable rather than a Starlette request/response function,
because faults need to control exactly which bytes go out, and when: half a
body then a closed socket, a content-length that matches a truncated body, no
answer at all.

Order of business, like a gateway in front of a service: the body is read,
bounded in size (413) and in time (408), and either refusal closes the
connection; faults are decided (the `x-emulator-fault` header, then faults
forced with `Emulator.force_fault`, then the seeded draw); "latency" waits,
watching for a client that leaves; an answer fault that stands for
infrastructure (5xx, 429 storms, garbage, drop, hang) answers at once; then
the API key (401), the rate limit (429), the content type and body (400), the
search; finally "truncated" or "drop-mid-body" damage the answer on its way
out. A client that has left before its answer goes out is logged as
`client_disconnected`, not as the status it never received.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anyio
import anyio.to_thread
import httpx
from starlette.types import Message, Receive, Scope, Send

from audioscape_async import _constants as c
from audioscape_async import _json

from . import _defaults as d
from ._body import read_bounded_body
from ._connection import CONNECTION_EXTENSION, ConnectionControl
from ._emulator import Emulator, RequestRecord
from ._faults import DAMAGING_FAULTS, HTML_BODIES, WRONG_SHAPE_BODY, answer_fault
from ._faults import parse_fault_list as _parse_fault_list
from ._ranking import Method
from ._validation import (
    RequestError,
    check_content_type,
    parse_body,
    parse_search,
    partial_paging,
)

logger = logging.getLogger("audioscape_async.emulator")

_JSON = c.JSON_CONTENT_TYPE.encode()
_HTML = b"text/html; charset=utf-8"


class SearchEndpoint:
    """`POST /developer/v1/search`, faults and all."""

    def __init__(self, emulator: Emulator, body_timeout: float) -> None:
        self.emulator = emulator
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        emulator = self.emulator
        headers = _headers(scope)
        forced: tuple[str, ...] | None = None
        forced_error: str | None = None
        if d.FAULT_HEADER in headers:
            try:
                forced = _parse_fault_list(headers[d.FAULT_HEADER])
            except ValueError as exc:
                forced, forced_error = (), str(exc)
        begun = emulator.begin(forced)
        request_id = begun.request_id
        api_key = headers.get(c.API_KEY_HEADER)
        record = _Record(
            begun.arrival,
            request_id,
            emulator.key_id(api_key) if api_key else None,
            begun.faults,
            _logged_headers(headers),
        )

        def log(status: int | None, disconnected: bool) -> None:
            emulator.record(record.finish(status, disconnected), begun.generation)

        exchange = _Exchange(
            send=send,
            receive=receive,
            request_id=request_id,
            control=scope.get("extensions", {}).get(CONNECTION_EXTENSION),
            on_answer=log,
        )
        try:
            body, refusal = await read_bounded_body(receive, d.MAX_BODY_BYTES, self.body_timeout)
            record.size = len(body)
            if refusal is not None:
                status, message = refusal
                await exchange.json(status, {"error": message}, [_CLOSE])
                return
            await self._serve(exchange, record, headers, body, forced_error)
        except _EmulatedNetworkError:
            raise
        except Exception:
            # The real API answers its documented 500 whatever went wrong inside.
            logger.exception("emulator failed on request %s", request_id)
            if not exchange.started:
                await exchange.json(500, {"error": d.ERROR_INTERNAL})
        finally:
            emulator.finish()

    async def _serve(
        self,
        exchange: _Exchange,
        record: _Record,
        headers: Mapping[str, str],
        body: bytes,
        forced_error: str | None,
    ) -> None:
        emulator = self.emulator
        faults = record.faults
        if forced_error is not None:
            await exchange.json(400, {"error": forced_error})
            return
        if "latency" in faults and await exchange.client_leaves_within(emulator.faults.latency):
            exchange.client_left()
            return
        fault = answer_fault(faults)
        if fault is not None and fault not in DAMAGING_FAULTS:
            await self._infrastructure_fault(exchange, fault)
            return

        if emulator.authorize(headers.get(c.API_KEY_HEADER)) is None:
            await exchange.json(401, {"error": d.ERROR_INVALID_KEY})
            return
        assert record.key_id is not None
        wait = emulator.take_token(record.key_id)
        if wait is not None:
            limit = emulator.rate_limit
            form = limit.retry_after if limit is not None else None
            await exchange.json(
                429, {"message": d.MESSAGE_TOO_MANY_REQUESTS}, _retry_after(wait, form)
            )
            return
        try:
            check_content_type(headers.get("content-type"))
            data = parse_body(body)
            record.offset, record.limit = partial_paging(data)
            query = data.get("query")
            record.query = query if isinstance(query, str) else None
            filters = data.get("filters")
            record.filters = filters if isinstance(filters, dict) else None
            request = parse_search(data)
        except RequestError as exc:
            await exchange.json(400, {"error": str(exc)})
            return

        method: Method = (
            "semantic" if emulator.semantic and "semantic-outage" not in faults else "text"
        )
        record.search_method = method
        ranker = emulator.ranker()
        ranked = ranker.cached(request.query, request.filters, method)
        if ranked is None:
            # A first search of a big catalog takes up to a second: off the event loop,
            # so other requests (and cached pages) keep flowing meanwhile.
            ranked = await anyio.to_thread.run_sync(
                ranker.rank, request.query, request.filters, method
            )
        payload = emulator.answer(request, ranker, ranked)

        if fault == "truncated":
            await exchange.send_body(200, payload[: len(payload) // 2], _JSON)
        elif fault == "drop-mid-body":
            await exchange.drop_mid_body(200, payload)
        else:
            await exchange.send_body(200, payload, _JSON)

    async def _infrastructure_fault(self, exchange: _Exchange, fault: str) -> None:
        faults = self.emulator.faults
        if fault == "500":
            await exchange.json(500, {"error": d.ERROR_INTERNAL})
        elif fault in ("502", "503"):
            await exchange.send_body(int(fault), HTML_BODIES[fault], _HTML)
        elif fault == "429":
            form = faults.retry_after_format if faults.retry_after is not None else None
            await exchange.json(
                429,
                {"message": d.MESSAGE_TOO_MANY_REQUESTS},
                _retry_after(faults.retry_after or 0, form),
            )
        elif fault == "429-date":
            await exchange.json(
                429,
                {"message": d.MESSAGE_TOO_MANY_REQUESTS},
                _retry_after(faults.retry_after or 0, "date"),
            )
        elif fault == "429-no-header":
            await exchange.json(429, {"message": d.MESSAGE_TOO_MANY_REQUESTS})
        elif fault == "non-json":
            await exchange.send_body(200, HTML_BODIES["non-json"], _HTML)
        elif fault == "wrong-shape":
            await exchange.send_body(200, WRONG_SHAPE_BODY, _JSON)
        elif fault == "drop":
            await exchange.drop()
        elif fault == "hang":
            await exchange.hang()
        else:  # pragma: no cover - FAULT_NAMES and this dispatch are kept in step
            raise AssertionError(f"unhandled fault {fault!r}")


_CLOSE = (b"connection", b"close")


def _retry_after(seconds: int, form: str | None) -> list[tuple[bytes, bytes]]:
    """The Retry-After header of a 429: none (as documented), delta-seconds or a date."""
    if form is None:
        return []
    if form == "date":
        value = email.utils.formatdate(time.time() + seconds, usegmt=True)
    else:
        value = str(seconds)
    return [(c.RETRY_AFTER_HEADER.encode(), value.encode())]


#: Request headers the log leaves out: the API key is a secret (its `key_id` stands
#: for it) and so is an admin token sent by mistake.
_UNLOGGED_HEADERS = frozenset({c.API_KEY_HEADER, "authorization", "cookie"})


def _logged_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in _UNLOGGED_HEADERS}


class _EmulatedNetworkError(Exception):
    """Marks the httpx errors raised in place of a network fault with no socket."""


class _EmulatedRemoteProtocolError(httpx.RemoteProtocolError, _EmulatedNetworkError):
    pass


class _EmulatedReadTimeout(httpx.ReadTimeout, _EmulatedNetworkError):
    pass


_NO_SOCKET = (
    "emulated: the {fault!r} fault needs a socket, and this app runs in-process; "
    "serve it with EmulatorServer for a real one"
)


class _Record:
    """The fields of a `RequestRecord` as they become known."""

    __slots__ = (
        "arrival",
        "faults",
        "filters",
        "headers",
        "key_id",
        "limit",
        "offset",
        "query",
        "request_id",
        "search_method",
        "size",
    )

    def __init__(
        self,
        arrival: float,
        request_id: str,
        key_id: str | None,
        faults: tuple[str, ...],
        headers: dict[str, str],
    ) -> None:
        self.arrival, self.request_id, self.key_id, self.faults = (
            arrival,
            request_id,
            key_id,
            faults,
        )
        self.headers = headers
        self.offset: int | None = None
        self.limit: int | None = None
        self.query: str | None = None
        self.filters: dict[str, Any] | None = None
        self.search_method: str | None = None
        #: The body's size: what the query and filters can cost the log at most.
        self.size = 0

    def finish(self, status: int | None, disconnected: bool) -> RequestRecord:
        return RequestRecord(
            time=self.arrival,
            request_id=self.request_id,
            key_id=self.key_id,
            status=None if disconnected else status,
            faults=self.faults,
            offset=self.offset,
            limit=self.limit,
            query=self.query,
            search_method=self.search_method,
            filters=self.filters,
            headers=self.headers,
            client_disconnected=disconnected,
            traceparent=self.headers.get("traceparent"),
            size=self.size + sum(len(k) + len(v) for k, v in self.headers.items()),
        )


class _Exchange:
    """Sends one answer, whole or broken, and reports it just before its last bytes go.

    Reporting before the end means a client that has read the whole answer can
    rely on finding the request in the log already. An answer whose client has
    already gone is reported as such: it was never delivered.
    """

    __slots__ = ("answered", "control", "on_answer", "receive", "request_id", "send", "started")

    def __init__(
        self,
        send: Send,
        receive: Receive,
        request_id: str,
        control: ConnectionControl | None,
        on_answer: Callable[[int | None, bool], None],
    ) -> None:
        self.send = send
        self.receive = receive
        self.request_id = request_id
        self.control = control
        self.on_answer = on_answer
        self.started = False
        self.answered = False

    def _answer(self, status: int | None) -> None:
        if not self.answered:
            self.answered = True
            gone = status is not None and self.control is not None and self.control.closed
            self.on_answer(status, gone)

    def client_left(self) -> None:
        """Report a request whose client left before it was answered."""
        if not self.answered:
            self.answered = True
            self.on_answer(None, True)

    async def client_leaves_within(self, seconds: float) -> bool:
        """Wait `seconds`; True, as soon as it happens, if the client disconnects meanwhile."""
        left = False
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                nonlocal left
                # The body is read already: the next message is the disconnect.
                while (await self.receive())["type"] != "http.disconnect":
                    pass
                left = True
                group.cancel_scope.cancel()

            group.start_soon(watch)
            await anyio.sleep(seconds)
            group.cancel_scope.cancel()
        return left

    def _start(
        self,
        status: int,
        content_type: bytes,
        length: int,
        extra: Iterable[tuple[bytes, bytes]] = (),
    ) -> Message:
        self.started = True
        return {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(length).encode()),
                (d.REQUEST_ID_HEADER.encode(), self.request_id.encode()),
                *extra,
            ],
        }

    async def send_body(
        self,
        status: int,
        body: bytes,
        content_type: bytes,
        extra: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        await self.send(self._start(status, content_type, len(body), extra))
        self._answer(status)
        await self.send({"type": "http.response.body", "body": body})

    async def json(
        self, status: int, body: object, extra: Iterable[tuple[bytes, bytes]] = ()
    ) -> None:
        await self.send_body(status, _json.dumps(body), _JSON, extra)

    async def drop(self) -> None:
        """Close the connection without a byte of answer."""
        self._answer(None)
        if self.control is None:
            raise _EmulatedRemoteProtocolError(
                "Server disconnected without sending a response. ("
                + _NO_SOCKET.format(fault="drop")
                + ")"
            )
        self.control.close()
        await self._until_disconnected()

    async def drop_mid_body(self, status: int, body: bytes) -> None:
        """Send the headers and half the body, then close the connection."""
        self._answer(status)
        if self.control is None:
            raise _EmulatedRemoteProtocolError(
                "peer closed connection without sending complete message body. ("
                + _NO_SOCKET.format(fault="drop-mid-body")
                + ")"
            )
        await self.send(self._start(status, _JSON, len(body)))
        await self.send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        self.control.close()
        await self._until_disconnected()

    async def hang(self) -> None:
        """Never answer: wait until the client gives up (or the server stops)."""
        self._answer(None)
        if self.control is None:
            raise _EmulatedReadTimeout(
                "The read operation timed out. (" + _NO_SOCKET.format(fault="hang") + ")"
            )
        self.control.hanging = True
        await self._until_disconnected()

    async def _until_disconnected(self) -> None:
        # Returning before the server has noticed the closed socket would make it
        # answer 500 on our behalf; waiting for the disconnect message avoids that.
        while (await self.receive())["type"] != "http.disconnect":
            pass


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}

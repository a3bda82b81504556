"""The emulator's ASGI app: the search endpoint and the admin endpoints.

The search endpoint is a raw ASGI callable rather than a Starlette
request/response function, because faults need to control exactly which
bytes go out, and when: half a body then a closed socket, a content-length
that matches a truncated body, no answer at all.

Order of business for `POST /developer/v1/search`, like a gateway in front of
a service: faults are decided (the `x-emulator-fault` header, then faults
forced with `Emulator.force_fault`, then the seeded draw); "latency" waits;
an answer fault that stands for infrastructure (5xx, 429 storms, garbage,
drop, hang) answers at once; then the API key (401), the rate limit (429),
the content type and body (400), the search; finally "truncated" or
"drop-mid-body" damage the answer on its way out.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import anyio
import anyio.to_thread
import httpx
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from audioscape_async import _constants as c

from . import _defaults as d
from ._catalog import Catalog, generate_catalog
from ._connection import CONNECTION_EXTENSION, ConnectionControl
from ._emulator import Emulator, RequestRecord
from ._faults import DAMAGING_FAULTS, HTML_BODIES, WRONG_SHAPE_BODY, Faults, answer_fault
from ._faults import parse_fault_list as _parse_fault_list
from ._ranking import Method
from ._ratelimit import RateLimit
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


def create_app(
    *,
    catalog: Catalog | None = None,
    tracks: int = d.DEFAULT_TRACKS,
    seed: int = d.DEFAULT_SEED,
    api_keys: Sequence[str] = (d.DEMO_API_KEY,),
    rate_limit: RateLimit | None = None,
    faults: Faults | Mapping[str, float] | None = None,
    semantic: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> Starlette:
    """An ASGI app that answers like the AudioScape API, for tests and benchmarks.

    Without `catalog`, a catalog of `tracks` tracks is generated from `seed`
    (which also seeds fault draws and request ids). `api_keys` are the keys
    it accepts; `rate_limit` limits each key; `faults` injects failures
    (a `Faults`, or a rate mapping like `{"500": 0.1}`); `semantic=False`
    answers every search by keyword. `app.state.emulator` is the `Emulator`.

        >>> import httpx
        >>> app = create_app(tracks=1_000)
        >>> client = httpx.AsyncClient(
        ...     transport=httpx.ASGITransport(app=app),
        ...     base_url="http://emulator" + BASE_PATH,
        ...     headers={"x-api-key": DEMO_API_KEY},
        ... )
    """
    emulator = Emulator(
        catalog if catalog is not None else generate_catalog(tracks, seed),
        seed=seed,
        api_keys=api_keys,
        rate_limit=rate_limit,
        faults=faults,
        semantic=semantic,
        clock=clock,
    )
    admin = d.ADMIN_PREFIX
    app = Starlette(
        routes=[
            Route(d.SEARCH_ROUTE, _SearchEndpoint(emulator), methods=["POST"]),
            Route(f"{admin}/requests", _requests, methods=["GET"]),
            Route(f"{admin}/state", _state, methods=["GET"]),
            Route(f"{admin}/faults", _set_faults, methods=["POST"]),
            Route(f"{admin}/force", _force, methods=["POST"]),
            Route(f"{admin}/rate-limit", _set_rate_limit, methods=["POST"]),
            Route(f"{admin}/reset", _reset, methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.emulator = emulator
    return app


# --------------------------------------------------------------------------- search


class _SearchEndpoint:
    """`POST /developer/v1/search`, faults and all."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

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
            begun.arrival, request_id, emulator.key_id(api_key) if api_key else None, begun.faults
        )

        def log(status: int | None) -> None:
            emulator.record(record.finish(status), begun.generation)

        exchange = _Exchange(
            send=send,
            receive=receive,
            request_id=request_id,
            control=scope.get("extensions", {}).get(CONNECTION_EXTENSION),
            on_answer=log,
        )
        try:
            body, too_large = await _read_body(receive)
            await self._serve(exchange, record, headers, body, too_large, forced_error)
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
        too_large: bool,
        forced_error: str | None,
    ) -> None:
        emulator = self.emulator
        faults = record.faults
        if forced_error is not None:
            await exchange.json(400, {"error": forced_error})
            return
        if "latency" in faults:
            await anyio.sleep(emulator.faults.latency)
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
            await exchange.json(
                429,
                {"message": d.MESSAGE_TOO_MANY_REQUESTS},
                [(c.RETRY_AFTER_HEADER.encode(), str(wait).encode())],
            )
            return
        try:
            check_content_type(headers.get("content-type"))
            if too_large:
                await exchange.json(
                    413, {"error": f"Request body too large (limit {d.MAX_BODY_BYTES} bytes)"}
                )
                return
            data = parse_body(body)
            record.offset, record.limit = partial_paging(data)
            query = data.get("query")
            record.query = query if isinstance(query, str) else None
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
        retry_after = self.emulator.faults.retry_after
        if fault == "500":
            await exchange.json(500, {"error": d.ERROR_INTERNAL})
        elif fault in ("502", "503"):
            await exchange.send_body(int(fault), HTML_BODIES[fault], _HTML)
        elif fault == "429":
            await exchange.json(
                429,
                {"message": d.MESSAGE_TOO_MANY_REQUESTS},
                [(c.RETRY_AFTER_HEADER.encode(), str(retry_after).encode())],
            )
        elif fault == "429-date":
            when = email.utils.formatdate(time.time() + retry_after, usegmt=True)
            await exchange.json(
                429,
                {"message": d.MESSAGE_TOO_MANY_REQUESTS},
                [(c.RETRY_AFTER_HEADER.encode(), when.encode())],
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
        "key_id",
        "limit",
        "offset",
        "query",
        "request_id",
        "search_method",
    )

    def __init__(
        self, arrival: float, request_id: str, key_id: str | None, faults: tuple[str, ...]
    ) -> None:
        self.arrival, self.request_id, self.key_id, self.faults = (
            arrival,
            request_id,
            key_id,
            faults,
        )
        self.offset: int | None = None
        self.limit: int | None = None
        self.query: str | None = None
        self.search_method: str | None = None

    def finish(self, status: int | None) -> RequestRecord:
        return RequestRecord(
            time=self.arrival,
            request_id=self.request_id,
            key_id=self.key_id,
            status=status,
            faults=self.faults,
            offset=self.offset,
            limit=self.limit,
            query=self.query,
            search_method=self.search_method,
        )


class _Exchange:
    """Sends one answer, whole or broken, and reports it just before its last bytes go.

    Reporting before the end means a client that has read the whole answer can
    rely on finding the request in the log already.
    """

    __slots__ = ("answered", "control", "on_answer", "receive", "request_id", "send", "started")

    def __init__(
        self,
        send: Send,
        receive: Receive,
        request_id: str,
        control: ConnectionControl | None,
        on_answer: Callable[[int | None], None],
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
            self.on_answer(status)

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
        await self.send_body(status, orjson.dumps(body), _JSON, extra)

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


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body, and whether it was cut off at `MAX_BODY_BYTES`."""
    chunks: list[bytes] = []
    size = 0
    too_large = False
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > d.MAX_BODY_BYTES:
            too_large = True
        elif chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), too_large


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


# --------------------------------------------------------------------------- admin


def _emulator(request: Request) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    return emulator


def _admin_json(request: Request, body: object, status: int = 200) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type=c.JSON_CONTENT_TYPE,
        headers={d.REQUEST_ID_HEADER: _emulator(request).other_request_id()},
    )


async def _admin_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise HTTPException(400, "Request body must be valid JSON") from None


async def _requests(request: Request) -> Response:
    """GET /_emulator/requests[?last=N]: counts by status and fault, and the records."""
    last_text = request.query_params.get("last")
    last = None
    if last_text is not None:
        if not last_text.isdigit():
            raise HTTPException(400, "last must be a non-negative integer")
        last = int(last_text)
    return _admin_json(request, _emulator(request).summary(last))


async def _state(request: Request) -> Response:
    """GET /_emulator/state: the configuration in force."""
    return _admin_json(request, _emulator(request).state())


async def _set_faults(request: Request) -> Response:
    """POST /_emulator/faults {"rates": {...}, "latency": s, "retry_after": s}."""
    try:
        faults = Faults.from_json(await _admin_body(request))
    except (ValueError, TypeError) as exc:
        raise HTTPException(400, str(exc)) from None
    _emulator(request).set_faults(faults)
    return _admin_json(request, faults.to_json())


async def _force(request: Request) -> Response:
    """POST /_emulator/force {"fault": name, "count": n}: fault the next n searches."""
    data = await _admin_body(request)
    if not isinstance(data, dict) or not isinstance(data.get("fault"), str):
        raise HTTPException(400, 'expected {"fault": name, "count": n}')
    try:
        _emulator(request).force_fault(data["fault"], data.get("count", 1))
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return _admin_json(request, {"forced": _emulator(request).state()["forced"]})


async def _set_rate_limit(request: Request) -> Response:
    """POST /_emulator/rate-limit {"rate": r, "burst": b}, or {"rate": null} for none."""
    data = await _admin_body(request)
    if not isinstance(data, dict):
        raise HTTPException(400, 'expected {"rate": r, "burst": b}')
    limit = None
    if data.get("rate") is not None:
        try:
            burst = data.get("burst")
            limit = RateLimit(data["rate"]) if burst is None else RateLimit(data["rate"], burst)
        except (ValueError, TypeError) as exc:
            raise HTTPException(400, str(exc)) from None
    _emulator(request).set_rate_limit(limit)
    return _admin_json(request, {"rate_limit": limit.to_json() if limit else None})


async def _reset(request: Request) -> Response:
    """POST /_emulator/reset: back to the state at creation."""
    _emulator(request).reset()
    return _admin_json(request, {"reset": True})


async def _http_error(request: Request, exc: Exception) -> Response:
    """404, 405 and admin refusals as JSON errors, with a request id like every answer."""
    assert isinstance(exc, HTTPException)
    response = _admin_json(request, {"error": exc.detail}, exc.status_code)
    response.headers.update(exc.headers or {})
    return response

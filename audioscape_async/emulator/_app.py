"""The emulator's ASGI app: the search endpoint and the admin endpoints.

The search endpoint is a raw ASGI callable rather than a Starlette
request/response function, because faults need to control exactly which
bytes go out, and when: half a body then a closed socket, a content-length
that matches a truncated body, no answer at all.

Order of business for `POST /developer/v1/search`, like a gateway in front of
a service: the body is read, bounded in size (413) and in time (408), and
either refusal closes the connection; faults are decided (the
`x-emulator-fault` header, then faults forced with `Emulator.force_fault`,
then the seeded draw); "latency" waits, watching for a client that leaves;
an answer fault that stands for infrastructure (5xx, 429 storms, garbage,
drop, hang) answers at once; then the API key (401), the rate limit (429),
the content type and body (400), the search; finally "truncated" or
"drop-mid-body" damage the answer on its way out. A client that has left
before its answer goes out is logged as `client_disconnected`, not as the
status it never received.

The admin endpoints (`/_emulator/...`) are safe to leave running on a shared
machine: they want `Authorization: Bearer <admin token>`, a `Host` naming the
address the server is bound to (no DNS rebinding), `application/json` bodies
only (a cross-site form or `text/plain` POST cannot reach them) and bounded
bodies.
"""

from __future__ import annotations

import email.utils
import hmac
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import anyio
import anyio.to_thread
import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from audioscape_async import _constants as c
from audioscape_async import _json

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
    admin_token: str | None = None,
    body_timeout: float = d.BODY_TIMEOUT,
    log_limit: int = d.REQUEST_LOG_LIMIT,
    log_max_bytes: int = d.REQUEST_LOG_MAX_BYTES,
) -> Starlette:
    """An ASGI app that answers like the AudioScape API, for tests and benchmarks.

    Without `catalog`, a catalog of `tracks` tracks is generated from `seed`
    (which also seeds fault draws and request ids). `api_keys` are the keys
    it accepts; `rate_limit` limits each key; `faults` injects failures
    (a `Faults`, or a rate mapping like `{"500": 0.1}`); `semantic=False`
    answers every search by keyword. `app.state.emulator` is the `Emulator`.
    `admin_token` is what the admin endpoints want as `Authorization: Bearer
    <token>` (random unless given; `Emulator.admin_token`); `body_timeout` the
    seconds a request body may take to arrive; `log_limit` and
    `log_max_bytes` bound the request log in records and in bytes.

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
        admin_token=admin_token,
        log_limit=log_limit,
        log_max_bytes=log_max_bytes,
    )
    if not (isinstance(body_timeout, (int, float)) and body_timeout > 0):
        raise ValueError(f"body_timeout must be positive seconds, got {body_timeout!r}")
    admin = d.ADMIN_PREFIX
    app = Starlette(
        routes=[
            Route(d.SEARCH_ROUTE, _SearchEndpoint(emulator, body_timeout), methods=["POST"]),
            Route(f"{admin}/requests", _admin_endpoint(_requests), methods=["GET"]),
            Route(f"{admin}/state", _admin_endpoint(_state), methods=["GET"]),
            Route(f"{admin}/faults", _admin_endpoint(_set_faults), methods=["POST"]),
            Route(f"{admin}/force", _admin_endpoint(_force), methods=["POST"]),
            Route(f"{admin}/rate-limit", _admin_endpoint(_set_rate_limit), methods=["POST"]),
            Route(f"{admin}/reset", _admin_endpoint(_reset), methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.emulator = emulator
    app.state.body_timeout = body_timeout
    return app


# --------------------------------------------------------------------------- search


class _SearchEndpoint:
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


#: A body over the limit is still drained up to this many bytes in all, so a client
#: that sends it whole before reading reads the 413 instead of a reset connection;
#: past it (an endless body) the connection is closed at once.
_DRAIN_LIMIT = 1024 * 1024


async def read_bounded_body(
    receive: Receive, limit: int, seconds: float
) -> tuple[bytes, tuple[int, str] | None]:
    """The request body, or a refusal (413 too large, 408 too slow).

    Never holds more than `limit` bytes, never waits more than `seconds`.
    """
    chunks: list[bytes] = []
    size = 0
    with anyio.move_on_after(seconds) as scope:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= limit:
                if chunk:
                    chunks.append(chunk)
            elif size > _DRAIN_LIMIT:
                break
            if not message.get("more_body", False):
                break
    if size > limit:
        return b"", (413, f"Request body too large (limit {limit} bytes)")
    if scope.cancelled_caught:
        return b"", (408, f"Request body not received within {seconds:g} s")
    return b"".join(chunks), None


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


# --------------------------------------------------------------------------- admin


def _emulator(request: Request) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    return emulator


def _admin_json(request: Request, body: object, status: int = 200) -> Response:
    return Response(
        _json.dumps(body),
        status_code=status,
        media_type=c.JSON_CONTENT_TYPE,
        headers={d.REQUEST_ID_HEADER: _emulator(request).other_request_id()},
    )


def _admin_endpoint(
    handler: Callable[[Request], Any],
) -> Callable[[Request], Any]:
    """Guard an admin endpoint: Host, admin token, JSON content type, bounded body."""

    async def guarded(request: Request) -> Response:
        _check_host(request)
        token = _emulator(request).admin_token
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), token.encode()
        ):
            raise HTTPException(
                401,
                "the admin endpoints want Authorization: Bearer <admin token> "
                "(audioscape serve prints it; EmulatorServer.admin_token holds it)",
                headers={"www-authenticate": "Bearer"},
            )
        body, refusal = await read_bounded_body(
            request.receive, d.MAX_BODY_BYTES, request.app.state.body_timeout
        )
        if refusal is not None:
            raise HTTPException(*refusal, headers={"connection": "close"})
        if request.method == "POST":
            media_type = request.headers.get("content-type", "").split(";", 1)[0].strip()
            if media_type.lower() != c.JSON_CONTENT_TYPE:
                raise HTTPException(
                    415, f"the admin endpoints accept only {c.JSON_CONTENT_TYPE} bodies"
                )
        request.state.body = body
        response: Response = await handler(request)
        return response

    return guarded


def _check_host(request: Request) -> None:
    """Refuse a Host other than the bound address: a DNS-rebinding page sends its own."""
    server = request.scope.get("server")
    host = request.headers.get("host", "").lower()
    if server is None:
        raise HTTPException(421, "the admin endpoints need to know the address they serve")
    bound, port = str(server[0]).lower(), server[1]
    names = {bound} | (set(d.LOOPBACK_HOSTS) if bound in d.LOOPBACK_HOSTS else set())
    allowed: set[str] = set()
    for name in names:
        shown = f"[{name}]" if ":" in name else name
        allowed.add(f"{shown}:{port}")
        if port in (None, 80):
            allowed.add(shown)
    if host not in allowed:
        raise HTTPException(
            421, f"Host {host!r} is not this emulator's address; use one of {sorted(allowed)}"
        )


def _admin_body(request: Request) -> Any:
    raw: bytes = request.state.body
    if not raw.strip():
        return {}
    try:
        return _json.loads(raw)
    except _json.JSONError:
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
        faults = Faults.from_json(_admin_body(request))
    except (ValueError, TypeError) as exc:
        raise HTTPException(400, str(exc)) from None
    _emulator(request).set_faults(faults)
    return _admin_json(request, faults.to_json())


async def _force(request: Request) -> Response:
    """POST /_emulator/force {"fault": name, "count": n}: fault the next n searches."""
    data = _admin_body(request)
    if not isinstance(data, dict) or not isinstance(data.get("fault"), str):
        raise HTTPException(400, 'expected {"fault": name, "count": n}')
    try:
        _emulator(request).force_fault(data["fault"], data.get("count", 1))
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return _admin_json(request, {"forced": _emulator(request).state()["forced"]})


async def _set_rate_limit(request: Request) -> Response:
    """POST /_emulator/rate-limit {"rate": r, "burst": b, "retry_after": f}, or {"rate": null}."""
    data = _admin_body(request)
    if not isinstance(data, dict):
        raise HTTPException(400, 'expected {"rate": r, "burst": b}')
    limit = None
    if data.get("rate") is not None:
        try:
            burst = data.get("burst")
            form = data.get("retry_after")
            limit = (
                RateLimit(data["rate"], retry_after=form)
                if burst is None
                else RateLimit(data["rate"], burst, retry_after=form)
            )
        except (ValueError, TypeError) as exc:
            raise HTTPException(400, str(exc)) from None
    _emulator(request).set_rate_limit(limit)
    return _admin_json(request, {"rate_limit": limit.to_json() if limit else None})


async def _reset(request: Request) -> Response:
    """POST /_emulator/reset: back to the state at creation."""
    _emulator(request).reset()
    return _admin_json(request, {"reset": True})


async def _http_error(request: Request, exc: Exception) -> Response:
    """404, 405 and admin refusals as JSON errors, with a request id like every answer.

    A 404 or 405 has not read its body, so the connection is closed after it:
    otherwise an endless body to a wrong path would be read (and dropped) for ever.
    """
    assert isinstance(exc, HTTPException)
    response = _admin_json(request, {"error": exc.detail}, exc.status_code)
    response.headers.update(exc.headers or {})
    if exc.status_code in (404, 405):
        response.headers["connection"] = "close"
    return response

"""The admin API (`/_emulator/...`): the request log, the state, faults, rate limits.

Safe to leave running on a shared machine: every endpoint wants
`Authorization: Bearer <admin token>`, a `Host` naming the address the server
is bound to (no DNS rebinding), `application/json` bodies only (a cross-site
form or `text/plain` POST cannot reach them) and bounded bodies. The app's
404, 405 and the admin refusals answer as JSON errors with a request id
(`http_error`), like every other answer.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from audioscape_async import _constants as c
from audioscape_async import _json

from . import _defaults as d
from ._body import read_bounded_body
from ._emulator import Emulator
from ._faults import Faults
from ._ratelimit import KeyRateLimit


def admin_routes() -> list[Route]:
    """The admin endpoints, each behind the guard, under `ADMIN_PREFIX`."""
    admin = d.ADMIN_PREFIX
    return [
        Route(f"{admin}/requests", _admin_endpoint(_requests), methods=["GET"]),
        Route(f"{admin}/state", _admin_endpoint(_state), methods=["GET"]),
        Route(f"{admin}/faults", _admin_endpoint(_set_faults), methods=["POST"]),
        Route(f"{admin}/force", _admin_endpoint(_force), methods=["POST"]),
        Route(f"{admin}/rate-limit", _admin_endpoint(_set_rate_limit), methods=["POST"]),
        Route(f"{admin}/reset", _admin_endpoint(_reset), methods=["POST"]),
    ]


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
                KeyRateLimit(data["rate"], retry_after=form)
                if burst is None
                else KeyRateLimit(data["rate"], burst, retry_after=form)
            )
        except (ValueError, TypeError) as exc:
            raise HTTPException(400, str(exc)) from None
    _emulator(request).set_rate_limit(limit)
    return _admin_json(request, {"rate_limit": limit.to_json() if limit else None})


async def _reset(request: Request) -> Response:
    """POST /_emulator/reset: back to the state at creation."""
    _emulator(request).reset()
    return _admin_json(request, {"reset": True})


async def http_error(request: Request, exc: Exception) -> Response:
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

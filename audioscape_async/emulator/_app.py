"""The emulator's ASGI app: the search endpoint and the admin API, assembled.

`create_app` builds the `Emulator` (the catalog, faults, rate limits and
request log) and routes to its two faces: the search endpoint (`_search`),
which answers like the AudioScape API, faults and all, and the admin API
(`_admin`), with which a test or another process steers and reads it. Both
read request bodies within the same bounds (`_body`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route

from . import _defaults as d
from ._admin import admin_routes, http_error
from ._catalog import Catalog, generate_catalog
from ._emulator import Emulator
from ._faults import Faults
from ._ratelimit import KeyRateLimit
from ._search import SearchEndpoint


def create_app(
    *,
    catalog: Catalog | None = None,
    tracks: int = d.DEFAULT_TRACKS,
    seed: int = d.DEFAULT_SEED,
    api_keys: Sequence[str] = (d.DEMO_API_KEY,),
    rate_limit: KeyRateLimit | None = None,
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
    app = Starlette(
        routes=[
            Route(d.SEARCH_ROUTE, SearchEndpoint(emulator, body_timeout), methods=["POST"]),
            *admin_routes(),
        ],
        exception_handlers={HTTPException: http_error},
    )
    app.state.emulator = emulator
    app.state.body_timeout = body_timeout
    return app

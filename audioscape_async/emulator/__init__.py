"""A local emulator of the AudioScape API, for tests and benchmarks.

What stripe-mock is to Stripe: the documented contract (headers, body
validation, error bodies, the answer's shape), a deterministic generated
catalog with natural-language ranking, per-key rate limits, and injectable
faults down to dropped and hanging connections. Needs the `emulator` extra
(Starlette and uvicorn).

In-process, with httpx's ASGI transport::

    app = create_app(tracks=1_000, faults={"503": 0.1})
    transport = httpx.ASGITransport(app=app)

Over a real socket, in a thread or in a child process::

    with EmulatorServer(tracks=1_000) as server:
        ...  # server.url, server.api_key, server.emulator

    with EmulatorProcess(tracks=100_000) as proc:
        ...  # proc.url, proc.api_key, proc.requests()

From a shell: `audioscape serve` or `python -m audioscape_async.emulator`
(`--openapi` prints the contract as OpenAPI 3; `openapi_document()` returns it).

Defaults follow the API's documentation (a 429 has no `Retry-After` unless a
fault or rate limit asks for one); where it is silent the choices are listed
in docs/testing.md. The server binds to loopback, bounds every body, closes idle
connections, and its `/_emulator/` admin endpoints want the admin token
(`Authorization: Bearer <token>`, printed by `audioscape serve`).
"""

from __future__ import annotations

from typing import Any

from . import _needs  # noqa: F401  (first: it names the extra if starlette or uvicorn is missing)
from ._app import create_app
from ._catalog import CATALOG_COLUMNS, Catalog, CatalogTrack, generate_catalog, load_catalog
from ._cli import add_serve_arguments, run_serve
from ._defaults import ADMIN_PREFIX, BASE_PATH, DEMO_API_KEY, FAULT_HEADER, NO_FAULT
from ._emulator import Emulator, RequestRecord
from ._exceptions import CatalogError, EmulatorError, EmulatorStartupError
from ._faults import FAULT_NAMES, Faults
from ._openapi import openapi_document
from ._ratelimit import KeyRateLimit
from ._server import EmulatorProcess, EmulatorServer

__all__ = [
    "ADMIN_PREFIX",
    "BASE_PATH",
    "CATALOG_COLUMNS",
    "DEMO_API_KEY",
    "FAULT_HEADER",
    "FAULT_NAMES",
    "NO_FAULT",
    "Catalog",
    "CatalogError",
    "CatalogTrack",
    "Emulator",
    "EmulatorError",
    "EmulatorProcess",
    "EmulatorServer",
    "EmulatorStartupError",
    "Faults",
    "KeyRateLimit",
    "RequestRecord",
    "add_serve_arguments",
    "create_app",
    "generate_catalog",
    "load_catalog",
    "openapi_document",
    "run_serve",
]

#: Names this package used to export, and what replaced them: the old ones were the
#: SDK's own `Track` and `RateLimit`, so a module importing both read ambiguously.
_DEPRECATED = {"Track": "CatalogTrack", "RateLimit": "KeyRateLimit"}


def __getattr__(name: str) -> Any:
    """Keep the old names importable, with a `DeprecationWarning`, for one minor release."""
    import warnings

    new = _DEPRECATED.get(name)
    if new is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"audioscape_async.emulator.{name} is deprecated and will be removed in the next "
        f"minor release; use audioscape_async.emulator.{new} (audioscape_async.{name} is "
        "the SDK's own, different type)",
        DeprecationWarning,
        stacklevel=2,
    )
    return globals()[new]

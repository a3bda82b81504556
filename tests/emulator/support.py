"""Shared constants and helpers of the emulator's tests."""

from __future__ import annotations

from typing import Any

import httpx

#: The session catalog: the emulator's default size, so ranking tests see realistic spreads.
TRACKS = 10_000
SEED = 0


def search(client: httpx.Client, body: Any = None, **headers: str) -> httpx.Response:
    """POST a search body (a JSON value) with extra headers (underscores become dashes)."""
    return client.post(
        "/search",
        json=body if body is not None else {"query": "chill lo-fi beats"},
        headers={name.replace("_", "-"): value for name, value in headers.items()},
    )

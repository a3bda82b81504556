"""`Gate.ready`: when a request may skip the gate (no limit, no pause), and when not."""

from __future__ import annotations

import pytest

from audioscape_async import RateLimit
from audioscape_async._gate import Gate


def test_an_open_unlimited_gate_is_ready() -> None:
    """No rate limit and no pause: a request goes without the gate counting anything."""
    assert Gate(None).ready()


@pytest.mark.anyio
async def test_a_paused_gate_is_not_ready_until_the_pause_ends() -> None:
    """A 429's pause holds requests: the gate must be waited on while it lasts."""
    gate = Gate(None)
    await gate.pause(60.0)
    assert not gate.ready()
    await gate.pause(-1.0)  # a later, shorter pause does not shorten it
    assert not gate.ready()


def test_a_rate_limited_gate_is_never_ready() -> None:
    """With a client-side rate limit every request is counted, so it goes through wait()."""
    assert not Gate(RateLimit(requests_per_second=1_000_000)).ready()

"""Fixtures of the serving tests."""

from __future__ import annotations

import pytest

from audioscape_async import _breaker as breaker_module
from tests.serving.breaker_clock import FakeClock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The breaker's clock, driven by the test."""
    fake = FakeClock()
    monkeypatch.setattr(breaker_module, "clock", fake)
    return fake

"""Fixtures of the serving tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from audioscape_async import _breaker as breaker_module
from audioscape_async import _cache as cache_module
from audioscape_async.emulator import EmulatorServer
from tests.serving.breaker_clock import FakeClock
from tests.serving.cache_support import CacheClock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The breaker's clock, driven by the test."""
    fake = FakeClock()
    monkeypatch.setattr(breaker_module, "clock", fake)
    return fake


@pytest.fixture
def cache_clock(monkeypatch: pytest.MonkeyPatch) -> CacheClock:
    """The cache's in-process clock, driven by the test."""
    fake = CacheClock()
    monkeypatch.setattr(cache_module, "clock", fake)
    return fake


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    """An emulator of this test's own, whose request log counts the upstream calls."""
    with EmulatorServer() as server:
        yield server

"""Shared test configuration: every async test runs on asyncio and on trio."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.serving.conftest_redis"]

settings.register_profile(
    "fast", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=2_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Run each `@pytest.mark.anyio` test once per event loop."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=["httpx", "aiohttp"])
def sdk_transport(request: pytest.FixtureRequest, anyio_backend: tuple[str, object]) -> str:
    """The test once per transport of the SDK's own pool (aiohttp runs on asyncio only)."""
    if request.param == "aiohttp" and anyio_backend[0] != "asyncio":
        pytest.skip("the aiohttp transport runs on asyncio only")
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own AudioScape key or URL."""
    monkeypatch.delenv("AUDIOSCAPE_API_KEY", raising=False)
    monkeypatch.delenv("AUDIOSCAPE_BASE_URL", raising=False)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the SDK's retry and rate-limit sleeps instead of sleeping through them."""
    from tests.helpers import record_sleeps

    return record_sleeps(monkeypatch)

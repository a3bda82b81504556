"""The circuit breaker's clock, moved only by the test (the `clock` fixture, in conftest)."""

from __future__ import annotations


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

"""(15) What observing a call costs: event hooks and OpenTelemetry, on and off.

`AsyncClient.search(limit=100)` against the fixed-answer server in another
process, one connection, sequential calls on asyncio, the CPU time of this
process (`time.process_time`), four clients in interleaved rounds:

- **nothing**: ``telemetry=Telemetry(enabled=False)`` and no hooks, the same
  path as without ``opentelemetry-api`` installed (the client has no observers);
- **no-op hook**: one sync hook on every event;
- **otel-api, no provider**: the default client with ``opentelemetry-api``
  installed and the API's default (proxy) providers: a per-call check, nothing
  recorded;
- **OpenTelemetry on**: an SDK `TracerProvider` with an in-memory exporter
  and an SDK `MeterProvider` with an in-memory reader: two spans and a
  histogram point per call.

A second row times the per-call check alone (`Observers.call` with the
default providers), the only work the no-provider client does per call: it is
far below what row 15's spread can show, hence row 15's loose target.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from audioscape_async import AsyncClient, Telemetry

from ._common import (
    QUERY,
    Result,
    Settings,
    interleave_async_cpu,
    interleave_sync,
    medians,
    optional,
    run_async,
    spread,
)
from ._server import API_KEY, ServerProcess

NAME = "hooks"
NOTHING = "nothing observes"
NOOP_HOOK = "a no-op hook on every event"
NO_PROVIDER = "otel-api, no provider"
OTEL_ON = "OpenTelemetry on (SDK, in-memory)"
EVENTS = ("request", "response", "retry", "rate_limit", "cache", "breaker", "page")


def _providers() -> Telemetry | None:
    sdk = optional("opentelemetry.sdk")
    if sdk is None:
        return None
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    # Spans pile up in memory over a run: a few MB, cleared at each warm-up's end.
    return Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)


async def _measure(
    url: str, settings: Settings
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    def noop(event: object) -> None:
        return None

    clients = {
        NOTHING: AsyncClient(API_KEY, base_url=url, telemetry=Telemetry(enabled=False)),
        NOOP_HOOK: AsyncClient(
            API_KEY,
            base_url=url,
            telemetry=Telemetry(enabled=False),
            event_hooks={name: [noop] for name in EVENTS},
        ),
        NO_PROVIDER: AsyncClient(API_KEY, base_url=url),
    }
    telemetry = _providers()
    if telemetry is not None:
        clients[OTEL_ON] = AsyncClient(API_KEY, base_url=url, telemetry=telemetry)
    variants: dict[str, Callable[[], Awaitable[object]]] = {
        name: (lambda client=client: client.search(QUERY, limit=100))  # type: ignore[misc]
        for name, client in clients.items()
    }
    try:
        for call in variants.values():  # warm up: connections, imports, caches
            for _ in range(50):
                await call()
        return await interleave_async_cpu(
            variants, rounds=settings.pick(30, 3), batch=settings.pick(200, 20)
        )
    finally:
        for client in clients.values():
            await client.aclose()


def _check_cost(settings: Settings) -> dict[str, list[float]] | None:
    """The per-call check of a client with the default providers, against a bare call."""
    import time

    client = AsyncClient(API_KEY, base_url="http://127.0.0.1:9")
    observers = client._pipeline.observers
    if observers is None:
        return None  # opentelemetry-api is not installed: nothing is checked
    body = b'{"query":"q","limit":1,"offset":0}'

    def nothing() -> object:
        return None

    return interleave_sync(
        {"check": lambda: observers.call(body), "empty call": nothing},
        rounds=settings.pick(30, 3),
        batch=settings.pick(20_000, 500),
        clock=time.thread_time,
    )


def run(settings: Settings) -> list[Result]:
    with ServerProcess(total=10_000) as server:
        cpu, wall = run_async(_measure(server.url, settings))
    us = {name: value * 1e6 for name, value in medians(cpu).items()}
    rounds = len(cpu[NOTHING])
    base = us[NOTHING]
    notes = [
        f"CPU time of the client process (time.process_time), medians of {rounds} interleaved "
        "rounds; asyncio, default transport, one connection, sequential search(limit=100); "
        "fixed-answer server in another process",
        *(
            f"{name}: {us[name]:.0f} µs, x{us[name] / base:.3f} (p10-p90 per round "
            f"{spread(cpu[name], cpu[NOTHING])})"
            for name in us
            if name != NOTHING
        ),
    ]
    if OTEL_ON not in us:
        notes.append("opentelemetry-sdk is not installed: the OpenTelemetry-on variant is skipped")
    results = [
        Result(
            benchmark="15. CPU per call with hooks and OpenTelemetry",
            variants=us,
            unit="µs CPU/call",
            ratio_label="otel-api with no provider / nothing observes",
            ratio=us[NO_PROVIDER] / base,
            target="<= 1.05",
            notes=notes,
            extra={"wall_us": {name: value * 1e6 for name, value in medians(wall).items()}},
        )
    ]
    check = _check_cost(settings)
    if check is not None:
        ns: dict[str, Any] = {name: value * 1e9 for name, value in medians(check).items()}
        results.append(
            Result(
                benchmark="15a. The per-call check of a client with no provider",
                variants=ns,
                unit="ns CPU/call",
                ratio_label="check / share of nothing-observes CPU per call",
                ratio=(ns["check"] - ns["empty call"]) / (base * 1e3),
                target="<= 0.02",
                notes=[
                    "Observers.call with the API's default providers (a tracer and a meter "
                    "provider looked up, both the defaults: None), thread CPU time; the ratio "
                    "is its cost over the CPU of a whole search that nothing observes"
                ],
            )
        )
    return results

"""OpenTelemetry through the real SDK: spans, attributes, parents, metrics, trace context."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the test extra installs opentelemetry-sdk")

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from audioscape_async import AsyncClient, Client, InvalidParameterError, SearchCache, Telemetry
from audioscape_async.emulator import EmulatorServer

pytestmark = pytest.mark.usefixtures("sleeps")

QUERY = "chill lo-fi beats"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    """One emulator in a thread for the whole module."""
    with EmulatorServer(tracks=250) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_emulator(server: EmulatorServer) -> Iterator[None]:
    server.emulator.reset()
    yield
    server.emulator.reset()


class Otel:
    """An SDK tracer provider with an in-memory exporter, and a meter provider with a reader."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def telemetry(self, **switches: Any) -> Telemetry:
        return Telemetry(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **switches
        )

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if name is None or s.name == name]

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for found in scope.metrics
            if found.name == metric
            for point in found.data.data_points
        ]


@pytest.fixture
def otel() -> Iterator[Otel]:
    """Providers of this test's own (the global ones stay the API's defaults)."""
    made = Otel()
    yield made
    made.tracer_provider.shutdown()
    made.meter_provider.shutdown()


def _client(server: EmulatorServer, transport: str = "httpx", **options: Any) -> AsyncClient:
    return AsyncClient(server.api_key, base_url=server.url, transport=transport, **options)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_search_is_an_operation_span_over_one_client_span_per_attempt(
    server: EmulatorServer, otel: Otel, sdk_transport: str
) -> None:
    """`audioscape.search` is the parent of one CLIENT span "POST" with the HTTP attributes."""
    async with _client(server, sdk_transport, telemetry=otel.telemetry()) as client:
        await client.search(QUERY, limit=3, filters={"genres": ["electronic"]})
    (operation,) = otel.spans("audioscape.search")
    (attempt,) = otel.spans("POST")
    assert attempt.kind is trace.SpanKind.CLIENT
    assert attempt.parent is not None
    assert attempt.parent.span_id == operation.context.span_id
    assert attempt.context.trace_id == operation.context.trace_id
    host, port = server.url.split("//")[1].split("/")[0].split(":")
    assert dict(attempt.attributes or {}) == {
        "http.request.method": "POST",
        "server.address": host,
        "server.port": int(port),
        "url.full": f"{server.url}/search",
        "http.response.status_code": 200,
    }
    attributes = dict(operation.attributes or {})
    assert attributes["audioscape.query.length"] == len(QUERY)
    assert attributes["audioscape.filters"] == '{"genres":["electronic"]}'
    assert "audioscape.query" not in attributes  # not captured by default
    for span in otel.spans():
        assert server.api_key not in str(span.to_json())


@pytest.mark.anyio
async def test_retries_are_resent_attempts_with_error_type(
    server: EmulatorServer, otel: Otel
) -> None:
    """A 503 then a page: two attempt spans, the first with error.type, the second resent."""
    server.emulator.force_fault("503")
    async with _client(server, telemetry=otel.telemetry()) as client:
        await client.search(QUERY, limit=3)
    first, second = sorted(otel.spans("POST"), key=lambda span: span.start_time or 0)
    assert first.attributes is not None
    assert second.attributes is not None
    assert first.attributes["http.response.status_code"] == 503
    assert first.attributes["error.type"] == "503"
    assert first.status.status_code is trace.StatusCode.ERROR
    assert "http.request.resend_count" not in first.attributes
    assert second.attributes["http.request.resend_count"] == 1
    assert "error.type" not in second.attributes
    (retries,) = otel.points("audioscape.client.retries")
    assert retries.value == 1
    assert dict(retries.attributes) == {"error.type": "503"}
    durations = otel.points("http.client.request.duration")
    assert sorted(p.attributes.get("http.response.status_code") for p in durations) == [200, 503]
    assert all(p.count == 1 and 0 < p.sum < 5 for p in durations)


@pytest.mark.anyio
async def test_a_failed_call_marks_both_spans(server: EmulatorServer, otel: Otel) -> None:
    """A dropped connection: the attempt span has the exception's type, the call's too."""
    server.emulator.force_fault("drop")
    async with _client(server, telemetry=otel.telemetry(), max_retries=0) as client:
        with pytest.raises(Exception, match=r"(?i)connection|disconnect|closed"):
            await client.search(QUERY, limit=3)
    (attempt,) = otel.spans("POST")
    (operation,) = otel.spans("audioscape.search")
    assert attempt.attributes is not None
    assert operation.attributes is not None
    assert attempt.attributes["error.type"] == "audioscape_async.APIConnectionError"
    assert operation.attributes["error.type"] == "audioscape_async.APIConnectionError"
    assert operation.status.status_code is trace.StatusCode.ERROR


@pytest.mark.anyio
async def test_the_traceparent_reaches_the_server(server: EmulatorServer, otel: Otel) -> None:
    """The emulator logs the attempt span's W3C trace context; propagate=False sends none."""
    async with _client(server, telemetry=otel.telemetry()) as client:
        await client.search(QUERY, limit=3)
    async with _client(server, telemetry=otel.telemetry(propagate=False)) as client:
        await client.search(QUERY, limit=3)
    first, second = server.emulator.requests
    attempt = otel.spans("POST")[0].context
    assert first.traceparent is not None
    assert first.traceparent.startswith(f"00-{attempt.trace_id:032x}-{attempt.span_id:016x}-")
    assert int(first.traceparent[-2:], 16) & 1  # sampled
    assert second.traceparent is None


def test_the_environment_sets_the_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    """AUDIOSCAPE_OTEL_CAPTURE_QUERY and _PROPAGATE set the defaults; a bad value is an error."""
    assert Telemetry().capture_query is False
    assert Telemetry().propagate is True
    monkeypatch.setenv("AUDIOSCAPE_OTEL_CAPTURE_QUERY", "1")
    monkeypatch.setenv("AUDIOSCAPE_OTEL_PROPAGATE", "0")
    assert Telemetry().capture_query is True
    assert Telemetry().propagate is False
    assert Telemetry(propagate=True).propagate is True
    monkeypatch.setenv("AUDIOSCAPE_OTEL_PROPAGATE", "maybe")
    with pytest.raises(InvalidParameterError, match=r"AUDIOSCAPE_OTEL_PROPAGATE.*'maybe'"):
        Telemetry()
    with pytest.raises(InvalidParameterError, match="telemetry"):
        AsyncClient("key", telemetry="on")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_capture_query_puts_the_text_on_the_span(server: EmulatorServer, otel: Otel) -> None:
    """With capture_query=True the query's text is the `audioscape.query` attribute."""
    async with _client(server, telemetry=otel.telemetry(capture_query=True)) as client:
        await client.search(QUERY, limit=3)
    (operation,) = otel.spans("audioscape.search")
    assert (operation.attributes or {})["audioscape.query"] == QUERY


@pytest.mark.anyio
async def test_suppressed_instrumentation_makes_no_spans(
    server: EmulatorServer, otel: Otel
) -> None:
    """Suppressed HTTP instrumentation: no attempt span; suppressed instrumentation: none."""
    from opentelemetry.context import (
        _SUPPRESS_HTTP_INSTRUMENTATION_KEY,
        _SUPPRESS_INSTRUMENTATION_KEY,
    )

    async with _client(server, telemetry=otel.telemetry()) as client:
        token = otel_context.attach(
            otel_context.set_value(_SUPPRESS_HTTP_INSTRUMENTATION_KEY, True)
        )
        try:
            await client.search(QUERY, limit=3)
        finally:
            otel_context.detach(token)
        assert [span.name for span in otel.spans()] == ["audioscape.search"]
        token = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            await client.search(QUERY, limit=3)
        finally:
            otel_context.detach(token)
    assert [span.name for span in otel.spans()] == ["audioscape.search"]


@pytest.mark.anyio
async def test_a_walk_is_one_span_over_its_pages(server: EmulatorServer, otel: Otel) -> None:
    """A walk's span holds one event per page and is the parent of each page's search span."""
    client = _client(server, telemetry=otel.telemetry())
    async with client, client.crawl(QUERY, page_size=40, max_items=100, concurrency=2) as crawl:
        tracks = [track async for track in crawl]
    (walk,) = otel.spans("audioscape.walk")
    searches = otel.spans("audioscape.search")
    assert len(searches) == 3
    assert all(s.parent is not None and s.parent.span_id == walk.context.span_id for s in searches)
    assert [event.attributes["audioscape.offset"] for event in walk.events] == [0, 40, 80]  # type: ignore[index]
    attributes = walk.attributes or {}
    assert attributes["audioscape.walk.pages"] == 3
    assert attributes["audioscape.walk.tracks"] == len(tracks) == 100


@pytest.mark.anyio
async def test_cache_and_breaker_metrics(server: EmulatorServer, otel: Otel) -> None:
    """Cache lookups are counted by result; a breaker's transitions by the state entered."""
    from audioscape_async import CircuitBreaker

    breaker = CircuitBreaker(failure_threshold=1, recovery_time=60)
    server.emulator.force_fault("503")
    async with _client(
        server, telemetry=otel.telemetry(), cache=SearchCache(), circuit_breaker=breaker
    ) as client:
        with pytest.raises(Exception, match="503"):
            await client.with_options(max_retries=0).search(QUERY, limit=3)
    async with _client(server, telemetry=otel.telemetry(), cache=SearchCache()) as client:
        await client.search(QUERY, limit=3)
        await client.search(QUERY, limit=3)
    lookups = {
        p.attributes["audioscape.cache.result"]: p.value
        for p in otel.points("audioscape.client.cache.lookups")
    }
    assert lookups == {"miss": 1, "hit": 1}
    (transition,) = otel.points("audioscape.client.breaker.transitions")
    assert dict(transition.attributes) == {"audioscape.breaker.state": "open"}


def test_the_sync_client_traces_too(server: EmulatorServer, otel: Otel) -> None:
    """`Client(telemetry=...)` passes it to the core: the same two spans."""
    with Client(server.api_key, base_url=server.url, telemetry=otel.telemetry()) as client:
        client.search(QUERY, limit=3)
    assert sorted(span.name for span in otel.spans()) == ["POST", "audioscape.search"]


@pytest.mark.anyio
async def test_the_default_providers_record_nothing(server: EmulatorServer) -> None:
    """With the API's default (proxy) providers, a client traces nothing: no watch per call."""
    async with _client(server) as client:
        observers = client._pipeline.observers
        assert observers is not None
        assert observers.sink is not None
        assert observers.call(b'{"query":"q","limit":1,"offset":0}') is None
        await client.search(QUERY, limit=3)
    assert server.emulator.requests[0].traceparent is None
    disabled = _client(server, telemetry=Telemetry(enabled=False))
    assert disabled._pipeline.observers is None


@pytest.mark.anyio
async def test_a_provider_set_later_is_picked_up_after_the_recheck(
    server: EmulatorServer, otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client made before the provider traces once it looks again (every RECHECK seconds)."""
    from audioscape_async import _telemetry

    monkeypatch.setattr(_telemetry, "RECHECK", 3600.0)
    async with _client(server) as client:
        await client.search(QUERY, limit=3)  # the defaults: looks again in an hour
        monkeypatch.setattr(trace, "get_tracer_provider", lambda: otel.tracer_provider)
        await client.search(QUERY, limit=3)
        assert otel.spans() == []
        sink = client._pipeline.observers.sink  # type: ignore[union-attr]
        sink._unheard_until = 0.0  # the hour has passed
        await client.search(QUERY, limit=3)
    assert sorted(span.name for span in otel.spans()) == ["POST", "audioscape.search"]


def test_without_the_package_nothing_observes() -> None:
    """Without opentelemetry a client has no observers; with it, making one imports nothing."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from audioscape_async import AsyncClient\n"
        "assert AsyncClient('key')._pipeline.observers is None\n"
        "hooked = AsyncClient('key', event_hooks={'retry': [print]})._pipeline.observers\n"
        "assert hooked is not None and hooked.sink is None\n"
        "assert 'opentelemetry.trace' not in sys.modules\n"
    )
    lazy = (  # installed: a client only looks it up; the first call imports it
        "import sys\n"
        "from audioscape_async import AsyncClient\n"
        "assert AsyncClient('key')._pipeline.observers is not None\n"
        "assert 'opentelemetry.trace' not in sys.modules\n"
    )
    for script in (code, lazy):
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr

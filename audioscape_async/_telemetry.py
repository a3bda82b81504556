"""OpenTelemetry traces and metrics by the semantic conventions: one more consumer of the events.

`Telemetry` holds the switches. When the ``opentelemetry-api`` package is
importable (the ``otel`` extra) and `Telemetry.enabled`, a client has a `Sink`:
it consumes the events of `_hooks` (the same emission points as the hooks) and
turns them into

- per search, an operation span ``audioscape.search`` (INTERNAL), and under it
  one CLIENT span per HTTP attempt named ``POST`` as the HTTP client
  conventions say, with ``http.request.method``, ``server.address``,
  ``server.port``, ``url.full``, ``http.response.status_code``, ``error.type``
  and ``http.request.resend_count``; the attempt's headers carry the W3C
  ``traceparent`` (the global propagator's) unless ``propagate=False``;
- per walk or crawl, a span for the whole walk, its first `MAX_PAGE_EVENTS`
  pages as span events, then the counts as attributes;
- the metrics ``http.client.request.duration`` (seconds, per attempt),
  ``audioscape.client.retries``, ``audioscape.client.rate_limit.wait.duration``,
  ``audioscape.client.cache.lookups`` and ``audioscape.client.breaker.transitions``.

Nil when nobody listens. Providers may be set after a client is made, so the
providers are looked up again as calls go; the tracer and the instruments are
made once per provider and cached. While the providers are the API's defaults
(its proxies, or no-ops) `Sink.call` returns None and the call pays nothing
more. Looking both providers up costs about a microsecond (the API reads the
environment each time), so a client that found only the defaults looks again
at most every `RECHECK` seconds: a provider set while a client is busy is
picked up within that, and the check costs a clock read in between
(`benchmarks/hooks.py`, row 15a). A context with
OpenTelemetry's suppress-instrumentation key set gets nothing; one with its
suppress-HTTP-instrumentation key set (a higher-level instrumentation covers
HTTP) gets no attempt span. While an attempt span is current, the
suppress-HTTP key is set, so an httpx or aiohttp instrumentation does not make
a second span for the same request.

The query's text goes on a span only when asked (``capture_query=True`` or
``AUDIOSCAPE_OTEL_CAPTURE_QUERY=1``): a player's search may say more than an
operator should see. The API key is never on a span: `url.full` is the bare
URL, and no header is recorded.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import attrs

from ._constants import OTEL_CAPTURE_QUERY_ENV, OTEL_PROPAGATE_ENV
from ._exceptions import APIStatusError, AudioScapeError, InvalidParameterError
from ._version import __version__

if TYPE_CHECKING:
    import httpx

    from ._models import SearchResponse

__all__ = ["Telemetry", "sink_for"]

#: Seconds a client that found only the API's default providers waits before looking again.
RECHECK = 0.1
#: A walk's span holds at most this many page events; the counts say the rest.
MAX_PAGE_EVENTS = 100
#: The buckets the HTTP conventions advise for ``http.client.request.duration`` (seconds).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidParameterError(name, f"must be 1 or 0 (true or false), got {raw[:20]!r}")


def _check_bool(_instance: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidParameterError(
            f"telemetry.{attribute.name}", f"must be True or False, got {value!r:.40}"
        )


@attrs.frozen
class Telemetry:
    """The OpenTelemetry switches of a client: ``AsyncClient(telemetry=Telemetry(...))``.

    ```python
    client = AsyncClient(telemetry=Telemetry(capture_query=True))
    ```

    Without the ``otel`` extra (``opentelemetry-api``), or with no tracer or
    meter provider configured, nothing is recorded and nothing is paid.
    `enabled` False turns it off for this client. `capture_query` puts the
    query's text on the ``audioscape.search`` span (default: the
    ``AUDIOSCAPE_OTEL_CAPTURE_QUERY`` environment variable, else off);
    `propagate` sends the trace context in a ``traceparent`` header (default:
    ``AUDIOSCAPE_OTEL_PROPAGATE``, else on). `tracer_provider` and
    `meter_provider` stand in for the global ones.
    """

    enabled: bool = attrs.field(default=True, validator=_check_bool)
    capture_query: bool = attrs.field(
        factory=lambda: _env_flag(OTEL_CAPTURE_QUERY_ENV, False), validator=_check_bool
    )
    propagate: bool = attrs.field(
        factory=lambda: _env_flag(OTEL_PROPAGATE_ENV, True), validator=_check_bool
    )
    tracer_provider: Any = attrs.field(default=None, eq=False)
    meter_provider: Any = attrs.field(default=None, eq=False)


_importable: bool | None = None


def sink_for(telemetry: object) -> Sink | None:
    """A client's sink for `telemetry` (None: the defaults), or None when off or not installed."""
    global _importable
    if telemetry is None:
        settings = Telemetry()
    elif isinstance(telemetry, Telemetry):
        settings = telemetry
    else:
        raise InvalidParameterError(
            "telemetry", f"must be a Telemetry or None, got {type(telemetry).__name__}"
        )
    if not settings.enabled:
        return None
    if _importable is None:  # once per process: a file-system lookup, no import
        import importlib.util

        try:
            _importable = importlib.util.find_spec("opentelemetry.trace") is not None
        except (ImportError, ValueError):
            _importable = False
    return Sink(settings) if _importable else None


def error_type(error: BaseException) -> str:
    """``error.type`` as the conventions say: the status code, else the exception's class."""
    if isinstance(error, APIStatusError):
        return str(error.status_code)
    cls = type(error)
    if isinstance(error, AudioScapeError):
        return f"audioscape_async.{cls.__qualname__}"
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


class _Instruments:
    """The metric instruments of one meter."""

    __slots__ = ("breaker", "cache", "duration", "rate_wait", "retries")

    def __init__(self, meter: Any) -> None:
        self.duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.retries = meter.create_counter(
            "audioscape.client.retries", unit="{retry}", description="Retries of failed attempts."
        )
        self.rate_wait = meter.create_histogram(
            "audioscape.client.rate_limit.wait.duration",
            unit="s",
            description="Time a call waited at the rate gate for its turn.",
        )
        self.cache = meter.create_counter(
            "audioscape.client.cache.lookups",
            unit="{lookup}",
            description="Search cache lookups, by result.",
        )
        self.breaker = meter.create_counter(
            "audioscape.client.breaker.transitions",
            unit="{transition}",
            description="Circuit breaker state changes, by the state entered.",
        )


class Sink:
    """One client's OpenTelemetry: the cached tracer and instruments of the providers in force."""

    __slots__ = (
        "_api",
        "_instruments",
        "_meter_provider",
        "_tracer",
        "_tracer_provider",
        "_unheard_until",
        "settings",
    )

    def __init__(self, settings: Telemetry) -> None:
        self.settings = settings
        self._api: _Api | None = None
        self._tracer_provider: object = None
        self._tracer: Any = None
        self._meter_provider: object = None
        self._instruments: _Instruments | None = None
        #: Until when (monotonic) the default providers are taken as still in force.
        self._unheard_until = 0.0

    def api(self) -> _Api:
        api = self._api
        if api is None:
            api = self._api = _Api.load()
        return api

    def tracer(self) -> Any:
        """The tracer of the provider in force, or None while it is the API's default."""
        api = self.api()
        provider = self.settings.tracer_provider or api.trace.get_tracer_provider()
        if provider is not self._tracer_provider:
            tracer = None
            if not isinstance(provider, api.noop_tracer_providers):
                tracer = provider.get_tracer("audioscape_async", __version__)
            self._tracer, self._tracer_provider = tracer, provider
        return self._tracer

    def instruments(self) -> _Instruments | None:
        """The instruments of the meter provider in force, or None while it is the API's default."""
        api = self.api()
        provider = self.settings.meter_provider or api.metrics.get_meter_provider()
        if provider is not self._meter_provider:
            instruments = None
            if not api.is_noop_meter_provider(provider):
                instruments = _Instruments(provider.get_meter("audioscape_async", __version__))
            self._instruments, self._meter_provider = instruments, provider
        return self._instruments

    def call(self, body: bytes, walk: WalkTrace | None) -> CallTrace | None:
        """One search's trace, or None when no provider listens (or instrumentation is off)."""
        now = time.monotonic()
        if now < self._unheard_until:
            return None
        tracer = self.tracer()
        instruments = self.instruments()
        if tracer is None and instruments is None:
            self._unheard_until = now + RECHECK
            return None
        api = self.api()
        if api.context.get_value(api.suppress_all):
            return None
        return CallTrace(self, api, tracer, instruments, body, walk)

    def walk(self, query: str, filters: dict[str, object] | None) -> WalkTrace | None:
        """One walk's span, started at its first page; None when no tracer provider listens."""
        tracer = self.tracer()
        if tracer is None:
            return None
        return WalkTrace(self.api(), tracer, self._query_attributes(query, filters))

    def _query_attributes(self, query: str, filters: object) -> dict[str, Any]:
        attributes: dict[str, Any] = {"audioscape.query.length": len(query)}
        if filters:
            attributes["audioscape.filters"] = json.dumps(
                filters, separators=(",", ":"), sort_keys=True, ensure_ascii=False
            )
        if self.settings.capture_query:
            attributes["audioscape.query"] = query
        return attributes


@attrs.frozen
class _Api:
    """The parts of ``opentelemetry-api`` used here, imported once (at a client's first call)."""

    trace: Any
    metrics: Any
    context: Any
    propagate: Any
    noop_tracer_providers: tuple[type, ...]
    proxy_meter_provider: object
    noop_meter_provider: type
    suppress_all: Any
    suppress_http: Any

    @classmethod
    def load(cls) -> _Api:
        from opentelemetry import context, metrics, propagate, trace
        from opentelemetry.metrics import _internal as metrics_internal

        # The keys every instrumentation reads to stand down; private names, the API's own.
        suppress_all = getattr(context, "_SUPPRESS_INSTRUMENTATION_KEY", None)
        suppress_http = getattr(context, "_SUPPRESS_HTTP_INSTRUMENTATION_KEY", None)
        return cls(
            trace=trace,
            metrics=metrics,
            context=context,
            propagate=propagate,
            noop_tracer_providers=(trace.ProxyTracerProvider, trace.NoOpTracerProvider),
            # The API's default meter provider (a proxy until one is set) has no public class.
            proxy_meter_provider=getattr(metrics_internal, "_PROXY_METER_PROVIDER", None),
            noop_meter_provider=metrics.NoOpMeterProvider,
            suppress_all=suppress_all if suppress_all is not None else "",
            suppress_http=suppress_http if suppress_http is not None else "",
        )

    def is_noop_meter_provider(self, provider: object) -> bool:
        return provider is self.proxy_meter_provider or isinstance(
            provider, self.noop_meter_provider
        )


class CallTrace:
    """One search's operation span, its attempt spans, and the metrics of its events."""

    __slots__ = (
        "_api",
        "_attempt",
        "_attributes",
        "_instruments",
        "_sink",
        "_span",
        "_started",
        "_token",
        "_tracer",
    )

    def __init__(
        self,
        sink: Sink,
        api: _Api,
        tracer: Any,
        instruments: _Instruments | None,
        body: bytes,
        walk: WalkTrace | None,
    ) -> None:
        self._sink = sink
        self._api = api
        self._tracer = tracer
        self._instruments = instruments
        self._span: Any = None
        self._attempt: Any = None
        self._token: object = None
        self._started = 0.0
        self._attributes: dict[str, Any] = {}
        if tracer is not None:
            request = json.loads(body)
            attributes = sink._query_attributes(request["query"], request.get("filters"))
            attributes["audioscape.limit"] = request["limit"]
            attributes["audioscape.offset"] = request["offset"]
            parent = walk.context() if walk is not None else None
            self._span = tracer.start_span(
                "audioscape.search",
                context=parent,
                kind=api.trace.SpanKind.INTERNAL,
                attributes=attributes,
            )

    async def run(self, call: Awaitable[SearchResponse]) -> SearchResponse:
        """Await the call with its operation span current; end the span with its outcome."""
        span = self._span
        if span is None:
            return await call
        api = self._api
        token = api.context.attach(api.trace.set_span_in_context(span))
        try:
            page = await call
        except BaseException as error:
            _set_error(api, span, error)
            raise
        else:
            span.set_attribute("audioscape.attempts", page.attempts)
            if page.cache_status is not None:
                span.set_attribute("audioscape.cache.result", page.cache_status)
            return page
        finally:
            api.context.detach(token)
            span.end()

    def attempt(
        self, method: str, url: httpx.URL, number: int, headers: httpx.Headers
    ) -> httpx.Headers | None:
        """Attempt `number` goes: its span (current until it ends), and the headers with its
        context (the request event's data, without building the event a hook would get)."""
        api = self._api
        port = url.port or (443 if url.scheme == "https" else 80)
        self._attributes = {
            "http.request.method": method,
            "server.address": url.host,
            "server.port": port,
        }
        self._started = time.perf_counter()
        tracer = self._tracer
        if tracer is None:
            return None
        context = api.context
        if self._span is not None and not context.get_value(api.suppress_http):
            attributes = dict(self._attributes)
            attributes["url.full"] = str(url)  # the bare URL: its userinfo went to a header
            if number > 1:
                attributes["http.request.resend_count"] = number - 1
            span = self._attempt = tracer.start_span(
                method, kind=api.trace.SpanKind.CLIENT, attributes=attributes
            )
            current = api.trace.set_span_in_context(span)
            current = context.set_value(api.suppress_http, True, current)
            self._token = context.attach(current)
        if not self._sink.settings.propagate:
            return None
        carrier: dict[str, str] = {}
        api.propagate.inject(carrier)
        if not carrier:
            return None
        from ._config import SecretHeaders

        sent = SecretHeaders(headers)  # masked in a repr, as the headers it copies
        sent.update(carrier)
        return sent

    def answered(self, status: int) -> None:
        self._attributes["http.response.status_code"] = status
        if status >= 400:
            self._attributes["error.type"] = str(status)
        self._end_attempt(None)

    def failed(self, error: BaseException) -> None:
        self._attributes["error.type"] = error_type(error)
        self._end_attempt(error)

    def _end_attempt(self, error: BaseException | None) -> None:
        attributes = self._attributes
        if self._instruments is not None and self._started:
            self._instruments.duration.record(time.perf_counter() - self._started, attributes)
        self._started = 0.0
        span, self._attempt = self._attempt, None
        if span is None:
            return
        api = self._api
        api.context.detach(self._token)
        self._token = None
        for name in ("http.response.status_code", "error.type"):
            if name in attributes:
                span.set_attribute(name, attributes[name])
        if "error.type" in attributes:
            status = api.trace.Status(api.trace.StatusCode.ERROR, attributes["error.type"])
            span.set_status(status)
        span.end()

    # What each stage told the call's `_hooks.CallWatch` (the fields of its event).

    def cache(self, result: str) -> None:
        if self._instruments is not None and result != "stored":
            self._instruments.cache.add(1, {"audioscape.cache.result": result})

    def retry(self, error: BaseException) -> None:
        if self._instruments is not None:
            self._instruments.retries.add(1, {"error.type": error_type(error)})

    def rate_limit(self, kind: str, seconds: float) -> None:
        if self._instruments is not None and kind == "wait":
            self._instruments.rate_wait.record(seconds)
        if self._span is not None:
            self._span.add_event(f"audioscape.rate_limit.{kind}", {"audioscape.seconds": seconds})

    def breaker(self, state: str) -> None:
        if self._instruments is not None:
            self._instruments.breaker.add(1, {"audioscape.breaker.state": state})


def _set_error(api: _Api, span: Any, error: BaseException) -> None:
    kind = error_type(error)
    span.set_attribute("error.type", kind)
    span.set_status(api.trace.Status(api.trace.StatusCode.ERROR, kind))


class WalkTrace:
    """One walk's span: started at its first page's request, ended when the walk ends."""

    __slots__ = ("_api", "_attributes", "_context", "_span", "_tracer", "pages", "tracks")

    def __init__(self, api: _Api, tracer: Any, attributes: dict[str, Any]) -> None:
        self._api = api
        self._tracer = tracer
        self._attributes = attributes
        self._span: Any = None
        self._context: Any = None
        self.pages = 0
        self.tracks = 0

    def context(self) -> Any:
        """The context its pages' spans start in (the walk's span, started now if need be)."""
        if self._span is None:
            self._span = self._tracer.start_span(
                "audioscape.walk",
                kind=self._api.trace.SpanKind.INTERNAL,
                attributes=self._attributes,
            )
            self._context = self._api.trace.set_span_in_context(self._span)
        return self._context

    def page(self, offset: int, page: SearchResponse, new_tracks: int) -> None:
        self.pages += 1
        self.tracks += new_tracks
        if self._span is not None and self.pages <= MAX_PAGE_EVENTS:
            self._span.add_event(
                "audioscape.page",
                {
                    "audioscape.offset": offset,
                    "audioscape.page.tracks": len(page.tracks),
                    "audioscape.page.new_tracks": new_tracks,
                },
            )

    def close(self, error: BaseException | None) -> None:
        span, self._span = self._span, None
        if span is None:
            return
        span.set_attribute("audioscape.walk.pages", self.pages)
        span.set_attribute("audioscape.walk.tracks", self.tracks)
        if self.pages > MAX_PAGE_EVENTS:
            span.set_attribute("audioscape.walk.page_events_dropped", self.pages - MAX_PAGE_EVENTS)
        if error is not None:
            _set_error(self._api, span, error)
        span.end()

"""Event hooks: a typed SDK event for every stage of a call, in httpx's `event_hooks` shape.

``AsyncClient(event_hooks={"retry": [count], "request": [log]})`` takes, per
event name, a list of callables, sync or async; each is called with one
frozen event object (never an `httpx.Request` or `Response`):

=============  ==================  ===============================================
name           event               emitted by
=============  ==================  ===============================================
``request``    `RequestEvent`      the transport stage, before each attempt goes
``response``   `ResponseEvent`     the transport stage, when an attempt's answer is in
``retry``      `RetryEvent`        the retry stage, before each retry's sleep
``rate_limit`` `RateLimitEvent`    the gate: a wait for a turn, or a pause a 429 set
``cache``      `CacheEvent`        the cache stage: the page's `cache_status`
``breaker``    `BreakerEvent`      the breaker stage, when this call changed its state
``page``       `PageEvent`         a walk or crawl, as it delivers each page
=============  ==================  ===============================================

Hooks observe only: an event holds copies, and what a hook returns is
ignored. A hook that raises is logged (once per hook, at WARNING) and the call
goes on unharmed; a slow hook slows the call that awaits it, which is the
caller's business. An event never holds the API key: a request's headers are
shown without `SECRET_HEADERS`, its URL without userinfo.

Each stage has one emission point, a method of `CallWatch` (one per call) or
`WalkWatch` (one per walk). OpenTelemetry (`_telemetry`) is told the same
things at the same points (its `CallTrace` and `WalkTrace`); an event object
is built only for an event some hook listens to. A client with no hooks and
no OpenTelemetry (disabled, or not installed) has no `Observers` (None), and
each stage pays one ``is not None`` test; with OpenTelemetry installed but no
provider configured, `Observers.call` returns None at once
(`_telemetry.RECHECK`) and the stages pay the same test.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, get_args

import attrs

from ._exceptions import InvalidParameterError
from ._logs import logger

if TYPE_CHECKING:
    import httpx

    from ._models import SearchResponse

__all__ = [
    "BreakerEvent",
    "CacheEvent",
    "CallWatch",
    "EventHook",
    "Observers",
    "PageEvent",
    "RateLimitEvent",
    "RequestEvent",
    "ResponseEvent",
    "RetryEvent",
    "WalkWatch",
    "emit_cache",
]

#: The events a hook may be given for, as `event_hooks` keys.
EventName = Literal["request", "response", "retry", "rate_limit", "cache", "breaker", "page"]
EVENT_NAMES: tuple[str, ...] = get_args(EventName)
#: What a cache lookup came to (`CacheEvent.result`).
CacheResult = Literal["hit", "miss", "stale", "coalesced", "refreshed", "stored"]
#: A circuit breaker's state (`BreakerEvent.state`), as `CircuitBreaker.state` says it.
BreakerState = Literal["closed", "open", "half_open"]


def _redacted(headers: httpx.Headers) -> dict[str, str]:
    """The headers without a secret one (`SECRET_HEADERS`), as a new dict."""
    from ._config import SECRET_HEADERS

    return {
        name: value for name, value in headers.multi_items() if name.lower() not in SECRET_HEADERS
    }


@attrs.frozen
class RequestEvent:
    """An HTTP attempt about to go: its method, URL, headers and number (1 for the first).

    `url` has no userinfo and `headers` leave out the API key and every
    credential (``x-api-key``, ``authorization``, ``proxy-authorization``,
    ``cookie``).
    """

    method: str
    url: str
    headers: Mapping[str, str] = attrs.field(hash=False)
    attempt: int


@attrs.frozen
class ResponseEvent:
    """An HTTP attempt's answer, whatever its status: before it becomes a page or an error.

    `elapsed` is the attempt's seconds; `request_id` the server's id for it, if sent.
    """

    method: str
    url: str
    status_code: int
    headers: Mapping[str, str] = attrs.field(hash=False)
    elapsed: float
    attempt: int
    request_id: str | None


@attrs.frozen
class RetryEvent:
    """A failed attempt that will be retried: its `error`, the `delay` before the retry
    (seconds), and the number of the `attempt` that failed."""

    error: BaseException = attrs.field(eq=False)
    delay: float
    attempt: int


@attrs.frozen
class RateLimitEvent:
    """The rate gate held a call: ``kind="wait"``, it waited `seconds` for its turn (the
    client-side rate or an earlier 429's pause); ``kind="pause"``, a 429 or 503 with
    ``Retry-After`` paused every call of this API key for `seconds`."""

    kind: Literal["wait", "pause"]
    seconds: float


@attrs.frozen
class CacheEvent:
    """What the `SearchCache` did for a call.

    ``"hit"`` (a fresh page from it), ``"miss"`` (asked upstream), ``"coalesced"``
    (shared an identical call in flight), ``"stale"`` (a stale page served when
    upstream failed), ``"refreshed"`` (a stale page renewed in the background),
    ``"stored"`` (an answer written to it).
    """

    result: CacheResult


@attrs.frozen
class BreakerEvent:
    """This call's attempt changed the `CircuitBreaker`'s state to `state`."""

    state: BreakerState


@attrs.frozen
class PageEvent:
    """A walk or crawl delivered a page (in offset order): where it was asked, the page,
    how many of its tracks were new to the walk, and how many pages it has delivered."""

    offset: int
    page: SearchResponse = attrs.field(eq=False)
    new_tracks: int
    pages: int


#: Any event a hook may be given.
Event: TypeAlias = (
    "RequestEvent | ResponseEvent | RetryEvent | RateLimitEvent | CacheEvent"
    " | BreakerEvent | PageEvent"
)


class EventHook(Protocol):
    """A hook: a function of one event (`RequestEvent`, `RetryEvent`, ...), sync or async.

    What it returns (or its coroutine returns) is ignored.

    ```python
    retries = 0

    def count_retry(event: RetryEvent) -> None:
        global retries
        retries += 1

    client = AsyncClient(event_hooks={"retry": [count_retry]})
    ```
    """

    def __call__(self, event: Any, /) -> object: ...


#: What `event_hooks` takes: a list of hooks per event name.
EventHooks: TypeAlias = Mapping[str, Sequence[EventHook]]


def check_event_hooks(
    event_hooks: object, base: Mapping[str, tuple[EventHook, ...]] | None = None
) -> dict[str, tuple[EventHook, ...]]:
    """`base`'s hooks with `event_hooks`' appended, each event's list checked."""
    hooks = dict(base or {})
    if event_hooks is None:
        return hooks
    if not isinstance(event_hooks, Mapping):
        raise InvalidParameterError(
            "event_hooks",
            f"must be a dict from event name to a list of callables, "
            f"got {type(event_hooks).__name__}",
        )
    for name, given in event_hooks.items():
        if name not in EVENT_NAMES:
            known = ", ".join(EVENT_NAMES)
            raise InvalidParameterError(
                "event_hooks", f"unknown event {name!r:.40}; the events are {known}"
            )
        if callable(given) or isinstance(given, (str, bytes)) or not isinstance(given, Iterable):
            raise InvalidParameterError(
                "event_hooks", f"[{name!r}] must be a list of callables, got {type(given).__name__}"
            )
        listed = tuple(given)
        for hook in listed:
            if not callable(hook):
                raise InvalidParameterError(
                    "event_hooks", f"[{name!r}] holds {type(hook).__name__}, not a callable"
                )
        if listed:
            hooks[name] = hooks.get(name, ()) + listed
    return hooks


class Observers:
    """What observes the calls of one client (or `with_options` copy): hooks and OpenTelemetry.

    A client with neither has none (None): see the module docstring.
    """

    __slots__ = ("_failed", "hooks", "sink")

    def __init__(
        self,
        hooks: dict[str, tuple[EventHook, ...]],
        sink: Any,  # a `_telemetry.Sink` (typed loosely: `_telemetry` is the one importing here)
        failed: set[int] | None = None,
    ) -> None:
        self.hooks = hooks
        self.sink = sink
        #: The ids of hooks that raised and were logged (shared with copies: logged once).
        self._failed: set[int] = set() if failed is None else failed

    @classmethod
    def build(cls, event_hooks: object, telemetry: object) -> Observers | None:
        """A new client's observers, or None when nothing observes."""
        from ._telemetry import sink_for

        hooks = check_event_hooks(event_hooks)
        sink = sink_for(telemetry)
        return cls(hooks, sink) if hooks or sink is not None else None

    @staticmethod
    def extended(observers: Observers | None, event_hooks: object) -> Observers | None:
        """A `with_options` copy's: `observers`' hooks with `event_hooks` appended per event."""
        if event_hooks is None:
            return observers
        base = observers.hooks if observers is not None else None
        hooks = check_event_hooks(event_hooks, base)
        if observers is None:
            return Observers(hooks, None) if hooks else None
        return Observers(hooks, observers.sink, observers._failed)

    def call(self, body: bytes, walk: WalkWatch | None = None) -> CallWatch | None:
        """One search's watch, or None when nothing observes it now (no active provider)."""
        sink = self.sink
        trace = sink.call(body, walk.trace if walk is not None else None) if sink else None
        if trace is None and not self.hooks:
            return None
        return CallWatch(self, trace)

    def walk(self, query: str, filters: dict[str, object] | None) -> WalkWatch | None:
        """One walk's watch (its page events and span), or None when nothing observes it."""
        trace = self.sink.walk(query, filters) if self.sink is not None else None
        if trace is None and "page" not in self.hooks:
            return None
        return WalkWatch(self, trace)

    async def run(self, name: str, event: object) -> None:
        """Give `event` to every hook of `name`; one that raises is logged once and skipped."""
        for hook in self.hooks.get(name, ()):
            try:
                result = hook(event)
                if inspect.isawaitable(result):
                    await result
            except Exception as error:
                if id(hook) not in self._failed:
                    self._failed.add(id(hook))
                    logger.warning(
                        "event hook %r for %r raised %s: %s (logged once; the call goes on)",
                        hook, name, type(error).__name__, error,
                    )  # fmt: skip


#: The watch of the call running in this context: how `_cache` reports what it did
#: (`emit_cache`) without a watch passed down (a background refresh inherits it).
_current: contextvars.ContextVar[CallWatch | None] = contextvars.ContextVar(
    "audioscape_call_watch", default=None
)


async def emit_cache(result: CacheResult) -> None:
    """Tell the observers of the call running here (if any) what the cache did."""
    watch = _current.get()
    if watch is not None:
        await watch.cache(result)


class CallWatch:
    """One search's emission points, one per stage (see the module docstring)."""

    __slots__ = ("_observers", "trace")

    def __init__(self, observers: Observers, trace: Any) -> None:
        self._observers = observers
        #: The call's `_telemetry.CallTrace`, or None: told the same as the hooks, per stage.
        self.trace = trace

    def adopt(self) -> None:
        """Make this watch current for the rest of the running task (a background
        refresh's, which runs in a context of its own: see `_background`)."""
        _current.set(self)

    async def run(self, call: Awaitable[SearchResponse]) -> SearchResponse:
        """Await the call under its operation span, with this watch current (`emit_cache`)."""
        token = _current.set(self)
        try:
            if self.trace is None:
                return await call
            page: SearchResponse = await self.trace.run(call)
            return page
        finally:
            _current.reset(token)

    async def cache(self, result: str | None) -> None:
        if result is None:
            return
        if self.trace is not None:
            self.trace.cache(result)
        if "cache" in self._observers.hooks:
            await self._observers.run("cache", CacheEvent(result))  # type: ignore[arg-type]

    async def request(
        self, number: int, url: httpx.URL, headers: httpx.Headers
    ) -> httpx.Headers | None:
        """An attempt is about to go; the headers to send instead (a trace context), or None."""
        if "request" in self._observers.hooks:
            event = RequestEvent("POST", str(url), _redacted(headers), number)
            await self._observers.run("request", event)
        if self.trace is None:
            return None
        sent: httpx.Headers | None = self.trace.attempt("POST", url, number, headers)
        return sent

    async def response(
        self,
        number: int,
        url: httpx.URL,
        status: int,
        headers: httpx.Headers,
        elapsed: float,
        request_id: str | None,
    ) -> None:
        if self.trace is not None:
            self.trace.answered(status)
        if "response" in self._observers.hooks:
            event = ResponseEvent(
                "POST", str(url), status, _redacted(headers), elapsed, number, request_id
            )
            await self._observers.run("response", event)

    def failed(self, error: BaseException) -> None:
        """An attempt ended without an answer (its span ends; no hook: there is no response)."""
        if self.trace is not None:
            self.trace.failed(error)

    async def retry(self, error: BaseException, delay: float, attempt: int) -> None:
        if self.trace is not None:
            self.trace.retry(error)
        if "retry" in self._observers.hooks:
            await self._observers.run("retry", RetryEvent(error, delay, attempt))

    async def rate_limit(self, kind: Literal["wait", "pause"], seconds: float) -> None:
        if self.trace is not None:
            self.trace.rate_limit(kind, seconds)
        if "rate_limit" in self._observers.hooks:
            await self._observers.run("rate_limit", RateLimitEvent(kind, seconds))

    async def breaker(self, state: BreakerState | None) -> None:
        if state is None:
            return
        if self.trace is not None:
            self.trace.breaker(state)
        if "breaker" in self._observers.hooks:
            await self._observers.run("breaker", BreakerEvent(state))


class WalkWatch:
    """One walk's emission point for its pages, and its span (`_telemetry.WalkTrace`)."""

    __slots__ = ("_observers", "pages", "trace")

    def __init__(self, observers: Observers, trace: Any) -> None:
        self._observers = observers
        #: The walk's `_telemetry.WalkTrace`, or None.
        self.trace = trace
        self.pages = 0

    async def page(self, offset: int, page: SearchResponse, new_tracks: int) -> None:
        self.pages += 1
        if self.trace is not None:
            self.trace.page(offset, page, new_tracks)
        if "page" in self._observers.hooks:
            await self._observers.run("page", PageEvent(offset, page, new_tracks, self.pages))

    def close(self, error: BaseException | None = None) -> None:
        """The walk ended (done, stopped early, or failed with `error`)."""
        if self.trace is not None:
            # Stopped early (a break, a cancellation) is not a failure of the walk.
            self.trace.close(error if isinstance(error, Exception) else None)

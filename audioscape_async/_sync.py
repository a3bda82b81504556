"""`Client`: the async core, run from blocking code through anyio's blocking portal.

The facade has no logic of its own: every method builds the `AsyncClient`
call it mirrors and runs it in the client's loop thread (`_LoopThread`), an
asyncio event loop that anyio's `BlockingPortal` serves from the client's
first call until it closes. The loop keeps running between calls, so
background work goes on while the caller's thread is elsewhere.

- A call is one hop there and back (`anyio.from_thread.run`). Ctrl-C in the
  thread that waits for it cancels it; its cleanup runs in the loop.
- A walk runs the very async generator `AsyncClient` returns, in one portal
  task that hands its items over a `_Handoff`: at most `ahead` items past
  those read, stopped and closed in the loop when the reader stops.
- `close()` stops the portal and cancels the calls in flight (their callers
  learn the client was closed), then closes the pool in the loop.
- In a forked child the parent's loop thread does not exist: the first call
  there starts a new one, and the core builds its own pool (`_context`).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import sys
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from concurrent.futures import CancelledError, Future
from contextlib import AbstractAsyncContextManager, nullcontext
from inspect import CORO_CREATED, getcoroutinestate
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import httpx
from anyio.from_thread import BlockingPortal

from ._client import AsyncClient
from ._config import TimeoutTypes
from ._constants import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    MAX_LIMIT,
)
from ._context import closed_error, fork_generation
from ._exceptions import AudioScapeError
from ._models import Track
from ._retry import RetryPolicy
from ._transport import TransportChoice

if TYPE_CHECKING:
    from anyio.lowlevel import EventLoopToken

    from ._breaker import CircuitBreaker
    from ._cache import SearchCache
    from ._crawl import Crawl, CrawlStats
    from ._hooks import EventHooks
    from ._ratelimit import RateLimit
    from ._telemetry import Telemetry

__all__ = ["Client", "SyncCrawl"]

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

#: The name of a `Client`'s event-loop thread.
LOOP_THREAD_NAME = "audioscape-client-loop"


class _LoopThread:
    """The event loop of a `Client` and its `with_options` copies, in a daemon thread.

    Started on the first call (a client that is never used starts no thread),
    again in a forked child, and stopped by `close`. The thread is a daemon, so
    a client never keeps a script from exiting; `atexit` closes forgotten ones.
    A call is one hop there and back (`anyio.from_thread.run`: half the CPU of
    a portal task, which waits for its task to start); a walk is a portal task.
    """

    def __init__(self) -> None:
        self.closed = False
        self._lock = threading.Lock()
        self._generation = fork_generation()
        self._started: Future[BlockingPortal] | None = None
        self._thread: threading.Thread | None = None
        self._cleanup: Callable[[], Coroutine[Any, Any, None]] | None = None
        # In the loop thread only: the calls running, and whether the loop is closing.
        self._calls: set[_Call] = set()
        self._closing = False
        self.token: EventLoopToken

    def portal(self) -> BlockingPortal:
        """The running portal, started now if need be; refuses a closed client and its own loop."""
        started = self._started
        if started is None or self._generation != fork_generation():
            started = self._start()
        elif self.closed:
            raise closed_error("Client")
        if self._thread is threading.current_thread():
            raise AudioScapeError(
                "a Client cannot be called from its own event-loop thread (from an "
                "on_progress hook, say): it would wait on itself"
            )
        # An interrupt here leaves the thread starting; the next call finds it.
        return started.result()

    def _start(self) -> Future[BlockingPortal]:
        if self._generation != fork_generation():
            # A forked child: the parent's thread is not here (and its lock may be held).
            self.__init__()  # type: ignore[misc]
        with self._lock:
            if self.closed:
                raise closed_error("Client")
            if self._started is None:
                self._started = Future()
                self._thread = threading.Thread(
                    target=self._serve, args=(self._started,), name=LOOP_THREAD_NAME, daemon=True
                )
                self._thread.start()
            return self._started

    def _serve(self, started: Future[BlockingPortal]) -> None:
        async def main() -> None:
            self.token = anyio.lowlevel.current_token()
            idle = anyio.Event()
            async with BlockingPortal() as portal:
                started.set_result(portal)
                await portal.sleep_until_stopped()
            # Closed: the walks have ended (cancelled); so do the calls, then the pool goes.
            self._closing = True
            for call in self._calls:
                call.cancel(idle)
            if self._calls:
                await idle.wait()
            if self._cleanup is not None:
                await self._cleanup()

        try:
            anyio.run(main)
        except BaseException as error:  # pragma: no cover - anyio failed to start a loop
            if not started.done():
                started.set_exception(error)

    def call(self, call: Coroutine[Any, Any, T]) -> T:
        """Run `call` in the loop and wait for it; an interrupt of the wait cancels it."""
        box = _Call()
        token = None
        try:
            self.portal()
            token = self.token
            return anyio.from_thread.run(self._run, call, box, token=token)
        except _Escaped as escaped:
            raise escaped.error from None
        except CancelledError:  # the loop ended under it
            raise closed_error("Client", during_call=True) from None
        except BaseException as error:
            if not isinstance(error, Exception) and token is not None:
                # An interrupt while waiting: the call ends in the loop, cleaned up
                # (or, if it has not started yet, never starts).
                with contextlib.suppress(RuntimeError):
                    anyio.from_thread.run_sync(box.cancel, token=token)
            if not box.started and getcoroutinestate(call) == CORO_CREATED:
                call.close()  # never ran: no "never awaited" warning
            if isinstance(error, RuntimeError) and self.closed:  # the loop has just ended
                raise closed_error("Client") from None
            raise

    async def _run(self, call: Coroutine[Any, Any, T], box: _Call) -> T:
        box.started = True
        with anyio.CancelScope() as box.scope:
            if box.cancelled or self._closing:
                call.close()
                raise closed_error("Client", during_call=True)
            self._calls.add(box)
            try:
                return await call
            except (Exception, anyio.get_cancelled_exc_class()):
                raise
            except BaseException as error:
                # A KeyboardInterrupt from a hook, say: raised in the loop, it would end it.
                raise _Escaped(error) from None
            finally:
                self._calls.discard(box)
                if box.idle is not None and not self._calls:
                    box.idle.set()
        # Cancelled by close (or by an interrupted caller).
        raise closed_error("Client", during_call=True)

    def submit(self, call: Coroutine[Any, Any, T]) -> Future[T]:
        """Start `call` as a task of the portal; its future."""
        try:
            return self.portal().start_task_soon(self._run, call, _Call())
        except BaseException as error:
            if getcoroutinestate(call) == CORO_CREATED:
                call.close()  # never ran: no "never awaited" warning
            if isinstance(error, RuntimeError) and self.closed:  # the portal has just stopped
                raise closed_error("Client") from None
            raise

    def close(self, cleanup: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Cancel every call, run `cleanup` in the loop, stop the thread. Idempotent."""
        if self._thread is threading.current_thread():
            raise AudioScapeError("a Client cannot be closed from its own event-loop thread")
        with self._lock:
            if self.closed:
                return
            self.closed = True
            started, thread = self._started, self._thread
        if started is None or self._generation != fork_generation():
            return  # no loop ever ran here (a forked child's is its parent's)
        self._cleanup = cleanup
        try:
            portal = started.result()
            portal.start_task_soon(portal.stop, True)
        finally:
            assert thread is not None
            thread.join()


class _Call:
    """One call in the loop: how to cancel it, from the loop thread."""

    __slots__ = ("cancelled", "idle", "scope", "started")

    def __init__(self) -> None:
        self.started = self.cancelled = False
        self.scope: anyio.CancelScope | None = None
        self.idle: anyio.Event | None = None  # set when the last call ends, at close

    def cancel(self, idle: anyio.Event | None = None) -> None:
        self.cancelled, self.idle = True, idle
        if self.scope is not None:
            self.scope.cancel()


class _Escaped(Exception):
    """A KeyboardInterrupt or SystemExit raised in the loop (by an on_progress hook, say),
    carried to the waiting thread: raised in the loop, it would end the loop for every caller."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(repr(error))
        self.error = error


def _wait(future: Future[T]) -> T:
    try:
        return future.result()
    except _Escaped as escaped:
        raise escaped.error from None
    except CancelledError:
        raise closed_error("Client", during_call=True) from None  # nobody else cancels a walk


class _Handoff:
    """A walk's items, from its task in the loop to the thread that reads them.

    The walk runs at most `ahead` items past those read, then waits until the
    reader has taken them all: the reader's thread hops to the loop once per
    `ahead` items, not per item.
    """

    def __init__(self, loop: _LoopThread, ahead: int) -> None:
        self._loop = loop
        self._ahead = ahead
        self._items: deque[Any] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._room: anyio.Event | None = None
        self.ended = False

    async def pump(
        self, items: Callable[[], AsyncIterator[Any]], scope: AbstractAsyncContextManager[object]
    ) -> None:
        try:
            async with scope:
                walk = items()
                try:
                    async for item in walk:
                        with self._ready:
                            self._items.append(item)
                            self._ready.notify()
                            room = None
                            if len(self._items) >= self._ahead:
                                room = self._room = anyio.Event()
                        if room is not None:
                            await room.wait()
                finally:
                    aclose = getattr(walk, "aclose", None)
                    if aclose is not None:
                        await aclose()
        finally:
            self.end()

    def end(self) -> None:
        with self._ready:
            self.ended = True
            self._ready.notify_all()

    def read(self, pumping: Future[None]) -> Iterator[Any]:
        try:
            while True:
                with self._ready:
                    self._ready.wait_for(lambda: self._items or self.ended)
                    if self._loop.closed:
                        raise closed_error("Client", during_call=True)
                    if not self._items:
                        break
                    item = self._items.popleft()
                    room = None
                    if not self._items:  # drained: let the walk fill up again
                        room, self._room = self._room, None
                if room is not None:
                    anyio.from_thread.run_sync(room.set, token=self._loop.token)
                yield item
            _wait(pumping)  # the walk ended: done, or failed (its error is raised here)
        finally:
            if not pumping.done():
                pumping.cancel()  # the walk is cancelled, and closed, in the loop
            with self._ready:
                self._ready.wait_for(lambda: self.ended)


def _blocking(
    method: Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[Client, P], R]:
    """`Client.<name>`: `AsyncClient.<name>`, run in the client's loop."""

    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._loop.call(method(self._async, *args, **kwargs))

    return _mirror(call, method)


def _walking(
    method: Callable[Concatenate[AsyncClient, P], AsyncIterator[T]],
    ahead: Callable[[Mapping[str, Any]], int],
) -> Callable[Concatenate[Client, P], Iterator[T]]:
    """`Client.<name>`: the async walk `AsyncClient.<name>`, run in the loop as you iterate."""

    def walk(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        self._check_open()
        items = method(self._async, *args, **kwargs)  # arguments checked now
        return self._walk(lambda: items, ahead=ahead(kwargs))

    return _mirror(walk, method)


def _crawling(
    method: Callable[Concatenate[AsyncClient, P], Crawl],
) -> Callable[Concatenate[Client, P], SyncCrawl]:
    """`Client.crawl`: the crawl in its ``async with`` (its streaming window), as you iterate."""

    def crawl(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> SyncCrawl:
        self._check_open()
        crawl = method(self._async, *args, **kwargs)
        tracks = self._walk(crawl.__aiter__, ahead=_page_size(kwargs), scope=crawl)
        return SyncCrawl(tracks, crawl.stats)

    return _mirror(crawl, method)


def _copying(
    method: Callable[Concatenate[AsyncClient, P], AsyncClient],
) -> Callable[Concatenate[Client, P], Client]:
    """`Client.with_options`: a `Client` around the copy, sharing this one's loop."""

    def with_options(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> Client:
        copy = object.__new__(Client)
        copy._async = method(self._async, *args, **kwargs)
        copy._owned, copy._generation = [], self._generation
        copy._is_copy, copy._loop = True, self._loop
        return copy

    return _mirror(with_options, method)


def _mirror(facade: F, method: Callable[..., Any]) -> F:
    """`facade`, named and documented as `method`, with its signature (`inspect` follows it)."""
    functools.update_wrapper(facade, method)
    facade.__qualname__ = f"Client.{method.__name__}"
    return facade


def _page_size(options: Mapping[str, Any]) -> int:
    page_size: int = options.get("page_size", MAX_LIMIT)
    return page_size


class Client:
    """The blocking client: the same constructor and methods as `AsyncClient`, no async.

    ```python
    with Client() as client:
        page = client.search("chill lo-fi beats", limit=5)
        for track in client.iter_tracks("chill lo-fi beats", max_items=50):
            print(track.name)
    ```

    It runs the async core in an event loop of its own, in a thread that
    starts with its first call and stops when it closes; so it works inside
    a notebook (a running loop), and any number of threads may share it. In
    a process forked from the one that made it, it starts another loop and
    pool of its own. `http_client`, if given, must be an `httpx.AsyncClient`:
    that is what the core runs on; unlike with `AsyncClient`, it is closed
    with this client, since its connections live in this client's event
    loop. Close the client (or leave its ``with`` block) to close the loop
    and stop its thread. Event hooks run in that thread too: keep them quick,
    and never call the client from one. Each method's documentation is that of the
    `AsyncClient` method it runs.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | httpx.URL | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        default_headers: Mapping[str, str] | None = None,
        rate_limit: RateLimit | None = None,
        transport: TransportChoice = "auto",
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        cache: SearchCache | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        trust_env: bool = True,
        event_hooks: EventHooks | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        options = dict(locals())  # every argument, as given: `AsyncClient` checks them
        del options["self"]
        # Built here, not in the loop thread: building does no I/O and binds to no
        # loop, a bad argument then starts no thread, and a warning (plain http)
        # names the caller's line rather than the loop thread's.
        self._async = AsyncClient(**options)
        # What lives in this client's event loop and closes with it (not in a
        # forked child: made before the fork, their connections are the parent's).
        backends = (getattr(rate_limit, "backend", None), getattr(cache, "backend", None))
        self._owned = [owned for owned in (http_client, *backends) if owned is not None]
        self._generation = fork_generation()
        self._is_copy = False
        self._loop = _LoopThread()
        _open_clients.add(self)

    def __repr__(self) -> str:
        inner = getattr(self, "_async", None)
        if inner is None:  # a traceback's locals, of a constructor that raised
            return "<Client (not built)>"
        return repr(inner).replace("<AsyncClient", "<Client", 1)

    def __reduce__(self) -> Any:
        raise TypeError("a Client cannot be pickled: make one in each process")

    @property
    def base_url(self) -> httpx.URL:
        """The base URL every request goes to (without any userinfo: that is sent as a header)."""
        return self._async.base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy in force."""
        return self._async.retry_policy

    @property
    def timeout(self) -> httpx.Timeout:
        """The timeout of one attempt."""
        return self._async.timeout

    @property
    def max_response_bytes(self) -> int:
        """The largest answer body read, decompressed."""
        return self._async.max_response_bytes

    @property
    def is_closed(self) -> bool:
        """Whether the client is closed (itself, or the client it was copied from)."""
        loop = getattr(self, "_loop", None)
        return loop is None or loop.closed

    def __enter__(self) -> Client:
        self._loop.call(self._async.__aenter__())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool and the event loop, stop its thread if any. Idempotent.

        Calls still running in other threads fail with an `AudioScapeError`
        that says the client was closed. On a `with_options` copy this does
        nothing: the loop is the original's.
        """
        if not self._is_copy:
            _open_clients.discard(self)
            self._loop.close(self._aclose)

    async def _aclose(self) -> None:
        await self._async.aclose()
        if self._generation == fork_generation():
            for owned in self._owned:
                await owned.aclose()  # a Redis backend reconnects if used again

    def __del__(self) -> None:
        # A client dropped without close() must not leave its thread behind; but
        # not from its own loop thread (it would wait on itself), nor at exit,
        # when atexit closed it already.
        loop = getattr(self, "_loop", None)
        if (
            loop is not None
            and not loop.closed
            and not getattr(self, "_is_copy", True)
            and not sys.is_finalizing()
            and loop._thread is not threading.current_thread()
            and not loop._lock.locked()
        ):
            self.close()

    def _walk(
        self,
        items: Callable[[], AsyncIterator[T]],
        ahead: int,
        scope: AbstractAsyncContextManager[object] | None = None,
    ) -> Iterator[T]:
        """Run the async walk `items()` in the loop (inside `scope`); yield what it yields."""
        handoff = _Handoff(self._loop, ahead)
        pumping = self._loop.submit(handoff.pump(items, scope or nullcontext()))
        yield from handoff.read(pumping)

    def _check_open(self) -> None:
        if self._loop.closed:
            raise closed_error("Client")

    # Each method runs the `AsyncClient` method of the same name: its signature
    # and documentation are that method's, its arguments are checked there.

    with_options = _copying(AsyncClient.with_options)
    search = _blocking(AsyncClient.search)
    crawl_to_file = _blocking(AsyncClient.crawl_to_file)
    warm = _blocking(AsyncClient.warm)
    #: A walk of pages runs one page ahead of your loop; of tracks, one page of tracks.
    iter_pages = _walking(AsyncClient.iter_pages, ahead=lambda options: 1)
    iter_tracks = _walking(AsyncClient.iter_tracks, ahead=_page_size)

    crawl = _crawling(AsyncClient.crawl)


class SyncCrawl:
    """A blocking iterator over every track of a crawl, with live `stats`."""

    def __init__(self, tracks: Iterator[Track], stats: CrawlStats) -> None:
        self._tracks = tracks
        self.stats = stats

    def __iter__(self) -> Iterator[Track]:
        return self._tracks

    def close(self) -> None:
        """Stop the crawl early; nothing keeps running."""
        close = getattr(self._tracks, "close", None)
        if close is not None:
            close()

    def to_arrow(self, batch_size: int = 10_000) -> Any:
        """The crawl as a `pyarrow.RecordBatchReader` of at most `batch_size` tracks a batch.

        What DuckDB and ``pyarrow.dataset`` read; memory holds one batch at a
        time. Needs pyarrow (the ``pandas`` extra).
        """
        from ._crawl import _arrow

        size = _arrow.check_batch_size(batch_size)
        pa = _arrow.pyarrow_module()
        pages = iter(lambda: list(itertools.islice(self._tracks, size)), [])
        return pa.RecordBatchReader.from_batches(_arrow.schema(), _arrow.batches(pages, size))

    def to_pandas(self) -> Any:
        """The whole crawl as a pandas DataFrame, one row per track (the ``pandas`` extra)."""
        from ._crawl import _arrow

        return _arrow.to_pandas(list(self.to_arrow()))


#: Clients not closed yet; the ones a script forgot are closed at exit, while
#: their loop threads still run (atexit runs before daemon threads are stopped).
_open_clients: weakref.WeakSet[Client] = weakref.WeakSet()


@atexit.register
def _close_forgotten_clients() -> None:
    for client in list(_open_clients):
        client.close()

"""`Client`: the async core, driven from blocking code.

The facade has no logic of its own. It owns one anyio blocking portal (one
event-loop thread) for its whole life, runs its `AsyncClient` inside that
loop, and forwards every call. Iterators run the async walk in one task and
hand pages over a stream that holds nothing: the walk is at most one page ahead
of the loop that reads it, and it stops when that loop stops.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import sys
import threading
import weakref
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable, Iterator, Mapping
from concurrent.futures import CancelledError, Future
from contextlib import AbstractAsyncContextManager, aclosing, nullcontext
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import anyio
import httpx
from anyio.from_thread import BlockingPortal

from ._client import AsyncClient
from ._config import TimeoutTypes
from ._constants import (
    DEFAULT_LIMIT,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_OFFSET,
    DEFAULT_TIMEOUT,
    MAX_LIMIT,
)
from ._crawl import CrawlStats, ProgressHook, Queries
from ._exceptions import AudioScapeError

if TYPE_CHECKING:
    from ._breaker import CircuitBreaker
    from ._cache import SearchCache
from ._models import Filters, SearchResponse, Track
from ._options import NOT_GIVEN, NotGiven
from ._ratelimit import RateLimit
from ._retry import RetryPolicy
from ._transport import TransportChoice

__all__ = ["Client"]

T = TypeVar("T")
U = TypeVar("U")
P = ParamSpec("P")
R = TypeVar("R")


def _mirrors(async_method: Callable[..., Any]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Give a blocking method the documentation of the async method it runs."""

    def mirror(method: Callable[P, R]) -> Callable[P, R]:
        method.__doc__ = async_method.__doc__
        return method

    return mirror


class _Runtime:
    """The event-loop thread of a `Client`, shared with its `with_options` copies."""

    __slots__ = ("__weakref__", "loop", "pid")

    def __init__(self) -> None:
        self.loop: _LoopThread | None = _LoopThread()
        self.pid = os.getpid()

    def require(self) -> _LoopThread:
        loop = self.loop
        if loop is None:
            raise AudioScapeError("this Client is closed; create a new one")
        if self.pid != os.getpid():
            raise AudioScapeError(
                "this Client was created before the process forked, and its event-loop "
                "thread stayed in the parent: create a new Client in each process"
            )
        if loop.is_current():
            raise AudioScapeError(
                "a Client cannot be called from its own event-loop thread (from an "
                "on_progress hook, say): it would wait on itself"
            )
        return loop


class Client:
    """The blocking client: the same constructor and methods as `AsyncClient`, no async.

    ```python
    with Client() as client:
        page = client.search("chill lo-fi beats", limit=5)
        for track in client.iter_tracks("chill lo-fi beats", max_items=50):
            print(track.name)
    ```

    It runs an event loop in a thread of its own, so it also works where a
    loop already runs (a notebook), and it may be shared by threads.
    `http_client`, if given, must be an `httpx.AsyncClient`: that is what the
    core runs on; unlike with `AsyncClient`, it is closed with this client,
    since its connections live in this client's event loop. Close the client
    (or leave its ``with`` block) to stop the thread. Each method's
    documentation is that of the `AsyncClient` method it runs.
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
    ) -> None:
        self._runtime: _Runtime | None = None
        # Built here, not in the loop thread: building does no I/O and binds to no
        # loop, a bad argument then starts no thread, and a warning (plain http)
        # names the caller's line rather than the loop thread's.
        self._async = AsyncClient(
            api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            http_client=http_client,
            default_headers=default_headers,
            rate_limit=rate_limit,
            transport=transport,
            max_response_bytes=max_response_bytes,
            cache=cache,
            circuit_breaker=circuit_breaker,
        )
        self._http_client = http_client
        # Redis connections belong to the loop that opened them: this client's.
        self._backends = {
            id(backend): backend
            for backend in (
                getattr(rate_limit, "backend", None),
                cache.backend if cache is not None else None,
            )
            if backend is not None
        }
        self._is_copy = False
        self._runtime = _Runtime()
        _open_clients.add(self)

    @_mirrors(AsyncClient.with_options)
    def with_options(
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx.URL | None = None,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        max_response_bytes: int | None = None,
    ) -> Client:
        copy = object.__new__(Client)
        copy._async = self._async.with_options(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            default_headers=default_headers,
            max_response_bytes=max_response_bytes,
        )
        copy._http_client = None
        copy._backends = {}
        copy._is_copy = True
        copy._runtime = self._runtime
        return copy

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
        runtime = self._runtime
        return runtime is None or runtime.loop is None

    def __enter__(self) -> Client:
        self._run(self._async.__aenter__())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool and stop the event-loop thread. Idempotent.

        Calls still running in other threads fail with an `AudioScapeError`
        that says the client was closed. On a `with_options` copy this does
        nothing: the thread is the original's.
        """
        runtime = self._runtime
        if self._is_copy or runtime is None:
            return
        with _close_lock:
            loop, runtime.loop = runtime.loop, None
        if loop is None:
            return
        _open_clients.discard(self)
        try:
            # Calls in flight end first, as closed, before the pool under them goes.
            loop.cancel_calls()
            loop.portal.call(self._async.aclose)
            if self._http_client is not None:
                # Your http_client's connections live in this event loop, which
                # stops now: nothing could close them later, so they close here.
                loop.portal.call(self._http_client.aclose)
            for backend in self._backends.values():
                loop.portal.call(backend.aclose)  # it reconnects if used again
        finally:
            loop.stop()

    def __del__(self) -> None:
        # A client dropped without close() must not leave its thread behind.
        # While the interpreter shuts down the loop thread may already be gone
        # (a daemon), and waiting on it would hang the exit: atexit closed it.
        runtime = getattr(self, "_runtime", None)
        loop = runtime.loop if runtime is not None else None
        if (
            loop is not None
            and not getattr(self, "_is_copy", True)
            and not loop.is_current()
            and not sys.is_finalizing()
            and runtime is not None
            and runtime.pid == os.getpid()
        ):
            self.close()

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        try:
            loop = self._require_loop()
        except BaseException:
            call.close()
            raise
        return loop.run(call)

    def _require_loop(self) -> _LoopThread:
        runtime = self._runtime
        if runtime is None:
            raise AudioScapeError("this Client is closed; create a new one")
        return runtime.require()

    @_mirrors(AsyncClient.search)
    def search(
        self,
        query: str,
        *,
        limit: int = DEFAULT_LIMIT,
        offset: int = DEFAULT_OFFSET,
        filters: Filters = None,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        cache: bool = True,
    ) -> SearchResponse:
        return self._run(
            self._async.search(
                query,
                limit=limit,
                offset=offset,
                filters=filters,
                timeout=timeout,
                max_retries=max_retries,
                retry=retry,
                extra_headers=extra_headers,
                deadline=deadline,
                cache=cache,
            )
        )

    @_mirrors(AsyncClient.iter_pages)
    def iter_pages(
        self,
        query: str,
        *,
        filters: Filters = None,
        page_size: int = MAX_LIMIT,
        max_items: int | None = None,
        offset: int = DEFAULT_OFFSET,
        concurrency: int = 1,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        cache: bool = False,
    ) -> Iterator[SearchResponse]:
        pages = self._async.iter_pages(
            query,
            filters=filters,
            page_size=page_size,
            max_items=max_items,
            offset=offset,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            extra_headers=extra_headers,
            deadline=deadline,
            cache=cache,
        )
        return self._drain(pages, lambda page: (page,))

    @_mirrors(AsyncClient.iter_tracks)
    def iter_tracks(
        self,
        query: str,
        *,
        filters: Filters = None,
        page_size: int = MAX_LIMIT,
        max_items: int | None = None,
        offset: int = DEFAULT_OFFSET,
        concurrency: int = 1,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        cache: bool = False,
    ) -> Iterator[Track]:
        # Page by page (a crawl's batches), not track by track: one hop to the
        # loop thread per page.
        crawl = self._async.crawl(
            query,
            filters=filters,
            page_size=page_size,
            max_items=max_items,
            offset=offset,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            extra_headers=extra_headers,
            deadline=deadline,
            cache=cache,
        )
        # Not the crawl's streaming window: a plain loop is at most a page ahead.
        return self._drain(crawl.batches(), lambda batch: batch)

    @_mirrors(AsyncClient.crawl)
    def crawl(
        self,
        query: str,
        *,
        filters: Filters = None,
        page_size: int = MAX_LIMIT,
        max_items: int | None = None,
        offset: int = DEFAULT_OFFSET,
        concurrency: int = 1,
        on_progress: ProgressHook | None = None,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        cache: bool = False,
    ) -> SyncCrawl:
        crawl = self._async.crawl(
            query,
            filters=filters,
            page_size=page_size,
            max_items=max_items,
            offset=offset,
            concurrency=concurrency,
            on_progress=on_progress,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            extra_headers=extra_headers,
            deadline=deadline,
            cache=cache,
        )
        return SyncCrawl(self._drain(crawl.batches(), lambda batch: batch, crawl), crawl.stats)

    @_mirrors(AsyncClient.crawl_to_file)
    def crawl_to_file(
        self,
        query: Queries,
        out: str | os.PathLike[str],
        *,
        filters: Filters = None,
        page_size: int = MAX_LIMIT,
        max_items: int | None = None,
        concurrency: int = 1,
        resume: bool = False,
        overwrite: bool = False,
        format: str | None = None,
        on_progress: ProgressHook | None = None,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> CrawlStats:
        return self._run(
            self._async.crawl_to_file(
                query,
                out,
                filters=filters,
                page_size=page_size,
                max_items=max_items,
                concurrency=concurrency,
                resume=resume,
                overwrite=overwrite,
                format=format,
                on_progress=on_progress,
                timeout=timeout,
                max_retries=max_retries,
                retry=retry,
                extra_headers=extra_headers,
                deadline=deadline,
            )
        )

    def _drain(
        self,
        source: AsyncGenerator[T, None],
        explode: Callable[[T], Iterable[U]],
        scope: AbstractAsyncContextManager[object] | None = None,
    ) -> Iterator[U]:
        """Run `source` in the loop thread; yield what `explode` makes of each item.

        `scope` (a crawl, whose streaming window is a task group) is entered
        around the whole walk, in the loop thread.
        """
        portal = self._require_loop().portal

        def items() -> Iterator[U]:
            send, receive = anyio.create_memory_object_stream[T](0)

            async def pump() -> None:
                async with send, scope or nullcontext(), aclosing(source):
                    async for item in source:
                        await send.send(item)

            try:
                future = portal.start_task_soon(pump)
            except RuntimeError:
                send.close()
                receive.close()
                self._require_loop()  # closed before the first item: say so
                raise
            try:
                while True:
                    try:
                        item = portal.call(receive.receive)
                    except anyio.EndOfStream:
                        break
                    except (RuntimeError, CancelledError):
                        self._require_loop()  # closed in the middle: say so
                        raise
                    yield from explode(item)
                # The stream ended: either the walk is done or it failed; say which.
                try:
                    future.result()
                except CancelledError:
                    raise _closed_mid_call() from None
            finally:
                # Cancelling the pump closes its end of the stream, which also
                # releases a receive left waiting by a KeyboardInterrupt.
                if not future.done():
                    future.cancel()
                if not self.is_closed:
                    portal.call(receive.aclose)
                else:
                    # The client was closed first and its loop has stopped, so
                    # nothing else can touch the streams: close them here.
                    send.close()
                    receive.close()

        return items()


def _closed_mid_call() -> AudioScapeError:
    return AudioScapeError("the Client was closed while this call was running")


_close_lock = threading.Lock()


#: Clients not closed yet; the ones a script forgot are closed at exit, while
#: their loop threads still run (atexit runs before daemon threads are stopped).
_open_clients: weakref.WeakSet[Client] = weakref.WeakSet()


@atexit.register
def _close_forgotten_clients() -> None:
    for client in list(_open_clients):
        client.close()


class _LoopThread:
    """One event loop in a daemon thread, reachable through a blocking portal.

    A daemon thread, unlike anyio's `start_blocking_portal`, never keeps a
    script from exiting when its client was not closed.
    """

    def __init__(self) -> None:
        ready: Future[BlockingPortal] = Future()
        self._calls: set[Future[Any]] = set()

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            async with BlockingPortal() as portal:
                ready.set_result(portal)
                await portal.sleep_until_stopped()

        def run() -> None:
            try:
                anyio.run(serve, backend="asyncio")
            except BaseException as error:
                if not ready.done():
                    ready.set_exception(error)

        self._thread = threading.Thread(target=run, name="audioscape-client-loop", daemon=True)
        self._thread.start()
        self.portal = ready.result()

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        """Run one coroutine in the loop and wait for its result; cancel it if the wait fails.

        The short way for a single call: a portal call costs about 3x as much
        (its task group and cancel scope), which `Client.search` pays per call.
        """
        future = asyncio.run_coroutine_threadsafe(call, self._loop)
        self._calls.add(future)
        future.add_done_callback(self._calls.discard)
        try:
            return future.result()
        except CancelledError:
            # Not the caller's cancellation (a blocking call has none): the
            # client was closed, which cancels what runs in its loop.
            raise _closed_mid_call() from None
        except BaseException:
            future.cancel()  # a KeyboardInterrupt here must not leave the call running
            raise

    def cancel_calls(self) -> None:
        """Cancel the calls other threads still wait on (the client is closing)."""
        for future in list(self._calls):
            future.cancel()

    def is_current(self) -> bool:
        """Whether the caller runs in this loop's own thread."""
        return threading.current_thread() is self._thread

    def stop(self) -> None:
        """Cancel what still runs in the loop, stop it, and wait for the thread to end."""
        self.portal.call(self.portal.stop, True)
        self._thread.join()


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

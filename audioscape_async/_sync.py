"""`Client`: the async core, driven from blocking code.

The facade has no logic of its own. It owns one asyncio event loop for its
whole life, runs its `AsyncClient` on that loop, and forwards every call: a
plain call runs the loop in the caller's own thread when it can (no thread hop),
and the loop moves to a thread of its own when it cannot (see `_Runtime`).
Iterators run the async walk in one task in that thread and hand pages over a
stream that holds nothing: the walk is at most one page ahead of the loop that
reads it, and it stops when that loop stops.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import signal
import sys
import threading
import weakref
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable, Iterator, Mapping
from concurrent.futures import CancelledError, Future
from contextlib import AbstractAsyncContextManager, aclosing, nullcontext, suppress
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

import anyio
import httpx

from ._client import AsyncClient
from ._config import TimeoutTypes
from ._constants import (
    CTRL_C_DELAY,
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
from ._transport import TransportChoice, fork_generation

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


#: The name of a `Client`'s event-loop thread, once it has one.
LOOP_THREAD_NAME = "audioscape-client-loop"

# The modes of a `_Runtime`'s event loop.
_IDLE = "idle"  # nobody runs it: the next caller that can drives it
_DRIVEN = "driven"  # a caller's thread runs it, for the length of its call
_THREADED = "threaded"  # its own daemon thread runs it, until the client closes


class _Runtime:
    """The event loop of a `Client`, shared with its `with_options` copies.

    One asyncio loop object for the client's whole life (the core checks that a
    client always runs on the same loop), run by one thread at a time:

    - *driven*: a blocking call from a thread that runs no loop of its own, while
      nobody else runs this one, runs it in that thread until the call is done, and
      leaves it stopped (*idle*) when it returns: no thread hop at all.
    - *threaded*: anything else (a caller whose thread already runs a loop, as in a
      notebook; a second thread calling while the loop is driven; an iterator, whose
      walk must keep running between two steps) moves the loop, for good, to a daemon
      thread that runs it forever, reached with `run_coroutine_threadsafe`.

    A call submitted while another thread drives the loop starts running in that
    thread's loop at once; when the driving call ends, that thread starts the loop
    thread instead of leaving the loop stopped (the hand-over), so no work waits on
    a stopped loop. `_lock` guards the mode, `closed` and the hand-over flag.
    """

    __slots__ = (
        "__weakref__",
        "_handover",
        "_inbox",
        "_lock",
        "_mode",
        "_runner",
        "_settled",
        "_thread",
        "closed",
        "generation",
        "loop",
    )

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.generation = fork_generation()
        self.closed = False
        self._lock = threading.Lock()
        #: Notified when a driving thread lets go of the loop after close() began.
        self._settled = threading.Condition(self._lock)
        self._mode = _IDLE
        self._handover = False
        self._thread: threading.Thread | None = None
        #: The task that runs driven calls, and the future it waits on for the next one.
        self._runner: asyncio.Task[None] | None = None
        self._inbox: asyncio.Future[_Call[Any]] | None = None

    # -- checks ------------------------------------------------------------------

    def check(self, doing: str = "called") -> bool:
        """Refuse a call this runtime cannot serve; return whether the caller may drive."""
        if self.closed:
            raise AudioScapeError("this Client is closed; create a new one")
        if self.generation != fork_generation():
            raise AudioScapeError(
                "this Client was created before the process forked, and its event loop "
                "stayed in the parent: create a new Client in each process"
            )
        return self._check_not_current(doing)

    def _check_not_current(self, doing: str) -> bool:
        """Refuse the loop's own thread (it would wait on itself); return whether this
        thread may drive the loop (it runs no loop of its own)."""
        running = asyncio._get_running_loop()
        if running is self.loop:
            raise AudioScapeError(
                f"a Client cannot be {doing} from its own event-loop thread (from an "
                "on_progress hook, say): it would wait on itself"
            )
        return running is None and not _in_trio()

    # -- calls -------------------------------------------------------------------

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        """Run one coroutine on the loop and return its result: in this thread if it can."""
        future = self._claim(call, may_drive=True)
        if future is None:
            return self._drive(call)
        return self.wait(future)

    def _claim(self, call: Coroutine[Any, Any, T], *, may_drive: bool) -> Future[T] | None:
        """Take the loop for `call`: None if this thread drives it, else the submitted call."""
        try:
            drive = self.check() and may_drive
            with self._lock:
                if self.closed:
                    raise AudioScapeError("this Client is closed; create a new one")
                if drive and self._mode is _IDLE:
                    self._mode = _DRIVEN
                    return None
                return self._submit_locked(call)
        except BaseException:
            call.close()
            raise

    def _drive(self, call: Coroutine[Any, Any, T]) -> T:
        """Run `call` in this thread (the mode is driven); let go of the loop after."""
        loop = self.loop
        try:
            box: _Call[T] = _Call(call)
            task, inbox = self._runner, self._inbox
            try:
                if task is not None and not task.done() and inbox is not None and not inbox.done():
                    inbox.set_result(box)  # the runner waits for its next call
                else:
                    task = self._runner = loop.create_task(self._serve(box))
            except BaseException:
                call.close()
                raise
            ctrl_c = (
                _CtrlC(loop, task, box)
                if threading.current_thread() is threading.main_thread()
                else None
            )
            try:
                # The runner stops the loop itself when the call ends, which saves the
                # loop a turn (a select) per call.
                loop.run_forever()
                if not box.done:  # pragma: no cover - nothing else stops this loop
                    raise AudioScapeError("the Client's event loop stopped in the middle of a call")
            except BaseException:
                # A KeyboardInterrupt (a second Ctrl-C, or SIGINT under a handler of
                # yours) left the call half done: cancel it and let it clean up.
                try:
                    if not box.done:
                        task.cancel()
                        if not task.done():
                            # The runner may end without the call: cancelled before it
                            # took the call (the interrupt came first), nothing would
                            # stop the loop. Its end stops it then.
                            def stop(_: object) -> None:
                                if not box.done:
                                    loop.stop()

                            task.add_done_callback(stop)
                            try:
                                loop.run_forever()  # until the call, cleaned up, stops the loop
                            finally:
                                task.remove_done_callback(stop)
                        if not box.done and task.done():
                            box.call.close()  # never ran: no "never awaited" warning
                finally:
                    if task.done():
                        with suppress(asyncio.CancelledError):
                            task.exception()  # retrieved: no "never retrieved" log
                    if not box.done:  # interrupted again: the call ends wherever the loop runs
                        box.stop = False
                raise
            finally:
                if ctrl_c is not None:
                    ctrl_c.remove()
            error = box.error
            if isinstance(error, asyncio.CancelledError):
                if ctrl_c is not None and ctrl_c.interrupted:
                    raise KeyboardInterrupt from None
                if self.closed:
                    raise _closed_mid_call() from None
            if error is not None:
                box.error = None  # no cycle through the box and the traceback
                raise error
            if ctrl_c is not None and ctrl_c.interrupted:  # the call ended before the cancel
                raise KeyboardInterrupt
            return box.result  # type: ignore[return-value]
        finally:
            self._let_go()

    async def _serve(self, box: _Call[Any]) -> None:
        """The runner: one task that runs the driven calls one after another.

        A task per call cost about 10 µs of CPU (4% of a search); this one lives
        as long as the loop, waiting on `_inbox` between calls. A call's
        cancellation (Ctrl-C, close) ends that call, not the runner.
        """
        loop = self.loop
        current = asyncio.current_task()
        while True:
            try:
                try:
                    box.result = await box.call
                except asyncio.CancelledError as error:
                    box.error = error
                    uncancel = getattr(current, "uncancel", None)  # Python 3.11+
                    while uncancel is not None and uncancel() > 0:
                        pass  # the task counts no cancellation of its own any more
                except Exception as error:
                    box.error = error
            finally:
                box.done = True
                if box.stop:
                    loop.stop()
            if self.closed or self._runner is not current:
                return  # closed, or replaced while its call ran on after a second Ctrl-C
            inbox: asyncio.Future[_Call[Any]] = loop.create_future()
            self._inbox = inbox
            box = await inbox

    def _let_go(self) -> None:
        """End a drive: leave the loop idle, or hand it to the loop thread if work came in."""
        with self._lock:
            if self._handover:
                self._handover = False
                self._start_thread()
            else:
                self._mode = _IDLE
            if self.closed:
                self._settled.notify_all()

    def submit(self, call: Coroutine[Any, Any, T]) -> Future[T]:
        """Hand `call` to the loop, moving the loop to its thread for good."""
        future = self._claim(call, may_drive=False)
        assert future is not None
        return future

    def _submit_locked(self, call: Coroutine[Any, Any, T]) -> Future[T]:
        if self._mode is _IDLE:
            self._start_thread()
        elif self._mode is _DRIVEN:
            self._handover = True  # the driving thread starts the loop thread when done
        return asyncio.run_coroutine_threadsafe(_contained(call), self.loop)

    def _start_thread(self) -> None:
        # A daemon thread never keeps a script from exiting when its client was not closed.
        thread = threading.Thread(target=self.loop.run_forever, name=LOOP_THREAD_NAME, daemon=True)
        self._mode = _THREADED
        self._thread = thread
        thread.start()

    @staticmethod
    def wait(future: Future[T]) -> T:
        """Wait for a submitted call; cancel it if the wait fails."""
        try:
            return future.result()
        except _Escaped as escaped:
            raise escaped.error from None
        except CancelledError:
            # Not the caller's cancellation (a blocking call has none): the
            # client was closed, which cancels what runs in its loop.
            raise _closed_mid_call() from None
        except BaseException:
            future.cancel()  # a KeyboardInterrupt here must not leave the call running
            raise

    def call(self, call: Coroutine[Any, Any, T]) -> T:
        """Run `call` in the loop thread (threaded mode) and wait for it."""
        return self.wait(self.submit(call))

    # -- close -------------------------------------------------------------------

    def close(self, cleanup: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """End every call, run `cleanup` in the loop, stop the loop and close it. Idempotent."""
        forked = self.generation != fork_generation()
        drive = not forked and self._check_not_current("closed")
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if forked:
                return  # the loop (and its thread, if any) belongs to the parent
            drive = drive and self._mode is _IDLE
            if drive:
                self._mode = _DRIVEN
            else:
                future = self._submit_locked(self._shutdown(cleanup))
        if drive:
            try:
                self._drive(self._shutdown(cleanup))
            finally:
                self.loop.close()
            return
        try:
            future.result()
        finally:
            with self._lock:
                # A thread driving the loop hands it to the loop thread when its call ends.
                self._settled.wait_for(lambda: self._mode is _THREADED)
                thread = self._thread
            self.loop.call_soon_threadsafe(self.loop.stop)
            assert thread is not None
            thread.join()
            self.loop.close()

    async def _shutdown(self, cleanup: Callable[[], Coroutine[Any, Any, None]]) -> None:
        # Calls in flight end first, as closed, before the pool under them goes.
        await _cancel_other_tasks()
        try:
            await cleanup()
        finally:
            await _cancel_other_tasks()
            await self.loop.shutdown_asyncgens()
            await self.loop.shutdown_default_executor()

    def owns_current_loop(self) -> bool:
        """Whether the caller runs inside this runtime's loop."""
        return asyncio._get_running_loop() is self.loop

    def busy(self) -> bool:
        """Whether some thread holds the lock (for a moment), this one perhaps."""
        return self._lock.locked()


class _Escaped(Exception):
    """A KeyboardInterrupt or SystemExit raised in the loop thread (by an on_progress hook,
    say), carried to the thread that waits for the call.

    Left to propagate, asyncio re-raises it out of the loop, which kills the loop
    thread and leaves every waiting caller (and close) hanging for good.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(repr(error))
        self.error = error


async def _contained(call: Coroutine[Any, Any, T]) -> T:
    """Run `call` in the loop thread; an interrupt it raises becomes an `_Escaped`."""
    try:
        return await call
    except BaseException as error:
        if isinstance(error, (Exception, asyncio.CancelledError)):
            raise
        raise _Escaped(error) from None


async def _cancel_other_tasks() -> None:
    """Cancel every task of the running loop but this one, and wait for them to end."""
    current = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not current]
    for task in others:
        task.cancel()
    if others:
        await asyncio.gather(*others, return_exceptions=True)


class _CtrlC:
    """Ctrl-C during a call driven in the main thread: cancel the call, as `asyncio.Runner` does.

    So the call's cleanup runs as a cancellation, and the caller then gets a
    KeyboardInterrupt; a second Ctrl-C interrupts at once. Only while SIGINT has
    Python's default handler, installed after `CTRL_C_DELAY`, and removed after.
    """

    __slots__ = ("_box", "_loop", "_task", "_timer", "installed", "interrupted")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any], box: _Call[Any]
    ) -> None:
        self._loop = loop
        self._task = task
        self._box = box
        self.installed = False
        self.interrupted = False
        self._timer = loop.call_later(CTRL_C_DELAY, self._install)

    def _install(self) -> None:
        if not self._box.done and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, self._on_sigint)
            self.installed = True

    def _on_sigint(self, signum: int, frame: object) -> None:
        if self.interrupted or self._box.done:
            raise KeyboardInterrupt
        self.interrupted = True
        self._task.cancel()
        self._loop.call_soon_threadsafe(_nothing)  # wake a select() that waits long

    def remove(self) -> None:
        """Put Python's handler back (unless yours replaced this one meanwhile)."""
        self._timer.cancel()
        if self.installed:
            self.installed = False
            if signal.getsignal(signal.SIGINT) == self._on_sigint:
                signal.signal(signal.SIGINT, signal.default_int_handler)


class _Call(Generic[T]):
    """One driven call, handed to the runner: its coroutine and, once done, its outcome."""

    __slots__ = ("call", "done", "error", "result", "stop")

    def __init__(self, call: Coroutine[Any, Any, T]) -> None:
        self.call = call
        self.result: T | None = None
        self.error: BaseException | None = None
        self.done = False
        self.stop = True  # cleared if the driving thread gives up on the call


def _nothing() -> None:
    """A no-op callback: scheduling it wakes the loop."""


def _in_trio() -> bool:
    """Whether the calling thread runs a trio loop (trio, if anything, is imported then)."""
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True


class Client:
    """The blocking client: the same constructor and methods as `AsyncClient`, no async.

    ```python
    with Client() as client:
        page = client.search("chill lo-fi beats", limit=5)
        for track in client.iter_tracks("chill lo-fi beats", max_items=50):
            print(track.name)
    ```

    It owns an event loop, which a call runs in the calling thread; where
    that cannot be (a loop already runs in that thread, as in a notebook;
    another thread is in a call; an iterator, whose walk runs between your
    steps) the loop moves to a thread of its own until the client closes. So
    it works inside a notebook, and it may be shared by threads.
    `http_client`, if given, must be an `httpx.AsyncClient`: that is what the
    core runs on; unlike with `AsyncClient`, it is closed with this client,
    since its connections live in this client's event loop. Close the client
    (or leave its ``with`` block) to close the loop and stop its thread. Each
    method's documentation is that of the `AsyncClient` method it runs.
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
            trust_env=trust_env,
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
        trust_env: bool | None = None,
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
            trust_env=trust_env,
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
        return runtime is None or runtime.closed

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
        """Close the connection pool and the event loop, stop its thread if any. Idempotent.

        Calls still running in other threads fail with an `AudioScapeError`
        that says the client was closed. On a `with_options` copy this does
        nothing: the loop is the original's.
        """
        runtime = self._runtime
        if self._is_copy or runtime is None:
            return
        _open_clients.discard(self)
        runtime.close(self._aclose)

    async def _aclose(self) -> None:
        await self._async.aclose()
        if self._http_client is not None:
            # Your http_client's connections live in this event loop, which
            # closes now: nothing could close them later, so they close here.
            await self._http_client.aclose()
        for backend in self._backends.values():
            await backend.aclose()  # it reconnects if used again

    def __del__(self) -> None:
        # A client dropped without close() must not leave its loop or thread behind.
        # While the interpreter shuts down the loop thread may already be gone
        # (a daemon), and waiting on it would hang the exit: atexit closed it.
        # Not from inside its own loop (it would wait on itself), and not while
        # this thread holds the runtime's lock (a collection in the middle of a
        # call of a copy): atexit closes it then.
        runtime = getattr(self, "_runtime", None)
        if (
            runtime is not None
            and not runtime.closed
            and not getattr(self, "_is_copy", True)
            and not sys.is_finalizing()
            and runtime.generation == fork_generation()
            and not runtime.owns_current_loop()
            and not runtime.busy()
        ):
            self.close()

    def _check_open(self) -> None:
        """Say now, before a walk is built, that this Client cannot serve it (closed, forked,
        called from its own loop)."""
        runtime = self._runtime
        if runtime is None:  # pragma: no cover - only a half-built client has none
            raise AudioScapeError("this Client is closed; create a new one")
        runtime.check()

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        runtime = self._runtime
        if runtime is None:  # pragma: no cover - only a half-built client has none
            call.close()
            raise AudioScapeError("this Client is closed; create a new one")
        return runtime.run(call)

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
        self._check_open()
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
        self._check_open()
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
        self._check_open()
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
        runtime = self._runtime  # checked (`_check_open`) by the caller, before its walk was built
        assert runtime is not None

        def items() -> Iterator[U]:
            send, receive = anyio.create_memory_object_stream[T](0)

            async def pump() -> None:
                async with send, scope or nullcontext(), aclosing(source):
                    async for item in source:
                        await send.send(item)

            try:
                pumping = runtime.submit(pump())  # closed before the first item: says so
            except BaseException:
                send.close()
                receive.close()
                raise
            try:
                while True:
                    try:
                        item = runtime.call(receive.receive())
                    except anyio.EndOfStream:
                        break
                    yield from explode(item)
                # The stream ended: either the walk is done or it failed; say which.
                runtime.wait(pumping)
            finally:
                # Cancelling the pump closes its end of the stream, which also
                # releases a receive left waiting by a KeyboardInterrupt.
                if not pumping.done():
                    pumping.cancel()
                try:
                    runtime.call(receive.aclose())
                except AudioScapeError:
                    # The client was closed first and its loop has stopped, so
                    # nothing else can touch the streams: close them here.
                    send.close()
                    receive.close()

        return items()


def _closed_mid_call() -> AudioScapeError:
    return AudioScapeError("the Client was closed while this call was running")


#: Clients not closed yet; the ones a script forgot are closed at exit, while
#: their loop threads still run (atexit runs before daemon threads are stopped).
_open_clients: weakref.WeakSet[Client] = weakref.WeakSet()


@atexit.register
def _close_forgotten_clients() -> None:
    for client in list(_open_clients):
        client.close()


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

"""`Background`: a client's task group, for work no caller waits for.

A stale-while-revalidate refresh (`_cache`) must outlive the call that found
the stale page, so it cannot run in that caller's task. It runs in a task
group owned by the client (its `Shared`: the client and its `with_options`
copies), on the client's event loop:

- The group lives in one host task, started by the first `start` and ended by
  `aclose`, which cancels what runs there and waits for it to end (before the
  client closes its pool). Nothing of one client ever runs in another's group.
- The host is started the way each event loop starts a task nobody awaits:
  asyncio's `loop.create_task` (the task is held here: asyncio keeps only a
  weak reference) or trio's `spawn_system_task` (cancelled when ``trio.run``
  ends). Every task of the group runs on that loop only.
- The host starts in an empty `contextvars` context: nothing of the call that
  happened to start it (a trace span, the call its event hooks watch) is
  inherited by the work that runs there.
- At most `limit` tasks run at once; past it, `start` refuses (returns False)
  and the work is not done: the caller's next lookup asks again.
- Work that never begins (its loop ended first: a task cancelled before its
  first step runs none of its code) has its coroutine closed (no "never
  awaited" warning) and its `dropped` callback called instead, when the host
  ends, so that what the starter claimed for it is let go.
- A task's exception is logged and counted by the work itself; one that gets
  past it is logged here, never raised into the host (on trio it would crash
  the run) nor into any caller.

A client is used on one event loop at a time; if its loop has ended and a new
one calls (a sync `Client` in a forked child, say), or its host task has ended
while its loop goes on (an app that cancels the tasks it did not make), the
next `start` opens a new host: the old one is over.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ._context import current_loop, on_asyncio
from ._logs import logger

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

# anyio is imported at first use, as everywhere in the package: `import audioscape_async`
# loads no event-loop library.

__all__ = ["Background", "Work"]

#: A piece of background work: a coroutine function with no arguments.
Work = Callable[[], Awaitable[None]]


class _Job:
    """One piece of work on one host: its coroutine (made once, closed if it never
    begins), and what to call then."""

    __slots__ = ("coro", "dropped", "work")

    def __init__(self, host: _Host, work: Work, dropped: Callable[[], None] | None) -> None:
        self.work = work
        self.dropped = dropped
        self.coro: Coroutine[Any, Any, None] = self._run(host)

    def spawn(self, group: TaskGroup) -> None:
        coro = self.coro

        def start() -> None:
            group.start_soon(lambda: coro, name="audioscape-background-work")

        # In an empty context, as the host: `Background.start` runs in the caller's task,
        # whose context a task started there would copy.
        contextvars.Context().run(start)

    async def _run(self, host: _Host) -> None:
        try:
            host.waiting.discard(self)
            await self.work()
        except Exception:  # the work logs its own failures; this is the last guard
            logger.exception("background work of an AudioScape client failed")
        finally:
            host.running -= 1


class _Host:
    """The task that holds the group on one event loop, and what waits for it."""

    __slots__ = ("done", "group", "loop", "pending", "running", "stop", "task", "waiting")

    def __init__(self, loop: object) -> None:
        import anyio

        self.loop = loop
        self.group: TaskGroup | None = None  # once the host task has entered it
        self.pending: list[_Job] = []  # started before the host task ran
        self.waiting: set[_Job] = set()  # started, not begun yet
        self.running = 0
        self.stop = anyio.Event()
        self.done = anyio.Event()
        self.task: object = None  # asyncio's task, held so it is not collected


class Background:
    """The task group of one client (see the module docstring)."""

    __slots__ = ("_closed", "_host", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._closed = False
        self._host: _Host | None = None

    def __repr__(self) -> str:
        running = self._host.running if self._host is not None else 0
        return f"<Background running={running} limit={self.limit} closed={self._closed}>"

    @property
    def running(self) -> int:
        """The tasks running now (or about to)."""
        host = self._host
        return 0 if host is None else host.running

    def start(self, work: Work, dropped: Callable[[], None] | None = None) -> bool:
        """Run `work()` in the group on the running loop; False if closed or at `limit`.

        `dropped()` is called instead if the work never begins (its loop ended first).
        """
        if self._closed:
            return False
        host = self._host
        loop = current_loop()
        if host is None or host.loop is not loop or host.done.is_set():
            # None yet, its loop has ended, or its task did (cancelled by the app): a new one.
            host = self._host = self._open(loop)
        if host.running >= self.limit:
            return False
        host.running += 1
        job = _Job(host, work, dropped)
        host.waiting.add(job)
        if host.group is None:
            host.pending.append(job)
        else:
            job.spawn(host.group)
        return True

    async def aclose(self) -> None:
        """Cancel the tasks running on this loop and wait for them to end; refuse new ones."""
        self._closed = True
        host = self._host
        if host is None or host.loop is not current_loop():
            return  # nothing started, or its loop has ended (and the host with it)
        host.stop.set()
        await host.done.wait()

    def _open(self, loop: object) -> _Host:
        host = _Host(loop)
        # Started in an empty context: a task copies the context it is started in, and
        # the caller's (its trace span, the call its hooks watch) is not the refreshes'.
        fresh = contextvars.Context()
        if on_asyncio():
            import asyncio

            running = asyncio.get_running_loop()
            task = fresh.run(running.create_task, self._serve(host))
            # Cancelled before its first step (its loop ended), `_serve` never runs.
            task.add_done_callback(lambda _task: _end(host))
            host.task = task
        else:
            import trio

            fresh.run(trio.lowlevel.spawn_system_task, self._serve, host)
        return host

    async def _serve(self, host: _Host) -> None:
        import anyio

        try:
            async with anyio.create_task_group() as group:
                host.group = group
                for job in host.pending:
                    job.spawn(group)
                host.pending.clear()
                await host.stop.wait()
                group.cancel_scope.cancel()
        finally:
            host.group = None
            _end(host)


def _end(host: _Host) -> None:
    """Mark `host` over, and let go of the work that never began there (its loop or its
    task ended first)."""
    host.done.set()
    jobs = list(host.waiting)
    host.waiting.clear()
    host.pending.clear()
    for job in jobs:
        host.running -= 1
        job.coro.close()
        if job.dropped is not None:
            try:
                job.dropped()
            except Exception:  # the last guard, as in `_run`
                logger.exception("background work of an AudioScape client failed")

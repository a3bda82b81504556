"""A backend's connections: one redis-py client per event loop, closed when that loop ends.

redis-py binds each connection to the loop that opened it, so `LoopPools`
makes a client (with its own bounded pool) at a loop's first command, under a
lock (threads may start at once), and a small task per loop closes it when the
task is cancelled: ``asyncio.run`` returning or a sync `Client` closing cancel
every task of their loop. A loop closed without cancelling its tasks never ran
that task: its connections cannot be closed from another loop, only dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from audioscape_async._logs import logger

if TYPE_CHECKING:
    import asyncio

    import redis.asyncio as aioredis

__all__ = ["LoopPool", "LoopPools"]


class LoopPool:
    """The connections of one event loop (redis-py binds a connection to its loop)."""

    __slots__ = ("client", "closed", "keeper", "loop", "scripts")

    def __init__(self, loop: asyncio.AbstractEventLoop, client: aioredis.Redis) -> None:
        self.loop = loop
        self.client = client
        self.scripts: dict[str, Any] = {}
        self.keeper: asyncio.Task[None] | None = None  # closes the pool when the loop ends
        self.closed = False

    def script(self, name: str, source: str) -> Any:
        """The Lua script `name`, registered with this pool's client at first use."""
        script = self.scripts.get(name)
        if script is None:
            script = self.scripts[name] = self.client.register_script(source)
        return script


class LoopPools:
    """The pools of every event loop that uses one backend (`name`: their closing tasks' name)."""

    __slots__ = ("_lock", "_name", "_pools")

    def __init__(self, name: str) -> None:
        self._name = name
        #: One pool per event loop; `_lock` guards making and dropping them.
        self._pools: dict[asyncio.AbstractEventLoop, LoopPool] = {}
        self._lock = threading.Lock()

    def get(
        self, loop: asyncio.AbstractEventLoop, open_client: Callable[[], aioredis.Redis]
    ) -> LoopPool:
        """The pool of `loop`, made at its first command with a client from `open_client`."""
        pool = self._pools.get(loop)
        if pool is not None:
            return pool
        with self._lock:  # threads may make their loops' first commands at once
            pool = self._pools.get(loop)
            if pool is not None:
                return pool
            client = open_client()
            self._forget_closed_loops()
            pool = self._pools[loop] = LoopPool(loop, client)
            pool.keeper = loop.create_task(self._keep(pool), name=self._name)
        return pool

    async def close(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close the pool of `loop` (the running loop) now, if it has one."""
        pool = self._pools.get(loop)
        if pool is not None:
            if pool.keeper is not None:
                pool.keeper.cancel()
            await self._release(pool)

    def _forget_closed_loops(self) -> None:
        # A loop closed without cancelling its tasks never ran its keeper: its
        # connections cannot be closed from another loop, only dropped.
        for loop in [loop for loop in self._pools if loop.is_closed()]:
            del self._pools[loop]
            logger.debug("dropped the Redis connections of an event loop closed without them")

    async def _keep(self, pool: LoopPool) -> None:
        """Close `pool` when its loop ends: ``asyncio.run`` and a closing `Client` cancel this."""
        try:
            await pool.loop.create_future()  # until cancelled
        finally:
            await self._release(pool)

    async def _release(self, pool: LoopPool) -> None:
        if pool.closed:
            return
        pool.closed = True
        with self._lock:
            if self._pools.get(pool.loop) is pool:
                del self._pools[pool.loop]
        try:
            await pool.client.aclose()
            await pool.client.connection_pool.disconnect()
        except Exception as error:  # closing a dead connection must not fail
            logger.debug("closing the Redis client failed: %s", error)

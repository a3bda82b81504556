"""`RedisBackend`: the Redis server a fleet of processes shares, and every command sent to it.

It checks its settings, runs the scripts of the shared rate limit and pause
(`_scripts`) and the cache store's commands, each within its bound, turns
redis-py's failures into the SDK's errors, and says whether the consumers
should carry on in process (`fallback`). The connections, one pool per event
loop, live in `_pools`; the package docstring (`audioscape_async._redis`)
tells the design as a whole.
"""

from __future__ import annotations

import math
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from audioscape_async._context import on_asyncio
from audioscape_async._exceptions import (
    AudioScapeError,
    BackendUnavailableError,
    InvalidParameterError,
    RateLimitError,
)
from audioscape_async._extras import MissingExtraError, require
from audioscape_async._fingerprint import DEFAULT_KEY_SECRET, check_secret
from audioscape_async._logs import logger
from audioscape_async._options import deadline_error
from audioscape_async._validation import (
    MAX_STORE_SECONDS,
    check_int_range,
    check_number,
    check_seconds,
    check_store_lifetime,
)

from ._pools import LoopPool, LoopPools
from ._scripts import (
    ACQUIRE,
    LEAD,
    PAUSE,
    PAUSED,
    PAUSED_LEARNED,
    RELEASE,
    TIER_ACQUIRE,
    TIER_CUT,
)
from ._urls import check_url, safe_url

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["RedisBackend"]

#: Redis's clock is in microseconds in the scripts: integers a double holds exactly.
_US = 1_000_000

#: Slack past ``connect_timeout + timeout`` before a command is given up: redis-py's own
#: timeouts fire first; this one is the guarantee of no hang.
_SLACK = 0.5


def _seconds(name: str, value: object, *, zero: bool = False) -> float:
    return check_seconds(f"backend.{name}", value, zero=zero)


class RedisBackend:
    """A Redis server shared by every process and host that uses it.

    >>> fleet = RedisBackend("redis://127.0.0.1:6379/0")
    >>> fleet
    RedisBackend('redis://127.0.0.1:6379/0', prefix='audioscape:', fallback=False)

    Pass it to `SearchCache(backend=...)` and to the rate limit. `prefix`
    starts every key it writes. `connect_timeout` bounds connecting and
    `timeout` each command; an unreachable server is a
    `BackendUnavailableError` (see the docstring of `_redis`), or with `fallback`
    one WARNING and in-process behaviour until it answers again.
    `max_connections` bounds the connections of one event loop (more
    concurrent commands wait for one): each loop that uses the backend (each
    sync `Client`, each thread's ``asyncio.run``) has a pool of its own,
    closed when that loop ends. `key_secret` is the secret of the fingerprint
    that names each API key's entries and limit (`_fingerprint`): the same in
    every process of a fleet, never shown. Use it as ``async with`` or call
    `aclose()`.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "audioscape:",
        fallback: bool = False,
        connect_timeout: float = 1.0,
        timeout: float = 1.0,
        recheck_interval: float = 5.0,
        max_connections: int = 32,
        key_secret: str | bytes = DEFAULT_KEY_SECRET,
    ) -> None:
        require("redis", "RedisBackend")
        check_url(url)
        if not isinstance(prefix, str):
            raise InvalidParameterError("backend.prefix", f"must be a string, got {prefix!r}")
        if not isinstance(fallback, bool):
            raise InvalidParameterError(
                "backend.fallback", f"must be True or False, got {fallback!r}"
            )
        check_int_range("backend.max_connections", max_connections, 1)
        self._url = url
        self.url = safe_url(url)
        self.prefix = prefix
        self.fallback = fallback
        self.connect_timeout = _seconds("connect_timeout", connect_timeout)
        self.timeout = _seconds("timeout", timeout)
        self.recheck_interval = _seconds("recheck_interval", recheck_interval, zero=True)
        self.max_connections = max_connections
        self._key_secret = check_secret("backend.key_secret", key_secret)
        self._pools = LoopPools(f"RedisBackend({self.url!r})")
        self._down_until = -math.inf
        self._down_reason: str | None = None  # why Redis counts as down, until it answers
        self._warned = False
        self._store_warned = False

    @property
    def key_secret(self) -> bytes:
        """The secret of the fingerprints this backend's keys are named by."""
        return self._key_secret

    def __repr__(self) -> str:
        return f"RedisBackend({self.url!r}, prefix={self.prefix!r}, fallback={self.fallback})"

    async def __aenter__(self) -> RedisBackend:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections of the event loop this runs in (reopened if used again).

        Another loop's connections are that loop's: they close when it ends
        (``asyncio.run`` returning, its `Client` closing) or at an `aclose()`
        awaited there, never under a command it is running.
        """
        if not on_asyncio():
            return  # on trio the backend never opened a connection
        import asyncio

        await self._pools.close(asyncio.get_running_loop())

    # -- the consumers' view of availability -------------------------------------------

    def use_local_store(self) -> bool:
        """Whether a consumer should skip Redis now: it failed lately and `fallback` is on."""
        return self.fallback and time.monotonic() < self._down_until

    def fall_back(self, error: BackendUnavailableError) -> bool:
        """Whether a consumer may carry on in process after `error` (WARNING the first time)."""
        if not self.fallback:
            return False
        if not self._warned:
            self._warned = True
            logger.warning("%s; falling back to the in-process rate gate and cache", error.message)
        return True

    def store_failed(self, error: AudioScapeError) -> None:
        """Note a page that could not be stored; its call returns it anyway.

        A WARNING the first time, DEBUG after, until a store succeeds again.
        """
        if self._store_warned:
            logger.debug("a page was not stored in Redis: %s", error)
            return
        self._store_warned = True
        logger.warning(
            "a page was returned but not stored in Redis (%s); "
            "further failures are logged at DEBUG until a store succeeds",
            error,
        )

    # -- commands -------------------------------------------------------------------------

    async def acquire(
        self,
        name: str,
        rate: float,
        burst: int,
        *,
        max_pause: float = math.inf,
        max_wait: float | None = None,
        deadline: float | None = None,
    ) -> float:
        """Reserve the next slot of the shared limit `name`; return the seconds to wait first.

        0 means send now. The wait includes what is left of a shared pause; a
        pause longer than `max_pause` raises `RateLimitError` and reserves
        nothing. A wait longer than `max_wait` (what is left of a deadline)
        reserves nothing either, and returns that wait as a negative number.
        `deadline` (a `time.monotonic()` instant) bounds the command itself,
        as for every command (see the docstring of `_redis`).
        """
        check_number("backend.rate", rate)
        check_int_range("backend.burst", burst, 1)
        interval = round(_US / rate)
        keys = [self._key("rate:", name), self._key("pause:", name)]
        args = [interval, burst, *self._limits(max_pause, max_wait)]
        result = await self._script("acquire", ACQUIRE, keys, args, deadline)
        wait, paused = (int(part) for part in result)
        return self._waited(wait, paused, max_pause)

    def _learned_keys(self, name: str) -> list[str]:
        """A learned rate's keys: its turns (apart from a configured rate's), the pause
        (the one every gate of the name shares) and what the fleet learned."""
        return [self._key("rate-auto:", name), self._key("pause:", name), self._key("tier:", name)]

    @staticmethod
    def _limits(max_pause: float, max_wait: float | None) -> tuple[int, int]:
        """The longest pause and wait, in µs for the scripts (-1: any)."""
        limit = -1 if max_pause >= MAX_STORE_SECONDS else round(max(max_pause, 0.0) * _US)
        afford = (
            -1
            if max_wait is None or max_wait >= MAX_STORE_SECONDS
            else round(max(max_wait, 0.0) * _US)
        )
        return limit, afford

    @staticmethod
    def _waited(wait: int, paused: int, max_pause: float) -> float:
        """A script's answer as `acquire` returns it (see there)."""
        if wait == -2:
            return -paused / _US
        if wait < 0:
            raise RateLimitError(
                f"a 429 paused every client sharing this limit for {paused / _US:.1f} s more, "
                f"longer than the retry policy waits ({max_pause:g} s)",
                status_code=429,
                retry_after=paused / _US,
            )
        return wait / _US

    async def acquire_learned(
        self,
        name: str,
        *,
        successes: int,
        max_pause: float = math.inf,
        max_wait: float | None = None,
        deadline: float | None = None,
    ) -> tuple[float | None, int]:
        """`acquire` at the rate every process of `name` learned from 429s (`_tier`).

        Reports `successes` (seen since this process last reported) and returns the
        wait and the generation of the last cut of the rate. A wait of None: the turn
        is further off than `_gate.NAP` at the rate now, and none was taken: nap, then
        ask again (the rate may have risen meanwhile).
        """
        from audioscape_async._gate import NAP

        keys = self._learned_keys(name)
        limits = self._limits(max_pause, max_wait)
        args = [*_tier_args(), 1, *limits, successes, round(NAP * _US)]
        result = await self._script("tier_acquire", TIER_ACQUIRE, keys, args, deadline)
        wait, paused, generation = (int(part) for part in result)
        if wait == -3:
            return None, generation
        return self._waited(wait, paused, max_pause), generation

    async def cut_learned(
        self, name: str, generation: int, *, successes: int, deadline: float | None = None
    ) -> int:
        """Tell every process of `name` of a 429 to a request whose turn came under
        `generation`; return the generation now (one more if the rate was cut)."""
        from audioscape_async import _tier

        keys = self._learned_keys(name)
        args = [*_tier_args(), generation, successes, _tier.SETTLED, _tier.MIN_SAMPLES, _tier.FLOOR]
        return int(await self._script("tier_cut", TIER_CUT, keys, args, deadline))

    async def pause(self, name: str, seconds: float, *, deadline: float | None = None) -> float:
        """Pause every process sharing the limit `name` for `seconds` from now.

        Extends a pause in force, never shortens it; returns the seconds left of
        the pause now in force. A pause is at most ten years long.
        """
        seconds = min(seconds, MAX_STORE_SECONDS) if seconds > 0 else 0.0  # NaN: no pause
        micros = round(seconds * _US)
        left = await self._script("pause", PAUSE, [self._key("pause:", name)], [micros], deadline)
        return int(left) / _US

    async def paused(self, name: str, *, deadline: float | None = None) -> float:
        """The seconds left of the pause in force on the shared limit `name` (0: none)."""
        left = await self._script("paused", PAUSED, [self._key("pause:", name)], [], deadline)
        return int(left) / _US

    async def paused_learned(
        self, name: str, *, deadline: float | None = None
    ) -> tuple[float, int]:
        """`paused`, and the generation of the rate `name`'s processes learned."""
        keys = [self._key("pause:", name), self._key("tier:", name)]
        left, generation = await self._script("paused_learned", PAUSED_LEARNED, keys, [], deadline)
        return int(left) / _US, int(generation)

    async def get(self, key: str, *, deadline: float | None = None) -> bytes | None:
        """The value stored under `key`, or None (also for a value of another Redis type)."""
        import redis.exceptions

        name = self._key("", key)

        async def read(client: aioredis.Redis) -> Any:
            try:
                return await client.get(name)
            except redis.exceptions.ResponseError as error:
                if not str(error).startswith("WRONGTYPE"):
                    raise
            # Not ours (a list, a hash...): a miss, and the next store overwrites it.
            logger.warning(
                "Redis at %s holds a value of another type under %s; read as a miss",
                self.url,
                name,
            )
            return None

        value = await self._run(read, deadline=deadline)
        return bytes(value) if value is not None else None

    async def set(
        self, key: str, value: bytes, ttl: float, *, deadline: float | None = None
    ) -> None:
        """Store `value` under `key` for `ttl` seconds (at most ten years), whatever it held."""
        seconds = _seconds("ttl", ttl)
        check_store_lifetime(seconds, owner="backend")
        millis = max(1, math.ceil(seconds * 1000))
        await self._run(
            lambda client: client.set(self._key("", key), value, px=millis), deadline=deadline
        )
        self._store_warned = False

    async def lead(
        self, key: str, token: str, lease: float, *, deadline: float | None = None
    ) -> tuple[bool, bytes | None]:
        """Take the lease on fetching `key` for `lease` seconds if nobody holds it; read `key`.

        Returns whether this `token` holds the lease now, and the value stored
        under `key` (None: none), read in the same atomic step (`_scripts.LEAD`).
        """
        keys = [self._key("", key), self._key("lease:", key)]
        millis = max(1, math.ceil(lease * 1000))
        taken, value = await self._script("lead", LEAD, keys, [token, millis], deadline)
        return bool(taken), bytes(value) if isinstance(value, (bytes, bytearray)) else None

    async def release(self, key: str, token: str, *, deadline: float | None = None) -> None:
        """Let go of the lease on `key` if `token` still holds it (`lead`).

        Sent even while Redis counts as down (a late answer to `lead` marks it so,
        with `fallback`): a lease that may be held is let go, not left to expire.
        """
        keys = [self._key("lease:", key)]
        await self._script("release", RELEASE, keys, [token], deadline, even_if_down=True)

    # -- plumbing -------------------------------------------------------------------------

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}{name}"

    async def _script(
        self,
        name: str,
        source: str,
        keys: list[str],
        args: list[Any],
        deadline: float | None,
        *,
        even_if_down: bool = False,
    ) -> Any:
        script = self._connect().script(name, source)
        return await self._run(
            lambda _client: script(keys=keys, args=args),
            deadline=deadline,
            even_if_down=even_if_down,
        )

    def _connect(self) -> LoopPool:
        """The running loop's pool, made at its first command."""
        if not on_asyncio():
            raise AudioScapeError(
                "RedisBackend runs on asyncio only: redis-py's client does not support trio; "
                "use asyncio, or no backend"
            )
        import asyncio

        return self._pools.get(asyncio.get_running_loop(), self._open_client)

    def _open_client(self) -> aioredis.Redis:
        """A client of its own for an event loop's first command (see `_pools`)."""
        try:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
        except ImportError as error:
            raise MissingExtraError("RedisBackend", "redis", error.name or "redis") from None
        try:
            connections = aioredis.BlockingConnectionPool.from_url(
                self._url,
                max_connections=self.max_connections,
                timeout=self.timeout,
                socket_connect_timeout=self.connect_timeout,
                socket_timeout=self.timeout,
                retry=Retry(NoBackoff(), 0),
            )
        except (ValueError, TypeError) as error:  # redis-py's own reading of the URL
            raise InvalidParameterError("backend.url", f"redis-py cannot use it: {error}") from None
        return aioredis.Redis(connection_pool=connections)

    def _unavailable(self, reason: str) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"Redis at {self.url} is unreachable: {reason}", url=self.url
        )

    def _scrub(self, text: str) -> str:
        """redis-py's text, placed mid-sentence: the password masked, its full stop dropped."""
        password = urllib.parse.urlsplit(self._url).password
        text = text.rstrip(" .")
        return text.replace(password, "***") if password else text

    async def _run(
        self,
        command: Callable[[aioredis.Redis], Awaitable[Any]],
        *,
        deadline: float | None = None,
        even_if_down: bool = False,
    ) -> Any:
        pool = self._connect()
        reason = self._down_reason
        if reason is not None and time.monotonic() < self._down_until and not even_if_down:
            raise self._unavailable(reason)
        import asyncio

        import anyio
        import redis.exceptions

        bound = self.connect_timeout + self.timeout
        wait, by_deadline = bound + _SLACK, False
        if deadline is not None:
            left = deadline - time.monotonic()
            share = left / 2 if self.fallback else left  # with fallback, the call goes on
            if share < wait:
                wait, by_deadline = share, True
            if wait <= 0:
                raise self._deadline_error("before Redis was asked")
        failure: BaseException | None = None
        with anyio.move_on_after(wait) as scope:
            try:
                result = await command(pool.client)
            except (redis.exceptions.RedisError, OSError, asyncio.TimeoutError) as error:
                failure = error
            else:
                if self._down_reason is not None or self._warned:
                    # Back after an outage: the next outage warns again.
                    self._down_reason, self._warned = None, False
                    logger.warning("Redis at %s answers again", self.url)
                return result
        if scope.cancelled_caught:
            if by_deadline and not self.fallback:
                raise self._deadline_error(f"Redis at {self.url} gave no answer in {wait:.2f} s")
            reason = f"no answer in {wait if by_deadline else bound:.2g} s"
        elif isinstance(failure, redis.exceptions.ResponseError):
            message = self._scrub(str(failure))
            raise AudioScapeError(f"Redis at {self.url} refused a command: {message}") from None
        else:
            reason = self._scrub(str(failure) or type(failure).__name__)
        self._down_until = time.monotonic() + self.recheck_interval
        self._down_reason = reason
        raise self._unavailable(reason) from None

    def _deadline_error(self, detail: str) -> AudioScapeError:
        """The call's deadline ran out waiting for Redis; with `fallback` the call goes on."""
        if self.fallback:
            return self._unavailable(f"the call's deadline left it no time ({detail})")
        return deadline_error(detail)


def _tier_args() -> list[float]:
    """The learned rate's rules for the scripts (`_scripts.TIER_ARGS`), from `_tier`."""
    from audioscape_async import _tier

    return [_tier.BUCKET * _US, _tier.WINDOW * _US, _tier.CUBIC, _tier.PLATEAU, _tier.BETA]

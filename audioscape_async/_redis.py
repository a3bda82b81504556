"""`RedisBackend`: one rate limit, one 429 pause and one cache for a fleet of processes.

Several worker processes on several hosts behind one API key must share the
key's rate, or each allows the full rate on its own. With a backend they share
three things through one Redis server:

- **The rate limit**, as GCRA (the token bucket's arithmetic twin: one number
  per limit, the theoretical arrival time, TAT). One Lua script per
  acquisition reads Redis's own ``TIME``, so the hosts' clocks do not matter,
  honours the shared pause, reserves the caller's slot and returns how long the
  caller must wait before sending. Scripts run atomically, so N processes
  together send at most ``burst + rate * T`` requests in any T seconds.
- **The pause** a 429's ``Retry-After`` asks for: one key holding the Redis
  instant it ends, only ever extended.
- **The cache store** of `SearchCache`: bytes with a time to live.

Only durations cross the wire; each process sleeps them on its own clock.

**Connections belong to an event loop.** redis-py binds each connection to the
loop that opened it, so a backend keeps one pool per loop (each at most
`max_connections`), made at the loop's first command under a lock (threads may
start at once) and closed when that loop ends: ``asyncio.run`` returning or a
sync `Client` closing cancel every task of their loop, and a small task per
pool closes the pool when it is cancelled. `aclose` closes the pool of the loop
it is awaited in at once. So two sync Clients in two threads, or two
``asyncio.run`` in two threads, share one backend and never one connection.

**Every command has a bound.** Each waits at most ``connect_timeout +
timeout`` (connecting, a free connection, the answer), and within a call's
deadline at most what is left of it (half of it with `fallback`, so that the
call can go on without Redis). A deadline that runs out waiting for Redis is a
`DeadlineExceededError`; with `fallback` the consumer goes on in process.

**Foreign data is repaired, not fatal.** A value of another type under a cache
key reads as a miss (the next store overwrites it); the scripts treat a rate
or pause key holding anything but an instant its expiry allows as absent and
delete it.

redis-py's asyncio client is imported at first use (extra ``redis``); it runs
on asyncio only, so on trio every call raises an `AudioScapeError` naming that
limitation. An unreachable Redis is a `BackendUnavailableError` naming the URL
(never its password) within ``connect_timeout + timeout`` seconds; for
`recheck_interval` seconds after that, calls fail at once instead of trying
again. With ``fallback=True`` the consumers (`SearchCache`, `SharedGate`) log
one WARNING per outage and carry on in process instead, and go back to Redis
once it answers again (logged too). No redis-py exception escapes.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._context import on_asyncio
from ._exceptions import (
    AudioScapeError,
    BackendUnavailableError,
    DeadlineExceededError,
    InvalidParameterError,
    RateLimitError,
)
from ._fingerprint import DEFAULT_KEY_SECRET, check_secret
from ._validation import MAX_STORE_SECONDS, check_store_lifetime

if TYPE_CHECKING:
    import asyncio

    import redis.asyncio as aioredis

    from ._gate import Budget
    from ._ratelimit import RateLimit

__all__ = ["RedisBackend", "SharedGate"]

logger = logging.getLogger("audioscape_async")

#: Redis's clock is in microseconds in the scripts: integers a double holds exactly.
_US = 1_000_000

#: Slack past ``connect_timeout + timeout`` before a command is given up: redis-py's own
#: timeouts fire first; this one is the guarantee of no hang.
_SLACK = 0.5

# The instant (µs) a rate or pause key holds, or nil when it holds none. What the
# scripts write always ends at least a second before the key expires; anything else
# (another type, not a number, an instant past its expiry, no expiry) is foreign or
# corrupt: it is deleted, and the limit goes on as if the key were absent.
_INSTANT = """
local function instant(key, now)
  local value = redis.pcall('GET', key)
  if value == false then return nil end
  local number = type(value) == 'string' and tonumber(value) or nil
  if number then
    local pttl = redis.call('PTTL', key)
    if pttl >= 0 and number <= now + pttl * 1000 then return number end
  end
  redis.call('DEL', key)
  return nil
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""

# KEYS: tat, pause. ARGV: interval (µs), burst, longest pause to wait out (µs, -1:
# any), longest wait the caller can afford (µs, -1: any). Returns {wait µs, pause
# left µs}; wait is -1 when the pause is too long to wait out, and -2 when the
# wait would not fit (the second item is then the wait it would have been); in
# both cases no slot is reserved.
_ACQUIRE = (
    _INSTANT
    + """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_pause = tonumber(ARGV[3])
local paused = (instant(KEYS[2], now) or 0) - now
if paused < 0 then paused = 0 end
if max_pause >= 0 and paused > max_pause then
  return {-1, string.format('%.0f', paused)}
end
local start = now + paused
local tat = instant(KEYS[1], now) or 0
if tat < start then tat = start end
local send = tat - (burst - 1) * interval
if send < start then send = start end
local max_wait = tonumber(ARGV[4])
if max_wait >= 0 and send - now > max_wait then
  return {-2, string.format('%.0f', send - now)}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat),
           'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {string.format('%.0f', send - now), string.format('%.0f', paused)}
"""
)

# KEYS: pause. ARGV: seconds (µs). Extends the pause, never shortens it; returns
# the µs left of the pause now in force.
_PAUSE = (
    _INSTANT
    + """
local wanted = now + tonumber(ARGV[1])
local current = instant(KEYS[1], now) or 0
if wanted > current then
  redis.call('SET', KEYS[1], string.format('%.0f', wanted),
             'PX', math.ceil((wanted - now) / 1000) + 1000)
  current = wanted
end
return string.format('%.0f', current - now)
"""
)

# KEYS: pause. Returns the µs left of the pause in force (0: none).
_PAUSED = (
    _INSTANT
    + """
local left = (instant(KEYS[1], now) or 0) - now
if left < 0 then left = 0 end
return string.format('%.0f', left)
"""
)


def safe_url(url: str) -> str:
    """`url` without its password (and without a user name that may be one)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port is not None else "")
    except ValueError:
        return "<an unreadable Redis URL>"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _seconds(name: str, value: object, *, zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0 or (value == 0 and not zero):  # type: ignore[arg-type, operator]
        raise InvalidParameterError(
            f"backend.{name}",
            f"must be a number of seconds {'>=' if zero else '>'} 0, got {value!r}",
        )
    return float(value)  # type: ignore[arg-type]


def _check_url(url: object) -> None:
    rule = "must be a redis://, rediss:// or unix:// URL"
    if not isinstance(url, str):
        raise InvalidParameterError("backend.url", f"{rule}, got {type(url).__name__}")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise InvalidParameterError("backend.url", f"{rule}; {safe_url(url)!r} is not") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise InvalidParameterError("backend.url", f"{rule}, not a {parts.scheme or 'bare'} URL")


class _LoopPool:
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


class RedisBackend:
    """A Redis server shared by every process and host that uses it.

    >>> fleet = RedisBackend("redis://127.0.0.1:6379/0")
    >>> fleet
    RedisBackend('redis://127.0.0.1:6379/0', prefix='audioscape:', fallback=False)

    Pass it to `SearchCache(backend=...)` and to the rate limit. `prefix`
    starts every key it writes. `connect_timeout` bounds connecting and
    `timeout` each command; an unreachable server is a
    `BackendUnavailableError` (see the module docstring), or with `fallback`
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
        _check_url(url)
        if not isinstance(prefix, str):
            raise InvalidParameterError("backend.prefix", f"must be a string, got {prefix!r}")
        if not isinstance(fallback, bool):
            raise InvalidParameterError(
                "backend.fallback", f"must be True or False, got {fallback!r}"
            )
        if (
            not isinstance(max_connections, int)
            or isinstance(max_connections, bool)
            or max_connections < 1
        ):
            raise InvalidParameterError(
                "backend.max_connections", f"must be an integer >= 1, got {max_connections!r}"
            )
        self._url = url
        self.url = safe_url(url)
        self.prefix = prefix
        self.fallback = fallback
        self.connect_timeout = _seconds("connect_timeout", connect_timeout)
        self.timeout = _seconds("timeout", timeout)
        self.recheck_interval = _seconds("recheck_interval", recheck_interval, zero=True)
        self.max_connections = max_connections
        self._key_secret = check_secret("backend.key_secret", key_secret)
        #: One pool per event loop; `_lock` guards making and dropping them.
        self._pools: dict[asyncio.AbstractEventLoop, _LoopPool] = {}
        self._lock = threading.Lock()
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

        pool = self._pools.get(asyncio.get_running_loop())
        if pool is not None:
            if pool.keeper is not None:
                pool.keeper.cancel()
            await self._release(pool)

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
        as for every command (see the module docstring).
        """
        if not isinstance(rate, (int, float)) or not (math.isfinite(rate) and rate > 0):
            raise InvalidParameterError("backend.rate", f"must be a number > 0, got {rate!r}")
        if not isinstance(burst, int) or isinstance(burst, bool) or burst < 1:
            raise InvalidParameterError("backend.burst", f"must be an integer >= 1, got {burst!r}")
        interval = round(_US / rate)
        limit = -1 if max_pause >= MAX_STORE_SECONDS else round(max(max_pause, 0.0) * _US)
        afford = (
            -1
            if max_wait is None or max_wait >= MAX_STORE_SECONDS
            else round(max(max_wait, 0.0) * _US)
        )
        keys = [self._key("rate:", name), self._key("pause:", name)]
        result = await self._script(
            "acquire", _ACQUIRE, keys, [interval, burst, limit, afford], deadline
        )
        wait, paused = (int(part) for part in result)
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

    async def pause(self, name: str, seconds: float, *, deadline: float | None = None) -> float:
        """Pause every process sharing the limit `name` for `seconds` from now.

        Extends a pause in force, never shortens it; returns the seconds left of
        the pause now in force. A pause is at most ten years long.
        """
        seconds = min(seconds, MAX_STORE_SECONDS) if seconds > 0 else 0.0  # NaN: no pause
        micros = round(seconds * _US)
        left = await self._script("pause", _PAUSE, [self._key("pause:", name)], [micros], deadline)
        return int(left) / _US

    async def paused(self, name: str, *, deadline: float | None = None) -> float:
        """The seconds left of the pause in force on the shared limit `name` (0: none)."""
        left = await self._script("paused", _PAUSED, [self._key("pause:", name)], [], deadline)
        return int(left) / _US

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

    # -- plumbing -------------------------------------------------------------------------

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}{name}"

    async def _script(
        self, name: str, source: str, keys: list[str], args: list[Any], deadline: float | None
    ) -> Any:
        script = self._connect().script(name, source)
        return await self._run(lambda _client: script(keys=keys, args=args), deadline=deadline)

    def _connect(self) -> _LoopPool:
        """The running loop's pool, made at its first command."""
        if not on_asyncio():
            raise AudioScapeError(
                "RedisBackend runs on asyncio only: redis-py's client does not support trio; "
                "use asyncio, or no backend"
            )
        import asyncio

        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is not None:
            return pool
        try:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
        except ImportError as error:
            raise AudioScapeError(
                f"RedisBackend needs redis-py: pip install 'audioscape-async[redis]' ({error})"
            ) from None
        with self._lock:  # threads may make their loops' first commands at once
            pool = self._pools.get(loop)
            if pool is not None:
                return pool
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
                raise InvalidParameterError(
                    "backend.url", f"redis-py cannot use it: {error}"
                ) from None
            self._forget_closed_loops()
            pool = self._pools[loop] = _LoopPool(loop, aioredis.Redis(connection_pool=connections))
            pool.keeper = loop.create_task(self._keep(pool), name=f"RedisBackend({self.url!r})")
        return pool

    def _forget_closed_loops(self) -> None:
        # A loop closed without cancelling its tasks never ran its keeper: its
        # connections cannot be closed from another loop, only dropped.
        for loop in [loop for loop in self._pools if loop.is_closed()]:
            del self._pools[loop]
            logger.debug("dropped the Redis connections of an event loop closed without them")

    async def _keep(self, pool: _LoopPool) -> None:
        """Close `pool` when its loop ends: ``asyncio.run`` and a closing `Client` cancel this."""
        try:
            await pool.loop.create_future()  # until cancelled
        finally:
            await self._release(pool)

    async def _release(self, pool: _LoopPool) -> None:
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

    def _unavailable(self, reason: str) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"Redis at {self.url} is unreachable: {reason}", url=self.url
        )

    def _scrub(self, text: str) -> str:
        password = urllib.parse.urlsplit(self._url).password
        return text.replace(password, "***") if password else text

    async def _run(
        self,
        command: Callable[[aioredis.Redis], Awaitable[Any]],
        *,
        deadline: float | None = None,
    ) -> Any:
        pool = self._connect()
        if time.monotonic() < self._down_until and self._down_reason is not None:
            raise self._unavailable(self._down_reason)
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
        return DeadlineExceededError(f"the call's deadline was reached ({detail})")


class SharedGate:
    """The client's rate gate, shared through a `RedisBackend` by every process.

    The same calls as `Gate` (`wait`, `pause`, `succeeded`, `rate`), except that
    `pause` must be awaited: it writes the pause to Redis. `name` (a
    `_fingerprint.fingerprint`) says which processes share the limit: those of
    one API key at one base URL.
    Adaptive rates are not shared: the configured rate holds. With the
    backend's `fallback`, an unreachable Redis falls back to an in-process
    `Gate` of the same limit.
    """

    __slots__ = ("_backend", "_limit", "_local", "name")

    def __init__(self, limit: RateLimit, backend: RedisBackend, name: str) -> None:
        from ._gate import Gate

        self._limit = limit
        self._backend = backend
        self._local = Gate(limit)
        self.name = name

    @property
    def rate(self) -> float:
        """The rate in force (requests per second)."""
        return self._limit.requests_per_second

    async def wait(
        self,
        *,
        slept_until: float = 0.0,
        max_pause: float = math.inf,
        budget: Budget | None = None,
    ) -> float:
        """Wait for this request's slot of the shared limit; return the seconds waited.

        `slept_until` (a `time.monotonic()` instant the caller already slept to
        after its own 429) skips the local part of that pause; what Redis still
        holds of it (its latency's worth) is waited out. A wait that does not
        fit in the call's `budget` is refused at once, without taking a slot;
        each Redis command waits no longer than the budget either.
        """
        from . import _retry

        backend = self._backend
        local = self._local
        if backend.use_local_store():
            return await local.wait(slept_until=slept_until, max_pause=max_pause, budget=budget)
        left = budget.remaining() if budget is not None else None
        deadline = time.monotonic() + left if left is not None else None
        waited = 0.0
        while True:
            try:
                delay = await backend.acquire(
                    self.name,
                    self._limit.requests_per_second,
                    self._limit.burst,
                    max_pause=max_pause,
                    max_wait=deadline - time.monotonic() if deadline is not None else None,
                    deadline=deadline,
                )
            except BackendUnavailableError as error:
                if not backend.fall_back(error):
                    raise
                return waited + await local.wait(
                    slept_until=slept_until, max_pause=max_pause, budget=budget
                )
            if delay < 0 and budget is not None:
                budget.wait_fits(-delay, "the shared rate limit")  # refused: raises
            if delay <= 0:
                return waited
            await _retry.sleep(delay)
            waited += delay
            # A 429 that any process met while this one waited for its slot holds
            # this request too: the slot is given up and a new one taken after the pause.
            try:
                if await backend.paused(self.name, deadline=deadline) <= 0:
                    return waited
            except BackendUnavailableError as error:
                if not backend.fall_back(error):
                    raise
                return waited

    async def pause(self, seconds: float) -> float:
        """Pause every process of the limit for `seconds`; return when it ends here (monotonic)."""
        until = await self._local.pause(seconds)
        backend = self._backend
        if backend.use_local_store():
            return until
        try:
            left = await backend.pause(self.name, seconds)
        except BackendUnavailableError as error:
            if not backend.fall_back(error):
                raise
            return until
        return max(until, time.monotonic() + left)

    def ready(self) -> bool:
        """Never: whether a request may go is Redis's to say (see `Gate.ready`)."""
        return False

    def succeeded(self) -> None:
        """Note a successful request (the shared rate is not adaptive)."""

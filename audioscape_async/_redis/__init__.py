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

The modules, one job each:

- `_backend.RedisBackend`: the settings, every command with its bound, the
  errors, and the consumers' view of availability;
- `_pools.LoopPools`: the connections, one pool per event loop;
- `_scripts`: the Lua scripts of the rate limit and the pause;
- `_shared_gate.SharedGate`: the client's rate gate over the shared limit;
- `_urls`: the URL's check, and the URL shown without its password.
"""

from __future__ import annotations

from ._backend import RedisBackend
from ._shared_gate import SharedGate
from ._urls import safe_url

__all__ = ["RedisBackend", "SharedGate", "safe_url"]

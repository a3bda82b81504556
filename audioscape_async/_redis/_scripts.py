"""The Lua scripts of the shared rate limit and pause, run atomically by Redis.

Each reads Redis's own ``TIME``, so the hosts' clocks do not matter, and
returns only durations, in microseconds (µs), which each process sleeps on its
own clock. `RedisBackend` registers them with each event loop's client.
"""

from __future__ import annotations

__all__ = ["ACQUIRE", "PAUSE", "PAUSED"]

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
ACQUIRE = (
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
PAUSE = (
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
PAUSED = (
    _INSTANT
    + """
local left = (instant(KEYS[1], now) or 0) - now
if left < 0 then left = 0 end
return string.format('%.0f', left)
"""
)

"""The Lua scripts of the shared rate limit, the pause and the cache's leases, run atomically.

The rate and pause scripts read Redis's own ``TIME``, so the hosts' clocks do
not matter, and return only durations, in microseconds (µs), which each process
sleeps on its own clock. The lease scripts elect one process to fetch a page
the fleet lacks (`_cache`). `RedisBackend` registers them with each event
loop's client.
"""

from __future__ import annotations

__all__ = [
    "ACQUIRE",
    "LEAD",
    "PAUSE",
    "PAUSED",
    "PAUSED_LEARNED",
    "RELEASE",
    "TIER_ACQUIRE",
    "TIER_ARGS",
    "TIER_CUT",
]

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

# The shared GCRA: reserve the next slot of `interval` µs with `burst`, after any pause.
# KEYS[1]: tat, KEYS[2]: pause. Returns {wait µs, pause left µs}; wait is -1 when the
# pause is longer than `max_pause` (µs, -1: any), and -2 when the wait would be longer
# than `max_wait` (µs, -1: any; the second item is then that wait); in both cases no
# slot is reserved.
_GCRA = """
local function gcra(interval, burst, max_pause, max_wait)
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
  if max_wait >= 0 and send - now > max_wait then
    return {-2, string.format('%.0f', send - now)}
  end
  local new_tat = tat + interval
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat),
             'PX', math.ceil((new_tat - now) / 1000) + 1000)
  return {string.format('%.0f', send - now), string.format('%.0f', paused)}
end
"""

# KEYS: tat, pause. ARGV: interval (µs), burst, max_pause, max_wait (see `_GCRA`).
ACQUIRE = (
    _INSTANT
    + _GCRA
    + """
return gcra(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
"""
)

# A rate learned from 429s by every process together (`_tier`, the same rules in
# Lua). KEYS[3] is a hash: `ceiling` (requests/s; absent until the first 429),
# `known` (the tier a steady probe measured), `cut` (µs), `gen` (counts the cuts),
# `probed` (successes since the rate came back to the ceiling), `recent` (since the
# cut), `last` (the last turn given, µs), `lo`, `b<k>` and `s<k>`: the successes and
# the turns given in each `bucket` µs of the last `window` µs. A field that does not
# hold a rate (> 0, finite) counts as absent. TIER_ARGS names the rules' constants,
# passed as ARGV from `_tier`.
_TIER = """
local key = KEYS[3]
local kind = redis.call('TYPE', key)['ok']
if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', key) end
local bucket, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local cubic, plateau, beta = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local nb = math.floor(window / bucket)
local k = math.floor(now / bucket)
local function field(name) return tonumber(redis.call('HGET', key, name) or '') end
local function rate_field(name)
  -- A rate: a finite number > 0, or absent (anything else written there is ignored).
  local value = field(name)
  if value and value > 0 and value < math.huge then return value end
  return nil
end
local ceiling = rate_field('ceiling')
local known = rate_field('known') or 0
local cut = field('cut') or 0
local gen = field('gen') or 0
local recent = field('recent') or 0
local function rate()
  if not ceiling then return math.huge end
  local t = (now - cut) / 1000000 - plateau
  local r = ceiling * (1 + cubic * t * t * t)
  if known > ceiling then
    local fast = math.min(beta * known, ceiling + recent)
    if fast > r then r = fast end
  end
  return r
end
local function prune()
  local lo = field('lo') or (k - nb + 1)
  local last = math.min(lo + nb - 1, k - nb)
  for j = lo, last do redis.call('HDEL', key, 'b' .. j, 's' .. j) end
  redis.call('HSET', key, 'lo', math.max(lo, k - nb + 1))
end
local function window_count(prefix)
  local n, oldest = 0, nil
  for j = k - nb + 1, k do
    local c = field(prefix .. j)
    if c then
      n = n + c
      if not oldest then oldest = j end
    end
  end
  local span = oldest and (now - oldest * bucket) / 1000000 or 0
  return n, span
end
local function report(successes)
  if successes <= 0 then return end
  redis.call('HINCRBY', key, 'b' .. k, successes)
  recent = recent + successes
  redis.call('HSET', key, 'recent', recent)
  if ceiling and now >= cut + plateau * 1000000 then
    redis.call('HINCRBY', key, 'probed', successes)
  end
  prune()
  redis.call('PEXPIRE', key, 86400000)
end
"""
TIER_ARGS = ("bucket", "window", "cubic", "plateau", "beta")

# KEYS: tat, pause, tier. ARGV: the five of TIER_ARGS, then burst, max_pause,
# max_wait (as ACQUIRE), the successes this process saw since it last reported, and
# the nap (µs). Returns ACQUIRE's two items (or -3: no turn, nap and ask again) and
# the cut generation. A fleet idle for a window
# starts again from the ceiling (time sent at nothing is no probe).
TIER_ACQUIRE = (
    _INSTANT
    + _GCRA
    + _TIER
    + """
report(tonumber(ARGV[9]))
local last = field('last')
local idle = ceiling and last and now - last > window and (now - last) / 1000000 * rate() > 2
local r = rate()
local interval = 0
if r < math.huge then interval = math.floor(1000000 / r) end
-- A turn further off than a nap (ARGV[10], µs) is not taken: the process asks again
-- after one, at the rate then, which may have risen (-3); as `Gate.wait` does.
local max_wait, nap = tonumber(ARGV[8]), tonumber(ARGV[10])
local afford = nap
if max_wait >= 0 and max_wait < nap then afford = max_wait end
local result = gcra(interval, tonumber(ARGV[6]), tonumber(ARGV[7]), afford)
if result[1] == -2 and (max_wait < 0 or tonumber(result[2]) <= max_wait) then
  result[1] = -3
end
if tonumber(result[1]) >= 0 then
  -- A turn given: a send, as `_tier.TierFinder.sent` counts it.
  if idle then
    cut = now - plateau * 1000000
    redis.call('HSET', key, 'cut', string.format('%.0f', cut), 'probed', 0)
  end
  redis.call('HINCRBY', key, 's' .. k, 1)
  prune()
  redis.call('HSET', key, 'last', string.format('%.0f', now))
  redis.call('PEXPIRE', key, 86400000)
end
result[3] = gen
return result
"""
)

# KEYS: tat, pause, tier. ARGV: the five of TIER_ARGS, then the cut generation the
# process knew when its request asked for its turn, the successes to report, and
# settled (s), min_samples, floor (requests/s). A 429 to a request whose turn came
# before the last cut changes nothing; any other sets the ceiling from what the
# fleet's successes measure, as `_tier.TierFinder.throttled` does. Returns the
# generation.
TIER_CUT = (
    _INSTANT
    + _TIER
    + """
report(tonumber(ARGV[7]))
if tonumber(ARGV[6]) < gen then return gen end
local settled, min_samples, floor = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local sending = rate()
local fast = ceiling and known > ceiling and math.min(beta * known, ceiling + recent) > ceiling
local probing = (now - cut) / 1000000 - plateau
local probed = field('probed') or 0
local n, span = window_count('b')
local measured
if ceiling and probing >= settled and probed > 0 then
  measured = probed / probing
  known = measured
elseif n >= min_samples and span > 0 then
  measured = (n - 1) / span
  if fast then known = math.min(measured, sending) end
elseif ceiling and now - cut < window then
  return gen
else
  -- Too few got through to measure: half of what was sent, or of the rate.
  local sends, sent_span = window_count('s')
  if sends >= 2 and sent_span > 0 then
    measured = (sends - 1) / sent_span / 2
  elseif sending < math.huge then
    measured = sending / 2
  else
    measured = 2 * floor
  end
end
local lowest = floor
if sending < math.huge and known > 0 and sending / 2 > lowest then lowest = sending / 2 end
if measured > sending then measured = sending end
if measured < lowest then measured = lowest end
redis.call('HSET', key, 'ceiling', string.format('%.6f', measured),
           'known', string.format('%.6f', known), 'cut', string.format('%.0f', now),
           'gen', gen + 1, 'probed', 0, 'recent', 0)
redis.call('PEXPIRE', key, 86400000)
-- The turns given at the old rate are given again from one interval of the new on
-- (the processes that sleep on them ask again when they learn of the cut).
ceiling, cut, recent = measured, now, 0
local tat = now + math.floor(1000000 / rate())
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
return gen + 1
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

# KEYS: pause, tier. Returns {the µs left of the pause in force (0: none), the
# generation of the learned rate}: what a process sleeping on a turn of a learned
# rate needs to know when it wakes (a cut since means its turn was one of the old rate).
PAUSED_LEARNED = (
    _INSTANT
    + """
local left = (instant(KEYS[1], now) or 0) - now
if left < 0 then left = 0 end
local gen = 0
if redis.call('TYPE', KEYS[2])['ok'] == 'hash' then
  gen = tonumber(redis.call('HGET', KEYS[2], 'gen') or '') or 0
end
return {string.format('%.0f', left), gen}
"""
)

# KEYS: entry, lease. ARGV: token, lease (ms). Takes the lease if nobody holds it,
# and reads the entry in the same step: {1 if taken, else 0; the entry or false}.
# A leader stores its page before it lets go of its lease, so a process that
# takes the lease also sees the page of the leader before it. A lease key with no
# expiry, or expiring later than a lease does, was not written here (foreign): it is
# replaced, so it never blocks longer than a lease.
LEAD = """
local pttl = redis.call('PTTL', KEYS[2])
if pttl == -1 or pttl > tonumber(ARGV[2]) then redis.call('DEL', KEYS[2]) end
local taken = redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2])
local ok, value = pcall(redis.call, 'GET', KEYS[1])
if not ok then value = false end
return {taken and 1 or 0, value}
"""

# KEYS: lease. ARGV: token. Lets go of the lease only if it is still this token's
# (a lease that expired and was taken by another process is that process's now).
RELEASE = """
local ok, held = pcall(redis.call, 'GET', KEYS[1])
if ok and held == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

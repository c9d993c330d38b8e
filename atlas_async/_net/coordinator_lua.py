"""
The Lua scripts of `RedisCoordinator`: each change to an account's shared
state is one script, so it is atomic whatever the other processes do.

Times are the Redis server's own (``TIME``), in seconds since an epoch near
2023, so that every process reads one clock and ``%.6f`` keeps microseconds.
Numbers go back to Python as strings: Redis turns a Lua number into an integer.

The rules are those of the per-process controllers, applied to the sum over
processes: the bucket is `AccountRate`'s (GCRA, no burst) and its cut takes the
rate actually sent over the last second (counted in 100 ms buckets); a model's
window is `ModelWindows`' (a refusal sets it to what is in flight, every
``probe_every`` completions with it full it grows by one, never past the known
limit). Each process holds its places under its own field of the model's
hash, valid while its ``alive`` key lives: a process that dies without
giving them back loses them when the key expires (the lease's TTL).
"""

from __future__ import annotations

__all__ = ["CUT", "RESERVE", "RELEASE", "TAKE"]

_NOW = """
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1700000000) + tonumber(t[2]) / 1000000
local function fmt(x) return string.format('%.6f', x) end
local function sent(prefix)
  local total, head = 0, math.floor(now * 10)
  for i = head - 9, head do
    total = total + (tonumber(redis.call('GET', prefix .. i)) or 0)
  end
  return total
end
"""

#: KEYS: rate hash, sent prefix. ARGV: the rate ('' for unlimited).
#: Returns {wait, w_max or '', seconds since the cut, sent over the last second}.
RESERVE = (
    _NOW
    + """
local h = redis.call('HMGET', KEYS[1], 'tat', 'blocked', 'w_max', 'cut_at')
local start = math.max(now, tonumber(h[2]) or 0)
local allowed = start
local rate = tonumber(ARGV[1])
if rate and rate > 0 then
  allowed = math.max(start, tonumber(h[1]) or 0)
  redis.call('HSET', KEYS[1], 'tat', fmt(allowed + 1 / rate))
  redis.call('PEXPIRE', KEYS[1], 86400000)
end
local bucket = KEYS[2] .. math.floor(math.min(allowed, now + 5) * 10)
redis.call('INCR', bucket)
redis.call('PEXPIRE', bucket, 8000)
return {fmt(allowed - now), h[3] or '', fmt(now - (tonumber(h[4]) or 0)),
        fmt(sent(KEYS[2]))}
"""
)

#: KEYS: rate hash, sent prefix. ARGV: cut ('1'/'0'), the rate now ('' for
#: unlimited), cut interval, min rate, Retry-After seconds ('0' for none).
CUT = (
    _NOW
    + """
local retry_after = tonumber(ARGV[5]) or 0
if retry_after > 0 then
  local blocked = tonumber(redis.call('HGET', KEYS[1], 'blocked')) or 0
  redis.call('HSET', KEYS[1], 'blocked', fmt(math.max(blocked, now + retry_after)))
end
if ARGV[1] == '1' then
  local cut_at = tonumber(redis.call('HGET', KEYS[1], 'cut_at'))
  if cut_at == nil or now >= cut_at + tonumber(ARGV[3]) then
    local level = sent(KEYS[2])
    local rate = tonumber(ARGV[2])
    if rate then level = math.min(level, rate) end
    level = math.max(level, tonumber(ARGV[4]))
    redis.call('HSET', KEYS[1], 'w_max', fmt(level), 'cut_at', fmt(now))
    redis.call('HINCRBY', KEYS[1], 'cuts', 1)
  end
end
redis.call('PEXPIRE', KEYS[1], 86400000)
return 1
"""
)

# Sums the live holders' places of a model (dropping the dead ones) and reads
# its learned window ('~w'), probe credit ('~c'), patience ('~p') and the
# window a probe started from ('~f').
_HOLDERS = """
local function holders(key, alive)
  local fields = redis.call('HGETALL', key)
  local total, state = 0, {c = 0, p = 1}
  for i = 1, #fields, 2 do
    local f, v = fields[i], tonumber(fields[i + 1])
    if string.sub(f, 1, 1) == '~' then state[string.sub(f, 2)] = v
    elseif redis.call('EXISTS', alive .. f) == 0 then redis.call('HDEL', key, f)
    else total = total + v end
  end
  return total, state
end
"""

#: KEYS: model hash. ARGV: holder, known limit ('0': none), alive prefix.
#: Returns 1 when a place was taken, 0 when the window is full.
TAKE = (
    _HOLDERS
    + """
local total, state = holders(KEYS[1], ARGV[3])
local window = state.w
local known = tonumber(ARGV[2])
if window == nil and known > 0 then window = known end
if window ~= nil and total >= window then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], 86400000)
return 1
"""
)

#: KEYS: model hash, freed channel. ARGV: holder, outcome, known limit ('0':
#: none), probe_every, alive prefix, model, max patience.
RELEASE = (
    _HOLDERS
    + """
local total, state = holders(KEYS[1], ARGV[5])
local window, credit = state.w, state.c
local known = tonumber(ARGV[3])
if window == nil and known > 0 then window = known end
local full = window ~= nil and total >= window
local mine = tonumber(redis.call('HGET', KEYS[1], ARGV[1])) or 0
if mine > 0 then
  redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
  total = total - 1
end
if ARGV[2] == 'refused' then
  local w = math.max(1, total)
  if known > 0 then w = math.min(w, known) end
  -- The first refusal after a probe: it failed, so the next waits longer.
  local patience = 1
  if state.f ~= nil then patience = math.min(state.p * 2, tonumber(ARGV[7])) end
  redis.call('HSET', KEYS[1], '~w', w, '~c', 0, '~p', patience)
  redis.call('HDEL', KEYS[1], '~f')
elseif ARGV[2] == 'finished' and full then
  credit = credit + 1
  if credit >= tonumber(ARGV[4]) * state.p then
    credit = 0
    redis.call('HSET', KEYS[1], '~f', window)
    if known == 0 or window < known then
      redis.call('HSET', KEYS[1], '~w', window + 1)
    end
  end
  redis.call('HSET', KEYS[1], '~c', credit)
end
redis.call('PEXPIRE', KEYS[1], 86400000)
if ARGV[2] ~= 'refused' then redis.call('PUBLISH', KEYS[2], ARGV[6]) end
return 1
"""
)

-- Admit one call, all or nothing: the callee window, a rate token, a concurrency lease on the
-- trunk and on the line (caller ID). Counts are summed over the live nodes only: a node silent
-- for node_timeout no longer holds slots. Times come from Redis (TIME), never from a node.
-- KEYS: 1 nodes, 2 own leases, 3 own load, 4 rate bucket, 5 callee times
-- ARGV: 1 key base, 2 node id, 3 node timeout ms, 4 node keys ttl ms, 5 lease id, 6 trunk,
--       7 line, 8 max concurrent (trunk), 9 max per number (line), 10 rate (tokens/s),
--       11 burst, 12 bucket ttl ms, 13 callee check (1/0), 14 window ms, 15 per window,
--       16 daily (0: none), 17 times kept, 18 callee ttl ms
-- Returns {code, trunk active, line active}: 0 granted (counts include it), 1 callee, 2 rate,
-- 3 trunk, 4 number, 5 this node is not live (it must rejoin first), 6 lease id taken.
local function int(x) return string.format('%.0f', x) end
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now_us / 1000)
local live_from = now_ms - tonumber(ARGV[3])

local beat = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not beat or tonumber(beat) <= live_from then return {5, 0, 0} end
if redis.call('HEXISTS', KEYS[2], ARGV[5]) == 1 then return {6, 0, 0} end

local callee = ARGV[13] == '1'
if callee then
  local window, per, daily = tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])
  local in_window, in_day = 0, 0
  for _, v in ipairs(redis.call('LRANGE', KEYS[5], 0, -1)) do
    local at = tonumber(v)
    if at and at <= now_ms then
      if at > now_ms - window then in_window = in_window + 1 end
      if at > now_ms - 86400000 then in_day = in_day + 1 end
    end
  end
  if in_window >= per then return {1, 0, 0} end
  if daily > 0 and in_day >= daily then return {1, 0, 0} end
end

local rate, burst = tonumber(ARGV[10]), tonumber(ARGV[11])
local b = redis.call('HMGET', KEYS[4], 'tokens', 'ts')
local tokens, ts = tonumber(b[1]), tonumber(b[2])
if not tokens or not ts then
  tokens, ts = burst, now_us
elseif now_us > ts then
  -- A clock that steps back mints nothing and does not move ts backwards.
  tokens = math.min(burst, tokens + (now_us - ts) / 1000000 * rate)
  ts = now_us
end
if tokens + 1e-9 < 1 then return {2, 0, 0} end

local trunk = ARGV[6]
local line = trunk .. '\n' .. ARGV[7]
local on_trunk, on_line = 0, 0
for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. int(live_from), '+inf')) do
  local c = redis.call('HMGET', ARGV[1] .. ':node:' .. n .. ':load', trunk, line)
  on_trunk = on_trunk + (tonumber(c[1]) or 0)
  on_line = on_line + (tonumber(c[2]) or 0)
end
if on_trunk >= tonumber(ARGV[8]) then return {3, on_trunk, on_line} end
if on_line >= tonumber(ARGV[9]) then return {4, on_trunk, on_line} end

redis.call('HSET', KEYS[4], 'tokens', string.format('%.17g', math.max(0, tokens - 1)), 'ts', int(ts))
redis.call('PEXPIRE', KEYS[4], ARGV[12])
redis.call('HSET', KEYS[2], ARGV[5], line)
redis.call('HINCRBY', KEYS[3], trunk, 1)
redis.call('HINCRBY', KEYS[3], line, 1)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
if callee then
  redis.call('LPUSH', KEYS[5], int(now_ms))
  redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[17]) - 1)
  redis.call('PEXPIRE', KEYS[5], ARGV[18])
end
return {0, on_trunk + 1, on_line + 1}

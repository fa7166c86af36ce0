-- A live node's beat. A node that is not live (never joined, or silent past the timeout, its
-- leases no longer counted and maybe reclaimed) is not revived here: it must rejoin with its
-- live leases (sync.lua), so that it never counts as live with a wrong set of leases.
-- KEYS: 1 nodes, 2 own leases, 3 own load. ARGV: 1 node id, 2 node timeout ms, 3 keys ttl ms.
-- Returns {0 beat | 1 must rejoin, live nodes}.
local function int(x) return string.format('%.0f', x) end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live_from = now_ms - tonumber(ARGV[2])
local beat = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not beat or tonumber(beat) <= live_from then
  return {1, redis.call('ZCOUNT', KEYS[1], '(' .. int(live_from), '+inf')}
end
redis.call('ZADD', KEYS[1], int(now_ms), ARGV[1])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return {0, redis.call('ZCOUNT', KEYS[1], '(' .. int(live_from), '+inf')}

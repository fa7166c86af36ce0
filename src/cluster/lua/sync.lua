-- Make this node's leases exactly the ones it reports (its live calls), rebuilding its load
-- counts from them: reconciliation, and the rejoin of a node that was not live (then it is
-- marked live in the same step). Live calls are put back even beyond a cap: they are running.
-- KEYS: 1 nodes, 2 own leases, 3 own load.
-- ARGV: 1 node id, 2 node timeout ms, 3 keys ttl ms, 4 rejoin (1/0), then from 5 triples
--       lease id, trunk, line.
-- Returns {added, removed, live nodes}; {-1, 0, 0} for a reconcile of a node that is not live.
local function int(x) return string.format('%.0f', x) end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live_from = now_ms - tonumber(ARGV[2])
local beat = redis.call('ZSCORE', KEYS[1], ARGV[1])
local live = beat and tonumber(beat) > live_from
if ARGV[4] ~= '1' and not live then return {-1, 0, 0} end

local given, count = {}, 0
for i = 5, #ARGV - 2, 3 do
  if not given[ARGV[i]] then count = count + 1 end
  given[ARGV[i]] = ARGV[i + 1] .. '\n' .. ARGV[i + 2]
end
local old = redis.call('HGETALL', KEYS[2])
local kept, removed = 0, 0
for i = 1, #old, 2 do
  if given[old[i]] then kept = kept + 1 else removed = removed + 1 end
end
redis.call('DEL', KEYS[2], KEYS[3])
for id, v in pairs(given) do
  redis.call('HSET', KEYS[2], id, v)
  redis.call('HINCRBY', KEYS[3], string.match(v, '^([^\n]*)\n'), 1)
  redis.call('HINCRBY', KEYS[3], v, 1)
end
if ARGV[4] == '1' then redis.call('ZADD', KEYS[1], int(now_ms), ARGV[1]) end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return {count - kept, removed, redis.call('ZCOUNT', KEYS[1], '(' .. int(live_from), '+inf')}

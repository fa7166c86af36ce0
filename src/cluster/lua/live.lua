-- The live nodes' ids (read only): those whose beat is younger than the timeout, by Redis's clock.
-- KEYS: 1 nodes. ARGV: 1 node timeout ms.
local function int(x) return string.format('%.0f', x) end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. int(now_ms - tonumber(ARGV[1])), '+inf')

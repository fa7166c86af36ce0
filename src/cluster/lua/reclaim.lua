-- A live node reclaims the nodes silent past the timeout: their leases and load are deleted
-- and they leave the node set (their calls already stopped counting at the timeout). A node
-- that is not live itself reclaims nothing: it may be the one that was cut off.
-- KEYS: 1 nodes. ARGV: 1 key base, 2 own node id, 3 node timeout ms, 4 most nodes per call.
-- Returns a flat list: node id, leases it held, ...
local function int(x) return string.format('%.0f', x) end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live_from = now_ms - tonumber(ARGV[3])
local beat = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not beat or tonumber(beat) <= live_from then return {} end
local out = {}
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', int(live_from), 'LIMIT', 0, tonumber(ARGV[4]))
for _, n in ipairs(dead) do
  local leases = ARGV[1] .. ':node:' .. n .. ':leases'
  local held = redis.call('HLEN', leases)
  redis.call('DEL', leases, ARGV[1] .. ':node:' .. n .. ':load')
  redis.call('ZREM', KEYS[1], n)
  table.insert(out, n)
  table.insert(out, tostring(held))
end
return out

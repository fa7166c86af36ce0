-- A node that stops with no call left leaves at once (its peers need not wait for the timeout).
-- KEYS: 1 nodes, 2 own leases, 3 own load. ARGV: 1 node id. Returns the leases still held there.
local held = redis.call('HLEN', KEYS[2])
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[1], ARGV[1])
return held

-- Release one lease of this node, exactly once: a lease id not held is a no-op, and a count
-- reaching 0 is deleted, so no counter ever goes negative.
-- KEYS: 1 own leases, 2 own load. ARGV: 1 lease id. Returns 1 released, 0 not held.
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
for _, field in ipairs({string.match(v, '^([^\n]*)\n'), v}) do
  if redis.call('HINCRBY', KEYS[2], field, -1) <= 0 then redis.call('HDEL', KEYS[2], field) end
end
return 1

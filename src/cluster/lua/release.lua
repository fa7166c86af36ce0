-- Release leases of this node, each exactly once: a lease id not held is a no-op, and a count
-- reaching 0 is deleted, so no counter ever goes negative. One call takes a whole batch (the
-- worker drains every release queued meanwhile), so releases cost one round trip per batch.
-- KEYS: 1 own leases, 2 own load. ARGV: the lease ids. Returns how many were held (released).
local released = 0
for i = 1, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    redis.call('HDEL', KEYS[1], ARGV[i])
    for _, field in ipairs({string.match(v, '^([^\n]*)\n'), v}) do
      if redis.call('HINCRBY', KEYS[2], field, -1) <= 0 then redis.call('HDEL', KEYS[2], field) end
    end
    released = released + 1
  end
end
return released

-- A trunk's load across the live nodes (read only).
-- KEYS: 1 nodes. ARGV: 1 key base, 2 node timeout ms, 3 trunk.
-- Returns a flat list of strings: calls on the trunk, then line, calls on it, ...
local function int(x) return string.format('%.0f', x) end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live_from = now_ms - tonumber(ARGV[2])
local trunk = ARGV[3]
local prefix = trunk .. '\n'
local total, lines = 0, {}
for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. int(live_from), '+inf')) do
  local h = redis.call('HGETALL', ARGV[1] .. ':node:' .. n .. ':load')
  for i = 1, #h, 2 do
    local c = tonumber(h[i + 1]) or 0
    if h[i] == trunk then
      total = total + c
    elseif string.sub(h[i], 1, #prefix) == prefix then
      local line = string.sub(h[i], #prefix + 1)
      lines[line] = (lines[line] or 0) + c
    end
  end
end
local out = {int(total)}
for line, c in pairs(lines) do
  table.insert(out, line)
  table.insert(out, int(c))
end
return out

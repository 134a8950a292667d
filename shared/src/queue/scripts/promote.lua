-- KEYS: delayed, queue     ARGV: nowMs, limit
-- Returns how many due ids went back on the list.
--
-- PROMOTE: retries that are due go back to the consuming end of the list.
local delayed, queue = KEYS[1], KEYS[2]
local ids = redis.call('ZRANGEBYSCORE', delayed, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZREM', delayed, id)
  redis.call('RPUSH', queue, id)
end
return #ids

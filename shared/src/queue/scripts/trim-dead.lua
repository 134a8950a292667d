-- KEYS: dead, deadReasons     ARGV: maxEntries, cutoffIso, maxRemovals
-- Returns how many entries it removed.
--
-- TRIM_DEAD: drops the oldest dead entries past the count limit or older than the cutoff, a bounded
-- number per call (the reaper calls it every pass).
local dead, reasons = KEYS[1], KEYS[2]
local maxEntries, cutoff, maxRemovals = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local removed = 0
while removed < maxRemovals do
  local oldest = redis.call('LINDEX', dead, -1)
  if not oldest then break end
  local reason = redis.call('HGET', reasons, oldest)
  if redis.call('LLEN', dead) <= maxEntries and reason and string.sub(reason, 1, 24) >= cutoff then break end
  redis.call('RPOP', dead)
  redis.call('HDEL', reasons, oldest)
  removed = removed + 1
end
return removed

-- KEYS: record, processing, dead, deadReasons     ARGV: id, reason, now
-- Returns 1 (buried), or 0 when the slot did not hold the id (nothing written).
--
-- BURY: a claimed id whose record cannot be read can never run: dead, with its reason.
local record, processing, dead, reasons = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, reason, now = ARGV[1], ARGV[2], ARGV[3]
if redis.call('LREM', processing, 0, id) == 0 then return 0 end
bury(dead, reasons, id, reason, now)
if redis.call('EXISTS', record) == 1 then
  redis.call('HSET', record, 'status', 'failed', 'error', reason, 'finishedAt', now)
  emit(record, id, 'failed', now)
end
return 1

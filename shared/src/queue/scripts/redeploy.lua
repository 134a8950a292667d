-- KEYS: record, queue, log, dead, deadReasons     ARGV: id, now
-- Returns 'requeued', 'missing' (no record), 'removing' (retention is removing it), or the status it
--   has when it is not finished (queued, building, uploading: nothing written).
--
-- REDEPLOY: a finished deployment is queued again from the source already in S3, with a fresh log.
-- Its live build keeps being served until the new build replaces it.
local record, queue, log, dead, reasons = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, now = ARGV[1], ARGV[2]
local status = redis.call('HGET', record, 'status')
if not status then return 'missing' end
if status ~= 'deployed' and status ~= 'failed' and status ~= 'canceled' then return status end
if redis.call('HEXISTS', record, 'removing') == 1 then return 'removing' end
redis.call('HDEL', record, 'error', 'warnings', 'startedAt', 'finishedAt', 'worker', 'cancelRequested', 'settled')
redis.call('HSET', record, 'status', 'queued', 'queuedAt', now, 'attempts', '0')
redis.call('DEL', log)
redis.call('LREM', dead, 0, id)
redis.call('HDEL', reasons, id)
redis.call('LPUSH', queue, id)
emit(record, id, 'queued', now)
return 'requeued'

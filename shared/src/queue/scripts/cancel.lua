-- KEYS: record, queue, delayed     ARGV: id, now, channel
-- Returns 'canceled' (it was waiting: canceled now), 'canceling' (it is building: its owner is told),
--   'missing' (no record), or the status it has when there is nothing to cancel (deployed, failed, canceled, uploading).
--
-- CANCEL: a queued id leaves the list (or the delayed set) and is canceled at once; a running build
-- is flagged (cancelRequested) and its worker told on the cancel channel. The flag outlives a
-- release or retry: whoever next owns the id ends it canceled.
local record, queue, delayed = KEYS[1], KEYS[2], KEYS[3]
local id, now, channel = ARGV[1], ARGV[2], ARGV[3]
local status = redis.call('HGET', record, 'status')
if not status then return 'missing' end
if status == 'queued' then
  redis.call('LREM', queue, 0, id)
  redis.call('ZREM', delayed, id)
  settle_canceled(record, id, now, 'canceled before it started')
  return 'canceled'
end
if status == 'building' then
  redis.call('HSET', record, 'cancelRequested', '1')
  redis.call('PUBLISH', channel, id)
  return 'canceling'
end
return status

-- KEYS: record, processing, delayed, dead, deadReasons
-- ARGV: id, maxAttempts, dueAtMs, reason, now, slot
-- Returns 'retrying', 'dead' (its last attempt), 'canceled' (a cancel was pending), or 'lost' (the
-- slot did not hold it); a repeat after a lost reply returns what the first call did.
--
-- RETRY: a platform failure (S3, Redis). Back through the delayed set, or failed and dead after the
-- last attempt. A cancel asked for meanwhile wins.
local record, processing, delayed, dead, reasons = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, maxAttempts, dueAt, why, now, slot = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local outcome = let_go(record, processing, id, now, slot)
if outcome then return outcome end
local attempts = num(redis.call('HGET', record, 'attempts'), 0)
if attempts >= maxAttempts then
  local reason = 'gave up after ' .. attempts .. ' attempts: ' .. why
  redis.call('HSET', record, 'status', 'failed', 'error', reason, 'finishedAt', now, 'settled', slot .. ' dead')
  bury(dead, reasons, id, reason, now)
  emit(record, id, 'failed', now)
  return 'dead'
end
redis.call('HSET', record, 'status', 'queued', 'queuedAt', now, 'error', 'attempt ' .. attempts .. ' failed: ' .. why .. '; retrying', 'settled', slot .. ' retrying')
redis.call('ZADD', delayed, dueAt, id)
return 'retrying'

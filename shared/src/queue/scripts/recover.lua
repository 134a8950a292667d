-- KEYS: processing, heartbeat, queue, delayed, dead, deadReasons, slots
-- ARGV: recordPrefix, maxAttempts, now, slot, checkHeartbeat ('1'/'0'), why
-- Returns {requeued, died, dropped}; a dead slot (checkHeartbeat) leaves the slots set once its list is empty.
--
-- RECOVER: empties a processing list whose slot is dead (heartbeat gone, checked here so a slot that
-- comes back in time keeps its work) or idle (its own sweep). Each id is judged by its owner, not
-- only its status: a 'queued' id goes back to the consuming end unless a copy already waits; a
-- 'building' id goes back (its attempt counted) only if this very slot was building it, or to the
-- dead list once its attempts are used up; any other copy is stale and dropped.
local processing, heartbeat, queue, delayed, dead, reasons, slots = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local recordPrefix, maxAttempts, now, slot, checkHeartbeat, why = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if checkHeartbeat == '1' and redis.call('EXISTS', heartbeat) == 1 then return {0, 0, 0} end
local requeued, died, dropped = 0, 0, 0
while true do
  local id = redis.call('RPOP', processing)
  if not id then break end
  local record = recordPrefix .. id
  local status = redis.call('HGET', record, 'status')
  local owned = status == 'building' and redis.call('HGET', record, 'worker') == slot
  if not status then
    bury(dead, reasons, id, 'no deployment record for this id', now)
    died = died + 1
  elseif (status == 'queued' or owned) and redis.call('HGET', record, 'cancelRequested') == '1' then
    redis.call('HDEL', record, 'worker')
    settle_canceled(record, id, now, 'canceled')
    dropped = dropped + 1
  elseif status == 'queued' then
    if redis.call('LPOS', queue, id) or redis.call('ZSCORE', delayed, id) then
      dropped = dropped + 1
    else
      redis.call('RPUSH', queue, id)
      requeued = requeued + 1
    end
  elseif owned then
    redis.call('HDEL', record, 'worker')
    local attempts = num(redis.call('HGET', record, 'attempts'), 0)
    if attempts >= maxAttempts then
      local reason = why .. ' on each of ' .. attempts .. ' attempts'
      redis.call('HSET', record, 'status', 'failed', 'error', reason, 'finishedAt', now)
      bury(dead, reasons, id, reason, now)
      emit(record, id, 'failed', now)
      died = died + 1
    else
      redis.call('HSET', record, 'status', 'queued', 'queuedAt', now, 'error', why .. '; retrying')
      redis.call('RPUSH', queue, id)
      requeued = requeued + 1
    end
  else
    dropped = dropped + 1
  end
end
if checkHeartbeat == '1' then redis.call('ZREM', slots, slot) end
return {requeued, died, dropped}

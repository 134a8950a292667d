-- KEYS: record, processing (this slot's), dead, deadReasons, [projectRunning, otherRecord, delayed]
-- ARGV: id, slot, now, processingPrefix, [aliasLabel, otherId ('' for none), dueMs]
-- Returns 'started' (build it), 'owned-elsewhere' (the slot lost it, or another live slot builds a copy:
--   drop this one), 'dropped' (finished, canceled or not uploaded: dropped from the slot's list),
--   'missing' (no record: moved to the dead list), 'waiting' (its branch is building: back to the
--   delayed set, not an attempt), 'branch' (a project deployment asked without its branch keys: read
--   them and ask again) or 'retry' (the branch's running deployment changed: read it and ask again).
--
-- START: claim → building. Only a slot that holds the id may start it. A record that is 'building'
-- for another slot which still holds the id is that slot's ('owned-elsewhere'); one whose owner no
-- longer holds it is a leftover of a lost write and is taken over. A retry of this step (its reply
-- was lost) finds the id already started by this slot.
local record, processing, dead, reasons = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, slot, now, processingPrefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if not redis.call('LPOS', processing, id) then return 'owned-elsewhere' end
local status = redis.call('HGET', record, 'status')
if not status then
  redis.call('LREM', processing, 0, id)
  bury(dead, reasons, id, 'no deployment record for this id', now)
  return 'missing'
end
-- A project's deployment needs its branch's keys: the caller reads them and asks again.
if NKEYS < 7 and redis.call('HEXISTS', record, 'project') == 1 and redis.call('HEXISTS', record, 'aliasLabel') == 1 then return 'branch' end
if status == 'building' then
  local owner = redis.call('HGET', record, 'worker')
  if owner == slot then return 'started' end
  if owner and redis.call('LPOS', processingPrefix .. owner, id) then
    redis.call('LREM', processing, 0, id)
    return 'owned-elsewhere'
  end
elseif status ~= 'queued' then
  redis.call('LREM', processing, 0, id)
  return 'dropped'
end
if redis.call('HGET', record, 'cancelRequested') == '1' then
  redis.call('LREM', processing, 0, id)
  settle_canceled(record, id, now, 'canceled before it started')
  return 'dropped'
end
-- One build per project branch at a time: while another is building, this one waits (not an attempt).
if NKEYS >= 7 then
  local running, other, delayed = KEYS[5], KEYS[6], KEYS[7]
  local label, otherId, due = ARGV[5], ARGV[6], ARGV[7]
  if (redis.call('HGET', running, label) or '') ~= otherId then return 'retry' end
  if otherId ~= '' and otherId ~= id and redis.call('HGET', other, 'status') == 'building' then
    redis.call('LREM', processing, 0, id)
    redis.call('ZADD', delayed, due, id)
    return 'waiting'
  end
  redis.call('HSET', running, label, id)
end
redis.call('HSET', record, 'status', 'building', 'worker', slot, 'startedAt', now)
redis.call('HDEL', record, 'error', 'finishedAt', 'settled')
redis.call('HSET', record, 'attempts', num(redis.call('HGET', record, 'attempts'), 0) + 1)
emit(record, id, 'building', now)
return 'started'

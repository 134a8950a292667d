-- KEYS: record, queue, deployments, [projectDeployments, projectPending, previousRecord, delayed]
-- ARGV: id, now, createdMs, aliasLabel ('' without a project), previousId ('' for none), field, value, ...
-- Returns 'queued' (pushed now), the status it already has when it is not `uploading` (a repeat: nothing
--   pushed), 'missing' (no record: it expired or Redis lost it), or 'retry' (the branch's pending
--   deployment changed since the caller read it: read it again and ask again).
--
-- ENQUEUE: an uploaded deployment joins the list. Idempotent: a retry after a lost reply finds the
-- record no longer `uploading` and pushes nothing, so the caller can always ask again.
local record, queue = KEYS[1], KEYS[2]
local id, now, label, previous = ARGV[1], ARGV[2], ARGV[4], ARGV[5]
local status = redis.call('HGET', record, 'status')
if status ~= 'uploading' then return status or 'missing' end
if NKEYS >= 4 then
  -- The branch's newest waiting deployment supersedes the one before it, so a burst builds once.
  local pending, prevRecord, delayed = KEYS[5], KEYS[6], KEYS[7]
  if (redis.call('HGET', pending, label) or '') ~= previous then return 'retry' end
  if previous ~= '' and previous ~= id and redis.call('HGET', prevRecord, 'status') == 'queued' then
    redis.call('LREM', queue, 0, previous)
    redis.call('ZREM', delayed, previous)
    settle_canceled(prevRecord, previous, now, 'superseded by ' .. id)
  end
  redis.call('HSET', pending, label, id)
end
redis.call('HSET', record, 'status', 'queued', 'queuedAt', now, unpack(ARGV, 6))
redis.call('PERSIST', record)
redis.call('LPUSH', queue, id)
-- Listed from here on (an upload that failed never is), newest first by creation time.
redis.call('ZADD', KEYS[3], ARGV[3], id)
if NKEYS >= 4 then redis.call('ZADD', KEYS[4], ARGV[3], id) end
emit(record, id, 'queued', now)
return 'queued'

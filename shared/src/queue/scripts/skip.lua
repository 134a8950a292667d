-- KEYS: record, deployments, projectDeployments, projectPending, previousRecord, queue, delayed, project, projectBranches
-- ARGV: id, now, createdMs, aliasLabel, previousId ('' for none), production ('1'/'0'), servingId, field, value, ...
-- Returns 'skipped'; the status it already has when it is not `uploading` (a repeat: nothing written);
--   'missing' (no record); 'retry' (the branch's pending deployment changed since the caller read it);
--   'moved' (the alias no longer serves servingId, which the caller compared with: build after all).
--
-- SKIP: a pushed commit that changed none of its project's watched paths ends `skipped`, never built
-- (shared/src/projects/watch.ts). It is the branch's newest word: the deployment waiting for the branch
-- is superseded, and the alias's time (production's too, unless pinned) becomes this one's, so that an
-- older deployment still building never moves the alias away from what this commit holds.
local record = KEYS[1]
local id, now, at, label, previous, production, serving = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local pending, project, branches = KEYS[4], KEYS[8], KEYS[9]
local status = redis.call('HGET', record, 'status')
if status ~= 'uploading' then return status or 'missing' end
if (redis.call('HGET', pending, label) or '') ~= previous then return 'retry' end
if (redis.call('HGET', branches, label) or '') ~= serving then return 'moved' end
if previous ~= '' and previous ~= id then
  if redis.call('HGET', KEYS[5], 'status') == 'queued' then
    redis.call('LREM', KEYS[6], 0, previous)
    redis.call('ZREM', KEYS[7], previous)
    settle_canceled(KEYS[5], previous, now, 'superseded by ' .. id .. ' (which changed none of the watched paths)')
  end
  redis.call('HDEL', pending, label)
end
if at > num(redis.call('HGET', branches, label .. ':at'), -1) then redis.call('HSET', branches, label .. ':at', at) end
if production == '1' and redis.call('HGET', project, 'pinned') ~= '1' and at > num(redis.call('HGET', project, 'productionAt'), -1) then
  redis.call('HSET', project, 'productionAt', at)
end
redis.call('HSET', record, 'status', 'skipped', 'finishedAt', now, unpack(ARGV, 8))
redis.call('PERSIST', record)
redis.call('ZADD', KEYS[2], at, id)
redis.call('ZADD', KEYS[3], at, id)
emit(record, id, 'skipped', now)
return 'skipped'

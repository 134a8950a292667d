-- KEYS: record, deployments, [project, projectDeployments, projectBranches]
-- ARGV: id, createdMs, aliasLabel ('' for none), production ('1'/'0'), field, value, ...
-- Returns 'restored', or 'exists' (Redis has a record: nothing written).
--
-- RESTORE: a deployment's record from its facts in S3 (shared/src/recovery/reconcile.ts), only when
-- Redis has none, with its listings and the aliases SETTLE would have moved.
local id, at, label, production = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('ZADD', KEYS[2], at, id)
if NKEYS >= 3 and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('ZADD', KEYS[4], at, id)
  move_aliases(KEYS[3], KEYS[5], id, label, at, production)
  site_changed(KEYS[3])
end
site_changed(KEYS[1])
return 'restored'

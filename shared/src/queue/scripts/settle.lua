-- KEYS: record, processing, queue, [project, projectBranches]
-- ARGV: id, slot, liveBuild ('' for none), aliasLabel, createdMs, production ('1'/'0'), claimNext ('1'/'0'), outcome,
--       nowMs, skewMs ('0': off), skewBuilds, recordPrefix, skewAlias, skewProduction, skewOwn (history keys),
--       retiredBuilds, field, value, ...
-- Returns {recorded (1/0), the build this one replaced ('' for none), the next id claimed ('' for none)}:
--   {0, '', ''} when the slot did not own the build (nothing written).
--
-- SETTLE: acknowledge and record the outcome in one step, only for the slot that owns the build.
-- With a build id (deployed), the record's liveBuild pointer switches to it in the same step, and
-- the build it replaces is returned so its objects can be removed. A project's aliases move in the
-- same step: the branch alias to this deployment, and production too when it built the production
-- branch and production is not pinned by a rollback; never to a deployment older than the one they
-- point at (a slow build finishing late), and never for a failure.
-- Safe to repeat: the step leaves a mark (settled = "<slot> <outcome> <build>"), so a slot asking again
-- after a lost reply is told its outcome was recorded, with the same replaced build and the id the
-- first ask claimed, and nothing is written twice. With skew protection, the builds the aliases (and a
-- redeployed deployment's own host) served until now join their histories, a redeploy's replaced build
-- waits in builds:retired for the window instead of being removed at once.
local record, processing, queue = KEYS[1], KEYS[2], KEYS[3]
local id, slot, build, label, at, production, outcome = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[8]
local mark = slot .. ' ' .. outcome .. ' ' .. build
if redis.call('LREM', processing, 0, id) == 0 then
  if redis.call('HGET', record, 'settled') == mark then
    local held = redis.call('LRANGE', processing, 0, 0)
    local nextId = ''
    if ARGV[7] == '1' and redis.call('LLEN', processing) == 1 then nextId = held[1] end
    return {1, redis.call('HGET', record, 'replacedBuild') or '', nextId}
  end
  return {0, '', ''}
end
if redis.call('HGET', record, 'worker') ~= slot or redis.call('HGET', record, 'status') ~= 'building' then return {0, '', ''} end
local previous = redis.call('HGET', record, 'liveBuild') or ''
local skew = skew_args(10, ARGV[9])
if build ~= '' then
  redis.call('HSET', record, 'liveBuild', build)
  if previous ~= '' then redis.call('HSET', record, 'replacedBuild', previous) else redis.call('HDEL', record, 'replacedBuild') end
  if skew and previous ~= '' and previous ~= build then
    -- A redeploy: its own host, and the aliases that serve it, served the replaced build until now.
    local member = id .. '/' .. previous
    retire(skew.own, member, skew)
    if NKEYS >= 5 and redis.call('HGET', KEYS[5], label) == id then retire(skew.alias, member, skew) end
    if NKEYS >= 5 and redis.call('HGET', KEYS[4], 'production') == id then retire(skew.production, member, skew) end
    redis.call('ZADD', skew.retired, skew.now + skew.window, member)
  end
end
redis.call('HSET', record, 'settled', mark, unpack(ARGV, 17))
redis.call('HDEL', record, 'cancelRequested')
emit(record, id, redis.call('HGET', record, 'status') or outcome, redis.call('HGET', record, 'finishedAt') or '')
if build ~= '' and NKEYS >= 5 and redis.call('EXISTS', KEYS[4]) == 1 then
  move_aliases(KEYS[4], KEYS[5], id, label, at, production, skew)
  site_changed(KEYS[4])
end
if build ~= '' then site_changed(record) end
-- Claim the next id in the same step (what BLMOVE would do), so a busy slot needs no claim of its
-- own; only when the slot holds nothing else (a stranded id waits for the slot's idle sweep).
local nextId = ''
if ARGV[7] == '1' and redis.call('LLEN', processing) == 0 then
  nextId = redis.call('LMOVE', queue, processing, 'RIGHT', 'LEFT') or ''
end
return {1, previous, nextId}

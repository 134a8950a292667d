-- KEYS: record, processing, queue, dead, deadReasons, [project, projectBranches]
-- ARGV: id, slot, liveBuild ('' for none), aliasLabel, createdMs, production ('1'/'0'), claimNext ('1'/'0'), outcome,
--       nowMs, skewMs ('0': off), skewBuilds, recordPrefix, skewAlias, skewProduction, skewOwn (history keys),
--       retiredBuilds, now (ISO), processingPrefix, field, value, ...
-- Returns {recorded (1/0), the build this one replaced ('' for none), the next id claimed ('' for none),
--   START's answer for it ('' for none), and when that is 'started' its record's fields and values}:
--   {0, '', '', ''} when the slot did not own the build (nothing written).
--
-- SETTLE: acknowledge and record the outcome in one step, only for the slot that owns the build.
-- With a build id (deployed), the record's liveBuild pointer switches to it in the same step, and
-- the build it replaces is returned so its objects can be removed. A project's aliases move in the
-- same step: the branch alias to this deployment, and production too when it built the production
-- branch and production is not pinned by a rollback; never to a deployment older than the one they
-- point at (a slow build finishing late), and never for a failure.
-- Safe to repeat: the step leaves a mark (settled = "<slot> <outcome> <build>"), so a slot asking again
-- after a lost reply is told its outcome was recorded, with the same replaced build and the id the
-- first ask claimed (and started), and nothing is written twice. With skew protection, the builds the aliases (and a
-- redeployed deployment's own host) served until now join their histories, a redeploy's replaced build
-- waits in builds:retired for the window instead of being removed at once.
local record, processing, queue, dead, reasons = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local hasProject = NKEYS >= 7
local project, branches = KEYS[6], KEYS[7]
-- Claim the next id in the same step (what BLMOVE would do) and start it (what START would do), so
-- a busy slot needs neither step of its own; only when the slot holds nothing else (a stranded id
-- waits for the slot's idle sweep). A project deployment is claimed, not started: START reads its
-- branch first ('branch').
local function start_next(nextId)
  if nextId == '' then return {''} end
  local nextRecord = ARGV[12] .. nextId
  local state = start_claimed(nextRecord, processing, dead, reasons, nextId, ARGV[2], ARGV[17], ARGV[18], nil)
  if state == 'started' then return {state, redis.call('HGETALL', nextRecord)} end
  return {state}
end
local function reply(recorded, previous, nextId)
  local started = start_next(nextId)
  local out = {recorded, previous, nextId, started[1]}
  if started[2] then for _, v in ipairs(started[2]) do out[#out + 1] = v end end
  return out
end
local id, slot, build, label, at, production, outcome = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[8]
local mark = slot .. ' ' .. outcome .. ' ' .. build
if redis.call('LREM', processing, 0, id) == 0 then
  if redis.call('HGET', record, 'settled') == mark then
    local held = redis.call('LRANGE', processing, 0, 0)
    local nextId = ''
    if ARGV[7] == '1' and redis.call('LLEN', processing) == 1 then nextId = held[1] end
    return reply(1, redis.call('HGET', record, 'replacedBuild') or '', nextId)
  end
  return {0, '', '', ''}
end
-- One read and one write of the record where it can be (each redis.call costs about a microsecond).
local worker, status, previous, ownProject = unpack(redis.call('HMGET', record, 'worker', 'status', 'liveBuild', 'project'))
if worker ~= slot or status ~= 'building' then return {0, '', '', ''} end
previous = previous or ''
local skew = skew_args(10, ARGV[9])
local written = {'settled', mark}
local removed = {'cancelRequested'}
if build ~= '' then
  written[#written + 1], written[#written + 2] = 'liveBuild', build
  if previous ~= '' then
    written[#written + 1], written[#written + 2] = 'replacedBuild', previous
  else
    removed[#removed + 1] = 'replacedBuild'
  end
  if skew and previous ~= '' and previous ~= build then
    -- A redeploy: its own host, and the aliases that serve it, served the replaced build until now.
    local member = id .. '/' .. previous
    retire(skew.own, member, skew)
    if hasProject and redis.call('HGET', branches, label) == id then retire(skew.alias, member, skew) end
    if hasProject and redis.call('HGET', project, 'production') == id then retire(skew.production, member, skew) end
    redis.call('ZADD', skew.retired, skew.now + skew.window, member)
  end
end
for i = 19, #ARGV do written[#written + 1] = ARGV[i] end
redis.call('HSET', record, unpack(written))
redis.call('HDEL', record, unpack(removed))
if ownProject then
  local now, finished = unpack(redis.call('HMGET', record, 'status', 'finishedAt'))
  emit_event(id, now or outcome, finished or '')
end
if build ~= '' and hasProject and redis.call('EXISTS', project) == 1 then
  move_aliases(project, branches, id, label, at, production, skew)
  site_changed(project)
end
if build ~= '' then site_changed(record) end
local nextId = ''
if ARGV[7] == '1' and redis.call('LLEN', processing) == 0 then
  nextId = redis.call('LMOVE', queue, processing, 'RIGHT', 'LEFT') or ''
end
return reply(1, previous, nextId)

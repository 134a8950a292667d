-- Helpers shared by the scripts. A dead entry's reason starts with the ISO time it died, so the
-- reaper can trim by age, and an id is on the dead list at most once.
-- Every script is given one key more than its header names, last: the events stream (runScript adds
-- it). NKEYS is how many the caller gave; a script tells its optional keys by NKEYS, never by #KEYS.
local NKEYS = #KEYS - 1
local EVENTS = KEYS[#KEYS]
-- A project deployment's change of state joins the events stream (upload-service/src/notify/ reads it
-- for commit statuses, pull-request comments and webhooks). Only a step that writes the change emits
-- it, so a repeated step (a lost reply) emits nothing twice.
local function emit_event(id, event, now)
  redis.call('XADD', EVENTS, 'MAXLEN', '~', '100000', '*', 'id', id, 'event', event, 'at', now)
end
local function emit(record, id, event, now)
  if redis.call('HEXISTS', record, 'project') == 1 then emit_event(id, event, now) end
end
-- What sites serve changed: a site server drops what it holds of `what` (a record's or a project's key,
-- or `domain:<host>`). The channel is keys.ts's SITES_CHANGED_CHANNEL.
local function site_changed(what)
  redis.call('PUBLISH', 'sites:changed', what)
end
-- A number read from a hash field, or the default when it is missing or malformed: a script must
-- never fail on what it reads after it has written (Redis keeps a failed script's writes).
local function num(value, default)
  return tonumber(value or '') or default
end
-- A project's aliases once deployment `id` (created at `at`, ms) serves a site: its branch alias, and
-- production too when it built the production branch and no rollback pinned production; never back
-- to a deployment older than the one they point at (a slow build finishing late). SETTLE and RESTORE.
-- Skew protection (`skew`, nil when off: {now, window ms, builds kept, record prefix, alias history,
-- production history}): the build an alias served until now joins its history, and the deployment
-- that served it is kept by retention for the window (`skewUntil`).
local function retire(history, member, skew)
  redis.call('ZADD', history, skew.now, member)
  redis.call('ZREMRANGEBYSCORE', history, '-inf', skew.now - skew.window)
  redis.call('ZREMRANGEBYRANK', history, 0, -(skew.keep + 1))
  redis.call('PEXPIRE', history, skew.window)
end
local function retire_deployment(old, id, history, skew)
  if not skew or not old or old == id then return end
  local record = skew.prefix .. old
  local build = redis.call('HGET', record, 'liveBuild')
  if not build then return end
  retire(history, old .. '/' .. build, skew)
  if num(redis.call('HGET', record, 'skewUntil'), 0) < skew.now + skew.window then
    redis.call('HSET', record, 'skewUntil', skew.now + skew.window)
  end
end
local function move_aliases(project, branches, id, label, at, production, skew)
  if label ~= '' and at >= num(redis.call('HGET', branches, label .. ':at'), -1) then
    if skew then retire_deployment(redis.call('HGET', branches, label), id, skew.alias, skew) end
    redis.call('HSET', branches, label, id, label .. ':at', at)
  end
  if production == '1' and redis.call('HGET', project, 'pinned') ~= '1'
     and at >= num(redis.call('HGET', project, 'productionAt'), -1) then
    if skew then retire_deployment(redis.call('HGET', project, 'production'), id, skew.production, skew) end
    redis.call('HSET', project, 'production', id, 'productionAt', at)
  end
end
-- Skew settings from seven ARGV from `from` on: window ms ('0': off), builds kept, record prefix, the
-- alias's, production's and the deployment's own history keys, and the retired builds' key.
local function skew_args(from, now)
  local window = tonumber(ARGV[from]) or 0
  if window <= 0 then return nil end
  return { now = tonumber(now), window = window, keep = tonumber(ARGV[from + 1]) or 5, prefix = ARGV[from + 2], alias = ARGV[from + 3], production = ARGV[from + 4], own = ARGV[from + 5], retired = ARGV[from + 6] }
end
local function bury(dead, reasons, id, reason, now)
  redis.call('LREM', dead, 0, id)
  redis.call('LPUSH', dead, id)
  redis.call('HSET', reasons, id, now .. ' ' .. reason)
end
local function settle_canceled(record, id, now, why)
  redis.call('HSET', record, 'status', 'canceled', 'error', why, 'finishedAt', now)
  redis.call('HDEL', record, 'cancelRequested')
  emit(record, id, 'canceled', now)
end
-- The owner lets go of a started build (release, retry): 'lost' when it no longer held it, or the
-- outcome it recorded then when this is its repeat (a lost reply: the mark tells); 'canceled' when a
-- cancel is pending (that wins), nil when the caller decides what comes next (and marks it).
local function let_go(record, processing, id, now, slot)
  if redis.call('LREM', processing, 0, id) == 0 then
    local settled = redis.call('HGET', record, 'settled') or ''
    if string.sub(settled, 1, #slot + 1) == slot .. ' ' then return string.sub(settled, #slot + 2) end
    return 'lost'
  end
  redis.call('HDEL', record, 'worker')
  if redis.call('HGET', record, 'cancelRequested') == '1' then
    settle_canceled(record, id, now, 'canceled while building')
    redis.call('HSET', record, 'settled', slot .. ' canceled')
    return 'canceled'
  end
  return nil
end
-- START's rules (start.lua), also run by SETTLE on the id it claims next. `branch` is nil, or for a
-- project deployment its branch's keys and what the caller read: {running, other, delayed, label,
-- otherId, due}; without it a project deployment answers 'branch' (the caller reads them and asks
-- again). Returns a StartResult, 'branch' or 'retry' (see start.lua).
local function start_claimed(record, processing, dead, reasons, id, slot, now, processingPrefix, branch)
  if not redis.call('LPOS', processing, id) then return 'owned-elsewhere' end
  -- One read of the record (each redis.call costs about a microsecond).
  local status, project, label, owner, cancel, attempts = unpack(redis.call('HMGET', record, 'status', 'project', 'aliasLabel', 'worker', 'cancelRequested', 'attempts'))
  if not status then
    redis.call('LREM', processing, 0, id)
    bury(dead, reasons, id, 'no deployment record for this id', now)
    return 'missing'
  end
  if not branch and project and label then return 'branch' end
  if status == 'building' then
    if owner == slot then return 'started' end
    if owner and redis.call('LPOS', processingPrefix .. owner, id) then
      redis.call('LREM', processing, 0, id)
      return 'owned-elsewhere'
    end
  elseif status ~= 'queued' then
    redis.call('LREM', processing, 0, id)
    return 'dropped'
  end
  if cancel == '1' then
    redis.call('LREM', processing, 0, id)
    settle_canceled(record, id, now, 'canceled before it started')
    return 'dropped'
  end
  -- One build per project branch at a time: while another is building, this one waits (not an attempt).
  if branch then
    if (redis.call('HGET', branch.running, branch.label) or '') ~= branch.otherId then return 'retry' end
    if branch.otherId ~= '' and branch.otherId ~= id and redis.call('HGET', branch.other, 'status') == 'building' then
      redis.call('LREM', processing, 0, id)
      redis.call('ZADD', branch.delayed, branch.due, id)
      return 'waiting'
    end
    redis.call('HSET', branch.running, branch.label, id)
  end
  redis.call('HSET', record, 'status', 'building', 'worker', slot, 'startedAt', now, 'attempts', num(attempts, 0) + 1)
  redis.call('HDEL', record, 'error', 'finishedAt', 'settled')
  if project then emit_event(id, 'building', now) end
  return 'started'
end

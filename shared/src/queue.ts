// The queue protocol: the only code that knows Slipway's Redis key names and status transitions.
// Each transition is one Lua script (or MULTI), so a status never disagrees with the lists.
//
// Ownership is per claimed id: a slot owns an id while the id is in its processing list, and only
// the owner may start it, record its outcome, release it or retry it. Every script that acts for a
// slot first checks that the slot still holds the id, and does nothing otherwise.
import { createHash } from 'node:crypto';
import type { Redis } from './redis';
import { fromHash, toHash, type DeploymentRecord, type Status } from './record';
import { Projects, pageNewestFirst, projectBranchesKey, projectDeploymentsKey, projectKey, projectPendingKey, projectRunningKey, type Page } from './projects';

export const QUEUE_KEY = 'build-queue';
const DEAD_KEY = 'build-queue:dead';
const DEAD_REASONS_KEY = 'build-queue:dead:reasons';
const DELAYED_KEY = 'build-queue:delayed';
const REAPER_LOCK_KEY = 'build-queue:reaper-lock';
/** A client's Idempotency-Key (hashed with who sent it and where) → the deployment it made, for 24 h. */
const idempotencyKey = (hash: string) => `idempotency:${hash}`;
/** Held (and renewed) by the request preparing that deployment: a retry while it lives is told to wait. */
const idempotencyLeaseKey = (hash: string) => `idempotency:${hash}:lease`;
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
/** Written by every readiness probe: proves Redis answers and takes writes (a full Redis refuses them). */
const READY_KEY = 'build-queue:ready';
/** `<id>/<build>` of builds that never went live (or no longer are) whose removal failed. */
const UNREMOVED_KEY = 'builds:unremoved';
const PROCESSING_PREFIX = 'build-queue:processing:';
const HEARTBEAT_PREFIX = 'build-queue:heartbeat:';
/**
 * Every slot that may hold a processing list, scored by when its heartbeat expires (ms): kept by the
 * heartbeats, emptied by the reaper. What the reaper, stats and metrics read instead of scanning the keyspace.
 */
const SLOTS_KEY = 'build-queue:slots';
/** Set once the slots set was filled from the processing lists of workers that predate it (one SCAN, ever). */
const SLOTS_SEEDED_KEY = 'build-queue:slots:seeded';
/** Pub/sub channel on which a cancel request names the deployment id to stop. */
export const CANCEL_CHANNEL = 'build-queue:cancel';
const RECORD_PREFIX = 'deployment:';
/** Every deployment id by creation time (ms), for listings. */
export const DEPLOYMENTS_KEY = 'deployments';
/** How long a build waits before looking again when its project branch is already building. */
const BRANCH_WAIT_MS = 1000;
/** Alias fields kept between a start and its settle, per Queue instance. */
const MAX_REMEMBERED_CLAIMS = 1000;
export const recordKey = (id: string) => `${RECORD_PREFIX}${id}`;
export const logKey = (id: string) => `${RECORD_PREFIX}${id}:log`;
const processingKey = (slot: string) => `${PROCESSING_PREFIX}${slot}`;
const heartbeatKey = (slot: string) => `${HEARTBEAT_PREFIX}${slot}`;

/** How many log entries a deployment's stream keeps (the byte cap is the build runner's). */
const LOG_MAX_ENTRIES = 20_000;
/** An `uploading` record expires if its upload-service dies before enqueueing it (its source is then the janitor's). */
export const UPLOADING_TTL_SECONDS = 3600;
/** The dead list keeps at most this many ids, none older than DEAD_MAX_AGE_MS (trimmed by the reaper). */
export const DEAD_MAX_ENTRIES = 10_000;
export const DEAD_MAX_AGE_MS = 30 * 24 * 3600_000;
/** Extra time a blocking claim's reply may take beyond its block time before its watchdog gives up. */
const CLAIM_REPLY_GRACE_MS = 5000;

/** A blocking claim got no reply in its block time plus a grace: its connection is stuck and must be replaced. */
export class ClaimStalledError extends Error {
  constructor(slot: string, ms: number) {
    super(`the blocking claim of slot ${slot} got no reply within ${ms} ms; its connection is stuck`);
    this.name = 'ClaimStalledError';
  }
}

// The scripts below touch `deployment:<id>` keys named from list entries, not only KEYS: fine on one
// Redis primary (what Slipway runs on), not on Redis Cluster.

// Helpers shared by the scripts. A dead entry's reason starts with the ISO time it died, so the
// reaper can trim by age, and an id is on the dead list at most once.
const LUA_HELPERS = `
-- A number read from a hash field, or the default when it is missing or malformed: a script must
-- never fail on what it reads after it has written (Redis keeps a failed script's writes).
local function num(value, default)
  return tonumber(value or '') or default
end
local function bury(dead, reasons, id, reason, now)
  redis.call('LREM', dead, 0, id)
  redis.call('LPUSH', dead, id)
  redis.call('HSET', reasons, id, now .. ' ' .. reason)
end
local function settle_canceled(record, now, why)
  redis.call('HSET', record, 'status', 'canceled', 'error', why, 'finishedAt', now)
  redis.call('HDEL', record, 'cancelRequested')
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
    settle_canceled(record, now, 'canceled while building')
    redis.call('HSET', record, 'settled', slot .. ' canceled')
    return 'canceled'
  end
  return nil
end
`;

// ENQUEUE: an uploaded deployment joins the list. Idempotent: a retry after a lost reply finds the
// record no longer `uploading` and pushes nothing, so the caller can always ask again.
const ENQUEUE_SCRIPT = `
-- KEYS: record, queue, deployments, [projectDeployments, projectPending, previousRecord, delayed]
-- ARGV: id, now, createdMs, aliasLabel ('' without a project), previousId ('' for none), field, value, ...
local record, queue = KEYS[1], KEYS[2]
local id, now, label, previous = ARGV[1], ARGV[2], ARGV[4], ARGV[5]
local status = redis.call('HGET', record, 'status')
if status ~= 'uploading' then return status or 'missing' end
if KEYS[4] then
  -- The branch's newest waiting deployment supersedes the one before it, so a burst builds once.
  local pending, prevRecord, delayed = KEYS[5], KEYS[6], KEYS[7]
  if (redis.call('HGET', pending, label) or '') ~= previous then return 'retry' end
  if previous ~= '' and previous ~= id and redis.call('HGET', prevRecord, 'status') == 'queued' then
    redis.call('LREM', queue, 0, previous)
    redis.call('ZREM', delayed, previous)
    settle_canceled(prevRecord, now, 'superseded by ' .. id)
  end
  redis.call('HSET', pending, label, id)
end
redis.call('HSET', record, 'status', 'queued', 'queuedAt', now, unpack(ARGV, 6))
redis.call('PERSIST', record)
redis.call('LPUSH', queue, id)
-- Listed from here on (an upload that failed never is), newest first by creation time.
redis.call('ZADD', KEYS[3], ARGV[3], id)
if KEYS[4] then redis.call('ZADD', KEYS[4], ARGV[3], id) end
return 'queued'
`;

// KEEP-UPLOADING: an upload in progress keeps its record alive (it expires only when its
// upload-service dies); never a record that has left `uploading`, which enqueue made persistent.
const KEEP_UPLOADING_SCRIPT = `
-- KEYS: record     ARGV: ttlSeconds
-- Returns 1 when the record is uploading (its life renewed), 0 when it is not (or is gone).
if redis.call('HGET', KEYS[1], 'status') ~= 'uploading' then return 0 end
return redis.call('EXPIRE', KEYS[1], ARGV[1])
`;

// START: claim → building. Only a slot that holds the id may start it. A record that is 'building'
// for another slot which still holds the id is that slot's ('owned-elsewhere'); one whose owner no
// longer holds it is a leftover of a lost write and is taken over. A retry of this step (its reply
// was lost) finds the id already started by this slot.
const START_SCRIPT = `
-- KEYS: record, processing (this slot's), dead, deadReasons, [projectRunning, otherRecord, delayed]
-- ARGV: id, slot, now, processingPrefix, [aliasLabel, otherId ('' for none), dueMs]
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
if #KEYS < 7 and redis.call('HEXISTS', record, 'project') == 1 and redis.call('HEXISTS', record, 'aliasLabel') == 1 then return 'branch' end
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
  settle_canceled(record, now, 'canceled before it started')
  return 'dropped'
end
-- One build per project branch at a time: while another is building, this one waits (not an attempt).
if #KEYS >= 7 then
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
return 'started'
`;

// SETTLE: acknowledge and record the outcome in one step, only for the slot that owns the build.
// With a build id (deployed), the record's liveBuild pointer switches to it in the same step, and
// the build it replaces is returned so its objects can be removed. A project's aliases move in the
// same step: the branch alias to this deployment, and production too when it built the production
// branch and production is not pinned by a rollback; never to a deployment older than the one they
// point at (a slow build finishing late), and never for a failure.
// Safe to repeat: the step leaves a mark (settled = "<slot> <outcome> <build>"), so a slot asking again
// after a lost reply is told its outcome was recorded, with the same replaced build and the id the
// first ask claimed, and nothing is written twice.
const SETTLE_SCRIPT = `
-- KEYS: record, processing, queue, [project, projectBranches]
-- ARGV: id, slot, liveBuild ('' for none), aliasLabel, createdMs, production ('1'/'0'), claimNext ('1'/'0'), outcome, field, value, ...
-- Returns {recorded (1/0), the build this one replaced ('' for none), the next id claimed ('' for none)}:
--   {0, '', ''} when the slot did not own the build (nothing written).
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
if build ~= '' then
  redis.call('HSET', record, 'liveBuild', build)
  if previous ~= '' then redis.call('HSET', record, 'replacedBuild', previous) else redis.call('HDEL', record, 'replacedBuild') end
end
redis.call('HSET', record, 'settled', mark, unpack(ARGV, 9))
redis.call('HDEL', record, 'cancelRequested')
if build ~= '' and #KEYS >= 5 and redis.call('EXISTS', KEYS[4]) == 1 then
  local project, branches = KEYS[4], KEYS[5]
  if at >= num(redis.call('HGET', branches, label .. ':at'), -1) then
    redis.call('HSET', branches, label, id, label .. ':at', at)
  end
  if production == '1' and redis.call('HGET', project, 'pinned') ~= '1'
     and at >= num(redis.call('HGET', project, 'productionAt'), -1) then
    redis.call('HSET', project, 'production', id, 'productionAt', at)
  end
end
-- Claim the next id in the same step (what BLMOVE would do), so a busy slot needs no claim of its
-- own; only when the slot holds nothing else (a stranded id waits for the slot's idle sweep).
local nextId = ''
if ARGV[7] == '1' and redis.call('LLEN', processing) == 0 then
  nextId = redis.call('LMOVE', queue, processing, 'RIGHT', 'LEFT') or ''
end
return {1, previous, nextId}
`;

// RELEASE: the owner gives a started build back (it is shutting down): next in line, status queued,
// the attempt handed back (a shutdown is not the deployment's failure). A cancel asked for meanwhile
// wins: the deployment ends canceled instead.
const RELEASE_SCRIPT = `
-- KEYS: record, processing, queue     ARGV: id, now, slot
-- Returns 'released', 'canceled' (a cancel was pending), or 'lost' (the slot did not hold it); a
-- repeat after a lost reply returns what the first call did.
local record, processing, queue = KEYS[1], KEYS[2], KEYS[3]
local id, now, slot = ARGV[1], ARGV[2], ARGV[3]
local outcome = let_go(record, processing, id, now, slot)
if outcome then return outcome end
redis.call('HSET', record, 'attempts', math.max(0, num(redis.call('HGET', record, 'attempts'), 1) - 1))
redis.call('HSET', record, 'status', 'queued', 'queuedAt', now, 'settled', slot .. ' released')
redis.call('RPUSH', queue, id)
return 'released'
`;

// RETRY: a platform failure (S3, Redis). Back through the delayed set, or failed and dead after the
// last attempt. A cancel asked for meanwhile wins.
const RETRY_SCRIPT = `
-- KEYS: record, processing, delayed, dead, deadReasons
-- ARGV: id, maxAttempts, dueAtMs, reason, now, slot
-- Returns 'retrying', 'dead' (its last attempt), 'canceled' (a cancel was pending), or 'lost' (the
-- slot did not hold it); a repeat after a lost reply returns what the first call did.
local record, processing, delayed, dead, reasons = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, maxAttempts, dueAt, why, now, slot = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local outcome = let_go(record, processing, id, now, slot)
if outcome then return outcome end
local attempts = num(redis.call('HGET', record, 'attempts'), 0)
if attempts >= maxAttempts then
  local reason = 'gave up after ' .. attempts .. ' attempts: ' .. why
  redis.call('HSET', record, 'status', 'failed', 'error', reason, 'finishedAt', now, 'settled', slot .. ' dead')
  bury(dead, reasons, id, reason, now)
  return 'dead'
end
redis.call('HSET', record, 'status', 'queued', 'queuedAt', now, 'error', 'attempt ' .. attempts .. ' failed: ' .. why .. '; retrying', 'settled', slot .. ' retrying')
redis.call('ZADD', delayed, dueAt, id)
return 'retrying'
`;

// BURY: a claimed id whose record cannot be read can never run: dead, with its reason.
const BURY_SCRIPT = `
-- KEYS: record, processing, dead, deadReasons     ARGV: id, reason, now
local record, processing, dead, reasons = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, reason, now = ARGV[1], ARGV[2], ARGV[3]
if redis.call('LREM', processing, 0, id) == 0 then return 0 end
bury(dead, reasons, id, reason, now)
if redis.call('EXISTS', record) == 1 then
  redis.call('HSET', record, 'status', 'failed', 'error', reason, 'finishedAt', now)
end
return 1
`;

// PROMOTE: retries that are due go back to the consuming end of the list.
const PROMOTE_SCRIPT = `
-- KEYS: delayed, queue     ARGV: nowMs, limit
local delayed, queue = KEYS[1], KEYS[2]
local ids = redis.call('ZRANGEBYSCORE', delayed, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZREM', delayed, id)
  redis.call('RPUSH', queue, id)
end
return #ids
`;

// RECOVER: empties a processing list whose slot is dead (heartbeat gone, checked here so a slot that
// comes back in time keeps its work) or idle (its own sweep). Each id is judged by its owner, not
// only its status: a 'queued' id goes back to the consuming end unless a copy already waits; a
// 'building' id goes back (its attempt counted) only if this very slot was building it, or to the
// dead list once its attempts are used up; any other copy is stale and dropped.
const RECOVER_SCRIPT = `
-- KEYS: processing, heartbeat, queue, delayed, dead, deadReasons, slots
-- ARGV: recordPrefix, maxAttempts, now, slot, checkHeartbeat ('1'/'0'), why
-- Returns {requeued, died, dropped}; a dead slot (checkHeartbeat) leaves the slots set once its list is empty.
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
    settle_canceled(record, now, 'canceled')
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
`;

// CANCEL: a queued id leaves the list (or the delayed set) and is canceled at once; a running build
// is flagged (cancelRequested) and its worker told on the cancel channel. The flag outlives a
// release or retry: whoever next owns the id ends it canceled.
const CANCEL_SCRIPT = `
-- KEYS: record, queue, delayed     ARGV: id, now, channel
local record, queue, delayed = KEYS[1], KEYS[2], KEYS[3]
local id, now, channel = ARGV[1], ARGV[2], ARGV[3]
local status = redis.call('HGET', record, 'status')
if not status then return 'missing' end
if status == 'queued' then
  redis.call('LREM', queue, 0, id)
  redis.call('ZREM', delayed, id)
  settle_canceled(record, now, 'canceled before it started')
  return 'canceled'
end
if status == 'building' then
  redis.call('HSET', record, 'cancelRequested', '1')
  redis.call('PUBLISH', channel, id)
  return 'canceling'
end
return status
`;

// REDEPLOY: a finished deployment is queued again from the source already in S3, with a fresh log.
// Its live build keeps being served until the new build replaces it.
const REDEPLOY_SCRIPT = `
-- KEYS: record, queue, log, dead, deadReasons     ARGV: id, now
local record, queue, log, dead, reasons = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, now = ARGV[1], ARGV[2]
local status = redis.call('HGET', record, 'status')
if not status then return 'missing' end
if status ~= 'deployed' and status ~= 'failed' and status ~= 'canceled' then return status end
if redis.call('HEXISTS', record, 'removing') == 1 then return 'removing' end
redis.call('HDEL', record, 'error', 'startedAt', 'finishedAt', 'worker', 'cancelRequested', 'settled')
redis.call('HSET', record, 'status', 'queued', 'queuedAt', now, 'attempts', '0')
redis.call('DEL', log)
redis.call('LREM', dead, 0, id)
redis.call('HDEL', reasons, id)
redis.call('LPUSH', queue, id)
return 'requeued'
`;

// TRIM_DEAD: drops the oldest dead entries past the count limit or older than the cutoff, a bounded
// number per call (the reaper calls it every pass).
const TRIM_DEAD_SCRIPT = `
-- KEYS: dead, deadReasons     ARGV: maxEntries, cutoffIso, maxRemovals
local dead, reasons = KEYS[1], KEYS[2]
local maxEntries, cutoff, maxRemovals = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local removed = 0
while removed < maxRemovals do
  local oldest = redis.call('LINDEX', dead, -1)
  if not oldest then break end
  local reason = redis.call('HGET', reasons, oldest)
  if redis.call('LLEN', dead) <= maxEntries and reason and string.sub(reason, 1, 24) >= cutoff then break end
  redis.call('RPOP', dead)
  redis.call('HDEL', reasons, oldest)
  removed = removed + 1
end
return removed
`;

export interface WorkerInfo {
  id: string;
  current: string | null;
  since: string;
}

export interface QueueStats {
  waiting: number;
  processing: number;
  delayed: number;
  dead: number;
  workers: WorkerInfo[];
}

export interface DeadEntry {
  id: string;
  reason: string | null;
  /** When it was put on the dead list (ISO time). */
  at: string | null;
}

/**
 * What START decided. Only 'started' means "run it"; the others mean the slot's copy is gone:
 * 'owned-elsewhere' — the slot no longer holds the id, or another live slot is building it;
 * 'dropped' — it is no longer waiting to run (finished, canceled, not yet uploaded);
 * 'missing' — no record: moved to the dead list.
 */
/** 'waiting': another build of the same project branch is running; the id waits in the delayed set. */
export type StartResult = 'started' | 'owned-elsewhere' | 'dropped' | 'missing' | 'waiting';
export type EnqueueResult = 'queued' | 'missing' | Status;
export type CancelResult = 'canceled' | 'canceling' | 'missing' | Status;
export type RetryResult = 'retrying' | 'dead' | 'canceled' | 'lost';
export type ReleaseResult = 'released' | 'canceled' | 'lost';
export interface SettleOptions {
  /** Also claim the next waiting id for the slot in the same step (see SETTLE). */
  claimNext?: boolean;
}

export interface SettleResult {
  /** False when the slot no longer owned the build: nothing was written. */
  recorded: boolean;
  /** The build that was live before this one (deployed only), if any. */
  previousBuild: string | null;
  /** With `claimNext`: the id claimed in the same step (now in the slot's list), or null. */
  next: string | null;
}

/** What a deployment's aliases need at settle time: set when it was made, never changed since. */
interface AliasFields {
  project: string | null;
  label: string | null;
  production: string | null;
  createdAt: string | null;
}
export interface RecoverResult {
  requeued: number;
  dead: number;
  dropped: number;
}

export class Queue {
  /** The projects, on the same connection (their aliases move inside this queue's SETTLE step). */
  readonly projects: Projects;
  /** Alias fields read at start, kept for the settle of the same id (one read per build, not two). */
  private readonly claimed = new Map<string, AliasFields>();

  constructor(private readonly redis: Redis) {
    this.projects = new Projects(redis);
  }

  /** Records a deployment whose source is being uploaded; it expires unless enqueue() follows. */
  async createUploading(record: DeploymentRecord): Promise<void> {
    await this.redis.multi().hSet(recordKey(record.id), toHash(record)).expire(recordKey(record.id), UPLOADING_TTL_SECONDS).exec();
  }

  /** A build whose removal failed (S3 was away): the janitor removes it later, unless it is live. */
  async noteUnremoved(id: string, build: string): Promise<void> {
    await this.redis.sAdd(UNREMOVED_KEY, `${id}/${build}`);
  }

  /** Up to `limit` builds whose removal is owed. */
  async unremoved(limit: number): Promise<{ id: string; build: string }[]> {
    const members = await this.redis.sRandMemberCount(UNREMOVED_KEY, limit);
    return members.map((m) => ({ id: m.slice(0, m.indexOf('/')), build: m.slice(m.indexOf('/') + 1) }));
  }

  async removedBuild(id: string, build: string): Promise<void> {
    await this.redis.sRem(UNREMOVED_KEY, `${id}/${build}`);
  }

  /** Renews an `uploading` record's life while its upload goes on; false when it is gone or no longer uploading. */
  async keepUploading(id: string): Promise<boolean> {
    return Number(await this.script(KEEP_UPLOADING_SCRIPT, [recordKey(id)], [String(UPLOADING_TTL_SECONDS)])) === 1;
  }

  /**
   * Marks an `uploading` deployment queued and pushes its id, in one step. Safe to repeat: a repeat
   * after a lost reply answers the status it already has ('queued') and pushes nothing.
   */
  async enqueue(id: string, fields: Partial<DeploymentRecord> = {}): Promise<EnqueueResult> {
    const args = Object.entries(toHash(fields)).flat();
    const [project, label, createdAt] = await this.redis.hmGet(recordKey(id), ['project', 'aliasLabel', 'createdAt']);
    const score = String(Date.parse(createdAt ?? '') || Date.now());
    const keys = [recordKey(id), QUEUE_KEY, DEPLOYMENTS_KEY];
    if (!project || !label) return (await this.script(ENQUEUE_SCRIPT, keys, [id, now(), score, '', '', ...args])) as EnqueueResult;
    // The script checks the branch's pending deployment is still the one read here, else it is read again.
    for (;;) {
      const previous = (await this.redis.hGet(projectPendingKey(project), label)) ?? '';
      const result = (await this.script(
        ENQUEUE_SCRIPT,
        [...keys, projectDeploymentsKey(project), projectPendingKey(project), recordKey(previous || id), DELAYED_KEY],
        [id, now(), score, label, previous, ...args],
      )) as EnqueueResult | 'retry';
      if (result !== 'retry') return result;
    }
  }

  /** Every deployment's id, newest first (the history the API lists). */
  deployments(cursor: string | null, limit: number): Promise<Page<string>> {
    return pageNewestFirst(this.redis, DEPLOYMENTS_KEY, cursor, limit);
  }

  /** Forgets a deployment that never reached the queue (its upload failed). */
  async discard(id: string): Promise<void> {
    await this.redis.del([recordKey(id), logKey(id)]);
  }

  async get(id: string): Promise<DeploymentRecord | null> {
    return fromHash(await this.redis.hGetAll(recordKey(id)));
  }

  /** The build whose output a deployment's site serves, or null when it has none yet. */
  async liveBuild(id: string): Promise<string | null> {
    return (await this.redis.hGet(recordKey(id), 'liveBuild')) ?? null;
  }

  /** What serving a site needs, in one round trip: its live build and its SPA fallback page. */
  async site(id: string): Promise<{ liveBuild: string | null; spaFallback: string | null }> {
    const [liveBuild, spaFallback] = await this.redis.hmGet(recordKey(id), ['liveBuild', 'spaFallback']);
    return { liveBuild: liveBuild ?? null, spaFallback: spaFallback ?? null };
  }

  /**
   * Blocks up to `timeoutSeconds` for the oldest waiting id and moves it to the slot's processing
   * list (FIFO: LPUSH at the head, take from the tail). `conn` must be a connection of its own.
   * node-redis 6's command timeout (5 s by default) only covers the wait before a command is
   * written, so it neither cuts a long block short nor notices a connection that went silent after
   * a reconnect: a watchdog of block time + 5 s does, with ClaimStalledError (replace `conn`). A
   * claim whose reply is lost leaves the id in the slot's list, for the slot's next sweep.
   */
  static async claim(conn: Redis, slot: string, timeoutSeconds: number): Promise<string | null> {
    const limitMs = timeoutSeconds * 1000 + CLAIM_REPLY_GRACE_MS;
    // A slot that holds a list is in the slots set, so a reaper finds it (already due, if it never beats).
    // Sent together with the claim, not awaited on its own: the watchdog below covers both.
    const listed = conn.zAdd(SLOTS_KEY, { score: 0, value: slot }, { condition: 'NX' });
    listed.catch(() => undefined);
    const move = conn.blMove(QUEUE_KEY, processingKey(slot), 'RIGHT', 'LEFT', timeoutSeconds);
    let timer: NodeJS.Timeout | undefined;
    const watchdog = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new ClaimStalledError(slot, limitMs)), limitMs)));
    move.catch(() => undefined); // if the watchdog wins, the abandoned command's failure is expected
    try {
      return await Promise.race([move, watchdog]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Moves a claimed id to `building` for this slot, if the slot still holds it; see StartResult. */
  async start(id: string, slot: string): Promise<StartResult> {
    const keys = [recordKey(id), processingKey(slot), DEAD_KEY, DEAD_REASONS_KEY];
    const args = [id, slot, now(), PROCESSING_PREFIX];
    // Most deployments have no project: one step, and nothing for the settle to read again.
    const plain = (await this.script(START_SCRIPT, keys, args)) as StartResult | 'branch';
    if (plain !== 'branch') {
      if (plain === 'started') this.remember(id, { project: null, label: null, production: null, createdAt: null });
      return plain;
    }
    const { project, label } = await this.aliasFields(id);
    // Gone since (its record removed): the plain step says so.
    if (!project || !label) return (await this.script(START_SCRIPT, keys, args)) as StartResult;
    // The script checks the branch's running build is still the one read here, else it is read again.
    for (;;) {
      const other = (await this.redis.hGet(projectRunningKey(project), label)) ?? '';
      const result = (await this.script(
        START_SCRIPT,
        [...keys, projectRunningKey(project), recordKey(other || id), DELAYED_KEY],
        [...args, label, other, String(Date.now() + BRANCH_WAIT_MS)],
      )) as StartResult | 'retry';
      if (result !== 'retry') return result;
    }
  }

  /** Records a finished build as deployed and makes `liveBuild` the build its site serves, in one step. */
  async finish(id: string, slot: string, fields: Partial<DeploymentRecord> & { liveBuild: string }, options: SettleOptions = {}): Promise<SettleResult> {
    const { liveBuild, ...rest } = fields;
    return this.settle(id, slot, liveBuild, { ...rest, status: 'deployed', finishedAt: now() }, options);
  }

  /** Records a build that failed on its own: reported with its reason, not retried. */
  async fail(id: string, slot: string, reason: string, options: SettleOptions = {}): Promise<SettleResult> {
    return this.settle(id, slot, '', { status: 'failed', error: reason, finishedAt: now() }, options);
  }

  /** Records a build that was stopped by a cancel request. */
  async canceled(id: string, slot: string, options: SettleOptions = {}): Promise<SettleResult> {
    return this.settle(id, slot, '', { status: 'canceled', error: 'canceled while building', finishedAt: now() }, options);
  }

  /** Puts a started build back at the tail of the list (it runs next), unless a cancel is pending. */
  async release(id: string, slot: string): Promise<ReleaseResult> {
    return (await this.script(RELEASE_SCRIPT, [recordKey(id), processingKey(slot), QUEUE_KEY], [id, now(), slot])) as ReleaseResult;
  }

  /**
   * A platform failure: back on the list after `delayMs`, or — after the last of `maxAttempts` —
   * failed and on the dead list.
   */
  async retryLater(id: string, slot: string, reason: string, maxAttempts: number, delayMs: number): Promise<RetryResult> {
    const keys = [recordKey(id), processingKey(slot), DELAYED_KEY, DEAD_KEY, DEAD_REASONS_KEY];
    return (await this.script(RETRY_SCRIPT, keys, [id, String(maxAttempts), String(Date.now() + delayMs), reason, now(), slot])) as RetryResult;
  }

  /** Moves a claimed id that can never run to the dead list, with the reason. */
  async bury(id: string, slot: string, reason: string): Promise<void> {
    await this.script(BURY_SCRIPT, [recordKey(id), processingKey(slot), DEAD_KEY, DEAD_REASONS_KEY], [id, reason, now()]);
  }

  /**
   * Empties an idle slot's own processing list: anything in it is stranded (a claim whose reply was
   * lost, an outcome that was not recorded, a write lost with the last second of the AOF) and goes
   * back to the queue by the same rules as a dead slot's work.
   */
  async sweep(slot: string, maxAttempts: number): Promise<RecoverResult> {
    return this.recoverSlot(slot, maxAttempts, false, `worker ${slot} lost track of it`);
  }

  /** Moves retries that are due back onto the list; returns how many. */
  async promoteDue(limit = 100): Promise<number> {
    return Number(await this.script(PROMOTE_SCRIPT, [DELAYED_KEY, QUEUE_KEY], [String(Date.now()), String(limit)]));
  }

  /** Marks a slot alive for `ttlSeconds`, with what it is building; it stays in the slots set until reaped. */
  async heartbeat(slot: string, current: string | null, since: Date, ttlSeconds: number): Promise<void> {
    const info: WorkerInfo = { id: slot, current, since: since.toISOString() };
    await this.redis
      .multi()
      .set(heartbeatKey(slot), JSON.stringify(info), { expiration: { type: 'EX', value: ttlSeconds } })
      .zAdd(SLOTS_KEY, { score: Date.now() + ttlSeconds * 1000, value: slot })
      .exec();
  }

  /** A slot that stops: its heartbeat goes now (the reaper takes it off the slots set once its list is empty). */
  async clearHeartbeat(slot: string): Promise<void> {
    await this.redis.multi().del(heartbeatKey(slot)).zAdd(SLOTS_KEY, { score: 0, value: slot }).exec();
  }

  /**
   * Once per Redis (a marker key): adds the slots of processing lists made before the slots set
   * existed, due at once, so their work is reaped. The only scan of the keyspace, ever.
   */
  async seedSlots(): Promise<number> {
    if ((await this.redis.set(SLOTS_SEEDED_KEY, new Date().toISOString(), { condition: 'NX' })) === null) return 0;
    let seeded = 0;
    for await (const keys of this.redis.scanIterator({ MATCH: `${PROCESSING_PREFIX}*`, COUNT: 100 })) {
      for (const key of keys) seeded += await this.redis.zAdd(SLOTS_KEY, { score: 0, value: key.slice(PROCESSING_PREFIX.length) }, { condition: 'NX' });
    }
    return seeded;
  }

  /**
   * Recovers the work of slots whose heartbeat has expired. A short lock lets one reaper act at a
   * time; the script re-checks the heartbeat, so even two reapers could not move an id twice.
   */
  async recoverOrphans(maxAttempts: number, lockMs: number, ownSlots: ReadonlySet<string> = new Set()): Promise<RecoverResult> {
    const total: RecoverResult = { requeued: 0, dead: 0, dropped: 0 };
    const locked = await this.redis.set(REAPER_LOCK_KEY, String(process.pid), { condition: 'NX', expiration: { type: 'PX', value: lockMs } });
    if (locked === null) return total;
    // Only the slots whose heartbeat has expired (the script checks the heartbeat itself again).
    for (const slot of await this.redis.zRangeByScore(SLOTS_KEY, '-inf', Date.now())) {
      // This process's own slots are alive by definition; they sweep their own lists.
      if (ownSlots.has(slot)) continue;
      const result = await this.recoverSlot(slot, maxAttempts, true, `worker ${slot} stopped responding`);
      total.requeued += result.requeued;
      total.dead += result.dead;
      total.dropped += result.dropped;
    }
    return total;
  }

  /** Drops dead entries past `maxEntries` or older than `maxAgeMs`, at most `maxRemovals` per call. */
  async trimDead(maxEntries = DEAD_MAX_ENTRIES, maxAgeMs = DEAD_MAX_AGE_MS, maxRemovals = 1000): Promise<number> {
    const cutoff = new Date(Date.now() - maxAgeMs).toISOString();
    return Number(await this.script(TRIM_DEAD_SCRIPT, [DEAD_KEY, DEAD_REASONS_KEY], [String(maxEntries), cutoff, String(maxRemovals)]));
  }

  async cancel(id: string): Promise<CancelResult> {
    return (await this.script(CANCEL_SCRIPT, [recordKey(id), QUEUE_KEY, DELAYED_KEY], [id, now(), CANCEL_CHANNEL])) as CancelResult;
  }

  /**
   * The deployment an Idempotency-Key stands for: `candidate` when the key is new (it is taken for
   * it now), else the one it was taken for, with the request it was taken by (`request`: a hash).
   */
  async idempotent(hash: string, candidate: { id: string; request: string }): Promise<{ id: string; request: string }> {
    const key = idempotencyKey(hash);
    const value = JSON.stringify(candidate);
    const taken = await this.redis.set(key, value, { condition: 'NX', expiration: { type: 'EX', value: IDEMPOTENCY_TTL_SECONDS } });
    if (taken !== null) return candidate;
    const held = JSON.parse((await this.redis.get(key)) ?? value) as { id: string; request: string };
    return held;
  }

  /** Takes the key's lease for `ms` (false while another request holds it); renew() extends it, release() lets it go. */
  async leaseIdempotent(hash: string, ms: number): Promise<{ renew(): Promise<void>; release(): Promise<void> } | null> {
    const key = idempotencyLeaseKey(hash);
    const token = `${process.pid}-${Math.random().toString(36).slice(2)}`;
    if ((await this.redis.set(key, token, { condition: 'NX', expiration: { type: 'PX', value: ms } })) === null) return null;
    return {
      renew: async () => void (await this.redis.set(key, token, { condition: 'XX', expiration: { type: 'PX', value: ms } })),
      release: async () => void (await this.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", { keys: [key], arguments: [token] })),
    };
  }

  /** One small write (O(1)): rejects when Redis cannot take one (down, read-only, out of memory). */
  async ready(): Promise<void> {
    await this.redis.set(READY_KEY, new Date().toISOString(), { expiration: { type: 'EX', value: 60 } });
  }

  async isCancelRequested(id: string): Promise<boolean> {
    return (await this.redis.hGet(recordKey(id), 'cancelRequested')) === '1';
  }

  /** Queues a finished deployment again from its stored source; otherwise returns why not (its status). */
  async redeploy(id: string): Promise<'requeued' | 'missing' | 'removing' | Status> {
    const keys = [recordKey(id), QUEUE_KEY, logKey(id), DEAD_KEY, DEAD_REASONS_KEY];
    return (await this.script(REDEPLOY_SCRIPT, keys, [id, now()])) as 'requeued' | 'missing' | 'removing' | Status;
  }

  /** The dead list with each id's reason and time, newest first. */
  async dead(limit = 100): Promise<DeadEntry[]> {
    const ids = await this.redis.lRange(DEAD_KEY, 0, limit - 1);
    if (ids.length === 0) return [];
    const reasons = await this.redis.hmGet(DEAD_REASONS_KEY, ids);
    return ids.map((id, i) => {
      const match = /^(\S+) ([\s\S]*)$/.exec(reasons[i] ?? '');
      return { id, reason: match?.[2] ?? null, at: match?.[1] ?? null };
    });
  }

  /** The server's eviction policy: anything but noeviction can silently drop queue entries. */
  async evictionPolicy(): Promise<string | null> {
    try {
      const reply = (await this.redis.configGet('maxmemory-policy')) as Record<string, string>;
      return reply['maxmemory-policy'] ?? null;
    } catch {
      return null; // managed services may forbid CONFIG
    }
  }

  async appendLog(id: string, lines: readonly string[]): Promise<void> {
    if (lines.length === 0) return;
    const multi = this.redis.multi();
    for (const line of lines) {
      multi.xAdd(logKey(id), '*', { l: line }, { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: LOG_MAX_ENTRIES } });
    }
    await multi.exec();
  }

  /** Log lines after the entry `after` (exclusive), oldest first, with the cursor to pass next time. */
  async readLog(id: string, after = '-', count = 1000): Promise<{ lines: string[]; cursor: string }> {
    const start = after === '-' ? '-' : `(${after}`;
    const entries = (await this.redis.xRange(logKey(id), start, '+', { COUNT: count })) ?? [];
    const lines = entries.map((e) => String(e.message.l ?? ''));
    return { lines, cursor: entries.at(-1)?.id ?? after };
  }

  /** The lists' lengths and the live slots: a few round trips whatever the keyspace holds (no SCAN). */
  async stats(): Promise<QueueStats> {
    const [waiting, delayed, dead, slots] = await Promise.all([this.redis.lLen(QUEUE_KEY), this.redis.zCard(DELAYED_KEY), this.redis.lLen(DEAD_KEY), this.redis.zRange(SLOTS_KEY, 0, -1)]);
    if (slots.length === 0) return { waiting, processing: 0, delayed, dead, workers: [] };
    const multi = this.redis.multi();
    for (const slot of slots) multi.lLen(processingKey(slot));
    multi.mGet(slots.map(heartbeatKey));
    const replies = (await multi.exec()) as unknown[];
    const processing = replies.slice(0, slots.length).reduce<number>((sum, n) => sum + Number(n), 0);
    const workers = (replies.at(-1) as (string | null)[]).filter((v): v is string => v !== null).map((v) => JSON.parse(v) as WorkerInfo);
    workers.sort((a, b) => a.id.localeCompare(b.id));
    return { waiting, processing, delayed, dead, workers };
  }

  private async recoverSlot(slot: string, maxAttempts: number, checkHeartbeat: boolean, why: string): Promise<RecoverResult> {
    const keys = [processingKey(slot), heartbeatKey(slot), QUEUE_KEY, DELAYED_KEY, DEAD_KEY, DEAD_REASONS_KEY, SLOTS_KEY];
    const [requeued, dead, dropped] = (await this.script(RECOVER_SCRIPT, keys, [RECORD_PREFIX, String(maxAttempts), now(), slot, checkHeartbeat ? '1' : '0', why])) as [
      number,
      number,
      number,
    ];
    return { requeued, dead, dropped };
  }

  private async settle(id: string, slot: string, liveBuild: string, fields: Partial<DeploymentRecord>, options: SettleOptions): Promise<SettleResult> {
    const args = Object.entries(toHash(fields)).flat();
    const keys = [recordKey(id), processingKey(slot), QUEUE_KEY];
    let alias = ['', '0', '0'];
    const known = this.claimed.get(id);
    this.claimed.delete(id);
    if (liveBuild !== '') {
      // Set when the deployment was made and never changed since: what start read is still true.
      const { project, label, production, createdAt } = known ?? (await this.aliasFields(id));
      if (project && label) {
        keys.push(projectKey(project), projectBranchesKey(project));
        alias = [label, String(Date.parse(createdAt ?? '') || 0), production === '1' ? '1' : '0'];
      }
    }
    const [recorded, previous, next] = (await this.script(SETTLE_SCRIPT, keys, [id, slot, liveBuild, ...alias, options.claimNext ? '1' : '0', fields.status ?? '', ...args])) as [number, string, string];
    return { recorded: recorded === 1, previousBuild: previous || null, next: next || null };
  }

  /** Reads a deployment's alias fields once per claim (start), for its settle. */
  private async aliasFields(id: string): Promise<AliasFields> {
    const [project, label, production, createdAt] = await this.redis.hmGet(recordKey(id), ['project', 'aliasLabel', 'production', 'createdAt']);
    const fields = { project: project ?? null, label: label ?? null, production: production ?? null, createdAt: createdAt ?? null };
    this.remember(id, fields);
    return fields;
  }

  private remember(id: string, fields: AliasFields): void {
    // Bounded: a slot settles what it starts; ids whose settle never came are dropped oldest first.
    if (this.claimed.size >= MAX_REMEMBERED_CLAIMS) this.claimed.delete(this.claimed.keys().next().value!);
    this.claimed.set(id, fields);
  }

  /** EVALSHA with a fallback to EVAL when the server has not seen the script (first use, restart). */
  private async script(body: string, keys: string[], args: string[]): Promise<unknown> {
    const source = LUA_HELPERS + body;
    const sha = sha1(source);
    try {
      return await this.redis.evalSha(sha, { keys, arguments: args });
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.redis.eval(source, { keys, arguments: args });
    }
  }
}

const now = () => new Date().toISOString();

const shaCache = new Map<string, string>();
function sha1(source: string): string {
  let sha = shaCache.get(source);
  if (!sha) shaCache.set(source, (sha = createHash('sha1').update(source).digest('hex')));
  return sha;
}

/** Every Lua script, for the test that checks the fields they write against the record schema. */
export const QUEUE_SCRIPTS: Readonly<Record<string, string>> = {
  ENQUEUE_SCRIPT,
  KEEP_UPLOADING_SCRIPT,
  START_SCRIPT,
  SETTLE_SCRIPT,
  RELEASE_SCRIPT,
  RETRY_SCRIPT,
  BURY_SCRIPT,
  PROMOTE_SCRIPT,
  RECOVER_SCRIPT,
  CANCEL_SCRIPT,
  REDEPLOY_SCRIPT,
  TRIM_DEAD_SCRIPT,
  LUA_HELPERS,
};

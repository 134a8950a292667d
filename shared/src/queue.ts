// The queue protocol: the only code that knows Slipway's Redis key names and status transitions.
// Each transition is one MULTI or one Lua script, so a status never disagrees with the lists.
import { createHash } from 'node:crypto';
import type { Redis } from './redis';
import { fromHash, toHash, type DeploymentRecord, type Status } from './record';

export const QUEUE_KEY = 'build-queue';
const DEAD_KEY = 'build-queue:dead';
const DEAD_REASONS_KEY = 'build-queue:dead:reasons';
const DELAYED_KEY = 'build-queue:delayed';
const REAPER_LOCK_KEY = 'build-queue:reaper-lock';
const PROCESSING_PREFIX = 'build-queue:processing:';
const HEARTBEAT_PREFIX = 'build-queue:heartbeat:';
/** Pub/sub channel on which a cancel request names the deployment id to stop. */
export const CANCEL_CHANNEL = 'build-queue:cancel';
const RECORD_PREFIX = 'deployment:';
const recordKey = (id: string) => `${RECORD_PREFIX}${id}`;
const logKey = (id: string) => `${RECORD_PREFIX}${id}:log`;
const processingKey = (slot: string) => `${PROCESSING_PREFIX}${slot}`;
const heartbeatKey = (slot: string) => `${HEARTBEAT_PREFIX}${slot}`;

/** How many log entries a deployment's stream keeps (the byte cap is the build runner's). */
const LOG_MAX_ENTRIES = 20_000;
/** An `uploading` record expires if its upload-service dies before enqueueing it. */
const UPLOADING_TTL_SECONDS = 3600;

// The scripts below touch `deployment:<id>` keys named from list entries, not only KEYS: fine on one
// Redis primary (what Slipway runs on), not on Redis Cluster.

// Claim → start: an id without a record can never run, so it goes to the dead list (with its reason)
// instead of crashing the slot; one that is no longer queued (canceled meanwhile) is dropped.
const START_SCRIPT = `
local id = ARGV[1]
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  redis.call('LREM', KEYS[2], 1, id)
  redis.call('LPUSH', KEYS[3], id)
  redis.call('HSET', KEYS[4], id, 'no deployment record for this id')
  return 'missing'
end
-- A retry of this very step (its reply was lost) finds the id already started by this slot.
if status == 'building' and redis.call('HGET', KEYS[1], 'worker') == ARGV[2] then return 'building' end
if status ~= 'queued' then
  redis.call('LREM', KEYS[2], 1, id)
  return status
end
redis.call('HSET', KEYS[1], 'status', 'building', 'worker', ARGV[2], 'startedAt', ARGV[3])
redis.call('HDEL', KEYS[1], 'error', 'finishedAt')
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return 'building'
`;

// Acknowledge and record the outcome in one step. A slot that no longer holds the id (it was
// recovered by another worker) writes nothing: the new owner's outcome is the one that counts.
const SETTLE_SCRIPT = `
if redis.call('LREM', KEYS[2], 1, ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
`;

// Give a claimed id back (its worker is shutting down): it goes to the consuming end of the list so
// it runs next, and its status returns to queued, in one step. The attempt is handed back too: a
// shutdown is not a failure of the deployment, and must not use up its MAX_ATTEMPTS.
const RELEASE_SCRIPT = `
if redis.call('LREM', KEYS[2], 1, ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'attempts', -1)
redis.call('HSET', KEYS[1], 'status', 'queued', 'queuedAt', ARGV[2])
redis.call('HDEL', KEYS[1], 'worker')
redis.call('RPUSH', KEYS[3], ARGV[1])
return 1
`;

// Undo a claim that will not be started (the slot is stopping): back to the consuming end, untouched.
const UNCLAIM_SCRIPT = `
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1
`;

// A platform failure (S3, Redis): retry after a delay through the delayed set, or give up after
// the last attempt and move the id to the dead list with its reason.
const RETRY_SCRIPT = `
local id = ARGV[1]
if redis.call('LREM', KEYS[2], 1, id) == 0 then return 'lost' end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if attempts >= tonumber(ARGV[2]) then
  local reason = 'gave up after ' .. attempts .. ' attempts: ' .. ARGV[4]
  redis.call('HSET', KEYS[1], 'status', 'failed', 'error', reason, 'finishedAt', ARGV[5])
  redis.call('LPUSH', KEYS[4], id)
  redis.call('HSET', KEYS[5], id, reason)
  return 'dead'
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'queuedAt', ARGV[5], 'error', 'attempt ' .. attempts .. ' failed: ' .. ARGV[4] .. '; retrying')
redis.call('HDEL', KEYS[1], 'worker')
redis.call('ZADD', KEYS[3], ARGV[3], id)
return 'retrying'
`;

// A claimed id whose record cannot be read can never run: dead, with its reason.
const BURY_SCRIPT = `
if redis.call('LREM', KEYS[2], 1, ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'error', ARGV[2], 'finishedAt', ARGV[3])
end
return 1
`;

// Retries that are due go back to the consuming end of the list.
const PROMOTE_SCRIPT = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('RPUSH', KEYS[2], id)
end
return #ids
`;

// A processing list whose slot has no heartbeat belongs to a dead worker. Its ids go back to the
// consuming end of the list (they run next), or to the dead list once their attempts are used up.
// The heartbeat is checked inside the script, so a slot that comes back in time keeps its work.
const RECOVER_SCRIPT = `
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, 0} end
local recovered, dead = 0, 0
while true do
  local id = redis.call('RPOP', KEYS[1])
  if not id then break end
  local rk = ARGV[1] .. id
  local status = redis.call('HGET', rk, 'status')
  if not status then
    redis.call('LPUSH', KEYS[4], id)
    redis.call('HSET', KEYS[5], id, 'no deployment record for this id')
    dead = dead + 1
  elseif redis.call('HGET', rk, 'cancelRequested') == '1' then
    redis.call('HSET', rk, 'status', 'canceled', 'finishedAt', ARGV[3])
  elseif status == 'building' or status == 'queued' then
    local attempts = tonumber(redis.call('HGET', rk, 'attempts') or '0')
    if attempts >= tonumber(ARGV[2]) then
      local reason = 'its worker stopped responding on each of ' .. attempts .. ' attempts'
      redis.call('HSET', rk, 'status', 'failed', 'error', reason, 'finishedAt', ARGV[3])
      redis.call('LPUSH', KEYS[4], id)
      redis.call('HSET', KEYS[5], id, reason)
      dead = dead + 1
    else
      redis.call('HSET', rk, 'status', 'queued', 'queuedAt', ARGV[3], 'error', 'worker ' .. ARGV[4] .. ' stopped responding; retrying')
      redis.call('HDEL', rk, 'worker')
      redis.call('RPUSH', KEYS[3], id)
      recovered = recovered + 1
    end
  end
end
return {recovered, dead}
`;

// Cancel: a queued id leaves the list (or the delayed set) and is canceled at once; a running build
// is flagged and its worker told on the cancel channel, and the worker records the cancellation.
const CANCEL_SCRIPT = `
local id = ARGV[1]
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status == 'queued' then
  redis.call('LREM', KEYS[2], 0, id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('HSET', KEYS[1], 'status', 'canceled', 'finishedAt', ARGV[2])
  return 'canceled'
end
if status == 'building' then
  redis.call('HSET', KEYS[1], 'cancelRequested', '1')
  redis.call('PUBLISH', ARGV[3], id)
  return 'canceling'
end
return status
`;

// Redeploy: a finished deployment is queued again, from the source already in S3, with a fresh log.
const REDEPLOY_SCRIPT = `
local id = ARGV[1]
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status ~= 'deployed' and status ~= 'failed' and status ~= 'canceled' then return status end
redis.call('HDEL', KEYS[1], 'error', 'startedAt', 'finishedAt', 'worker', 'cancelRequested', 'outputFiles', 'outputBytes')
redis.call('HSET', KEYS[1], 'status', 'queued', 'queuedAt', ARGV[2], 'attempts', '0')
redis.call('DEL', KEYS[3])
redis.call('LREM', KEYS[4], 0, id)
redis.call('HDEL', KEYS[5], id)
redis.call('LPUSH', KEYS[2], id)
return 'requeued'
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

export type StartResult = 'building' | 'missing' | Status;
export type CancelResult = 'canceled' | 'canceling' | 'missing' | Status;

export class Queue {
  constructor(private readonly redis: Redis) {}

  /** Records a deployment whose source is being uploaded; it expires unless enqueue() follows. */
  async createUploading(record: DeploymentRecord): Promise<void> {
    await this.redis.multi().hSet(recordKey(record.id), toHash(record)).expire(recordKey(record.id), UPLOADING_TTL_SECONDS).exec();
  }

  /** Marks the deployment queued and pushes its id, in one step. */
  async enqueue(id: string, fields: Partial<DeploymentRecord> = {}): Promise<void> {
    await this.redis
      .multi()
      .hSet(recordKey(id), toHash({ ...fields, status: 'queued', queuedAt: new Date().toISOString() }))
      .persist(recordKey(id))
      .lPush(QUEUE_KEY, id)
      .exec();
  }

  /** Forgets a deployment that never reached the queue (its upload failed). */
  async discard(id: string): Promise<void> {
    await this.redis.del([recordKey(id), logKey(id)]);
  }

  async get(id: string): Promise<DeploymentRecord | null> {
    return fromHash(await this.redis.hGetAll(recordKey(id)));
  }

  /**
   * Blocks up to `timeoutSeconds` for the oldest waiting id and moves it to the slot's processing
   * list (FIFO: LPUSH at the head, take from the tail). `conn` must be a connection of its own.
   */
  static async claim(conn: Redis, slot: string, timeoutSeconds: number): Promise<string | null> {
    return conn.blMove(QUEUE_KEY, processingKey(slot), 'RIGHT', 'LEFT', timeoutSeconds);
  }

  /** Moves a claimed id to `building`; anything other than 'building' means: do not run it. */
  async start(id: string, slot: string): Promise<StartResult> {
    return (await this.script(START_SCRIPT, [recordKey(id), processingKey(slot), DEAD_KEY, DEAD_REASONS_KEY], [id, slot, new Date().toISOString()])) as StartResult;
  }

  /** Acknowledges a finished build as deployed. False when the slot no longer held the id. */
  async finish(id: string, slot: string, fields: Partial<DeploymentRecord>): Promise<boolean> {
    return this.settle(id, slot, { ...fields, status: 'deployed', finishedAt: new Date().toISOString() });
  }

  /** Acknowledges a build that failed on its own: reported with its reason, not retried. */
  async fail(id: string, slot: string, reason: string): Promise<boolean> {
    return this.settle(id, slot, { status: 'failed', error: reason, finishedAt: new Date().toISOString() });
  }

  /** Gives back a claimed id that was never started (the slot is stopping). */
  async unclaim(id: string, slot: string): Promise<void> {
    await this.script(UNCLAIM_SCRIPT, [processingKey(slot), QUEUE_KEY], [id]);
  }

  /** Puts a claimed id back at the tail of the list (it runs next). False when the slot no longer held it. */
  async release(id: string, slot: string): Promise<boolean> {
    return (await this.script(RELEASE_SCRIPT, [recordKey(id), processingKey(slot), QUEUE_KEY], [id, new Date().toISOString()])) === 1;
  }

  /** Acknowledges a build that was stopped by a cancel request. */
  async canceled(id: string, slot: string): Promise<boolean> {
    return this.settle(id, slot, { status: 'canceled', error: 'canceled while building', finishedAt: new Date().toISOString() });
  }

  /**
   * A platform failure: back on the list after `delayMs`, or — after the last of `maxAttempts` —
   * failed and on the dead list. 'lost' when the slot no longer held the id.
   */
  async retryLater(id: string, slot: string, reason: string, maxAttempts: number, delayMs: number): Promise<'retrying' | 'dead' | 'lost'> {
    const keys = [recordKey(id), processingKey(slot), DELAYED_KEY, DEAD_KEY, DEAD_REASONS_KEY];
    return (await this.script(RETRY_SCRIPT, keys, [id, String(maxAttempts), String(Date.now() + delayMs), reason, new Date().toISOString()])) as 'retrying' | 'dead' | 'lost';
  }

  /** Moves a claimed id that can never run to the dead list, with the reason. */
  async bury(id: string, slot: string, reason: string): Promise<void> {
    await this.script(BURY_SCRIPT, [recordKey(id), processingKey(slot), DEAD_KEY, DEAD_REASONS_KEY], [id, reason, new Date().toISOString()]);
  }

  /** Moves retries that are due back onto the list; returns how many. */
  async promoteDue(limit = 100): Promise<number> {
    return Number(await this.script(PROMOTE_SCRIPT, [DELAYED_KEY, QUEUE_KEY], [String(Date.now()), String(limit)]));
  }

  /** Marks a slot alive for `ttlSeconds`, with what it is building. */
  async heartbeat(slot: string, current: string | null, since: Date, ttlSeconds: number): Promise<void> {
    const info: WorkerInfo = { id: slot, current, since: since.toISOString() };
    await this.redis.set(heartbeatKey(slot), JSON.stringify(info), { expiration: { type: 'EX', value: ttlSeconds } });
  }

  async clearHeartbeat(slot: string): Promise<void> {
    await this.redis.del(heartbeatKey(slot));
  }

  /**
   * Requeues the ids of slots whose heartbeat has expired. A short lock lets one reaper act at a
   * time; the script re-checks the heartbeat, so even two reapers could not move an id twice.
   */
  async recoverOrphans(maxAttempts: number, lockMs: number, ownSlots: ReadonlySet<string> = new Set()): Promise<{ recovered: number; dead: number }> {
    const total = { recovered: 0, dead: 0 };
    const locked = await this.redis.set(REAPER_LOCK_KEY, String(process.pid), { condition: 'NX', expiration: { type: 'PX', value: lockMs } });
    if (locked === null) return total;
    for await (const keys of this.redis.scanIterator({ MATCH: `${PROCESSING_PREFIX}*`, COUNT: 100 })) {
      for (const key of keys) {
        const slot = key.slice(PROCESSING_PREFIX.length);
        // This process's own slots are alive by definition, even if a Redis outage let their heartbeats lapse.
        if (ownSlots.has(slot)) continue;
        const [recovered, dead] = (await this.script(
          RECOVER_SCRIPT,
          [key, heartbeatKey(slot), QUEUE_KEY, DEAD_KEY, DEAD_REASONS_KEY],
          [RECORD_PREFIX, String(maxAttempts), new Date().toISOString(), slot],
        )) as [number, number];
        total.recovered += recovered;
        total.dead += dead;
      }
    }
    return total;
  }

  async cancel(id: string): Promise<CancelResult> {
    return (await this.script(CANCEL_SCRIPT, [recordKey(id), QUEUE_KEY, DELAYED_KEY], [id, new Date().toISOString(), CANCEL_CHANNEL])) as CancelResult;
  }

  async isCancelRequested(id: string): Promise<boolean> {
    return (await this.redis.hGet(recordKey(id), 'cancelRequested')) === '1';
  }

  /** Queues a finished deployment again from its stored source; otherwise returns why not (its status). */
  async redeploy(id: string): Promise<'requeued' | 'missing' | Status> {
    const keys = [recordKey(id), QUEUE_KEY, logKey(id), DEAD_KEY, DEAD_REASONS_KEY];
    return (await this.script(REDEPLOY_SCRIPT, keys, [id, new Date().toISOString()])) as 'requeued' | 'missing' | Status;
  }

  /** The dead list with each id's reason, newest first. */
  async dead(limit = 100): Promise<{ id: string; reason: string | null }[]> {
    const ids = await this.redis.lRange(DEAD_KEY, 0, limit - 1);
    if (ids.length === 0) return [];
    const reasons = await this.redis.hmGet(DEAD_REASONS_KEY, ids);
    return ids.map((id, i) => ({ id, reason: reasons[i] ?? null }));
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

  async stats(): Promise<QueueStats> {
    const [waiting, delayed, dead] = await Promise.all([this.redis.lLen(QUEUE_KEY), this.redis.zCard(DELAYED_KEY), this.redis.lLen(DEAD_KEY)]);
    let processing = 0;
    for await (const keys of this.redis.scanIterator({ MATCH: `${PROCESSING_PREFIX}*`, COUNT: 100 })) {
      for (const key of keys) processing += await this.redis.lLen(key);
    }
    const workers: WorkerInfo[] = [];
    for await (const keys of this.redis.scanIterator({ MATCH: `${HEARTBEAT_PREFIX}*`, COUNT: 100 })) {
      if (keys.length === 0) continue;
      for (const value of await this.redis.mGet(keys)) {
        if (value) workers.push(JSON.parse(value) as WorkerInfo);
      }
    }
    workers.sort((a, b) => a.id.localeCompare(b.id));
    return { waiting, processing, delayed, dead, workers };
  }

  private async settle(id: string, slot: string, fields: Partial<DeploymentRecord>): Promise<boolean> {
    const args = Object.entries(toHash(fields)).flat();
    return (await this.script(SETTLE_SCRIPT, [recordKey(id), processingKey(slot)], [id, ...args])) === 1;
  }

  /** EVALSHA with a fallback to EVAL when the server has not seen the script (first use, restart). */
  private async script(source: string, keys: string[], args: string[]): Promise<unknown> {
    const sha = sha1(source);
    try {
      return await this.redis.evalSha(sha, { keys, arguments: args });
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.redis.eval(source, { keys, arguments: args });
    }
  }
}

const shaCache = new Map<string, string>();
function sha1(source: string): string {
  let sha = shaCache.get(source);
  if (!sha) shaCache.set(source, (sha = createHash('sha1').update(source).digest('hex')));
  return sha;
}

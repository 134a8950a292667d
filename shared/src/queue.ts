// The queue protocol: the only code that knows Slipway's Redis key names and status transitions.
// Each transition is one MULTI or one Lua script, so a status never disagrees with the lists.
import { createHash } from 'node:crypto';
import type { Redis } from './redis';
import { fromHash, toHash, type DeploymentRecord, type Status } from './record';

export const QUEUE_KEY = 'build-queue';
const DEAD_KEY = 'build-queue:dead';
const DELAYED_KEY = 'build-queue:delayed';
const PROCESSING_PREFIX = 'build-queue:processing:';
const recordKey = (id: string) => `deployment:${id}`;
const logKey = (id: string) => `deployment:${id}:log`;
const processingKey = (slot: string) => `${PROCESSING_PREFIX}${slot}`;

/** How many log entries a deployment's stream keeps (the byte cap is the build runner's). */
const LOG_MAX_ENTRIES = 20_000;
/** An `uploading` record expires if its upload-service dies before enqueueing it. */
const UPLOADING_TTL_SECONDS = 3600;

// Claim → start: a record that is gone or unreadable can never run, so the id goes to the dead list
// instead of crashing the slot; one that is no longer queued (canceled) is dropped.
const START_SCRIPT = `
local id = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('LREM', KEYS[2], 1, id)
  redis.call('LPUSH', KEYS[3], id)
  return 'missing'
end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'queued' then
  redis.call('LREM', KEYS[2], 1, id)
  return status or 'missing'
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
// it runs next, and its status returns to queued, in one step.
const RELEASE_SCRIPT = `
if redis.call('LREM', KEYS[2], 1, ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'queued', 'queuedAt', ARGV[2])
redis.call('HDEL', KEYS[1], 'worker')
redis.call('RPUSH', KEYS[3], ARGV[1])
return 1
`;

export interface QueueStats {
  waiting: number;
  processing: number;
  delayed: number;
  dead: number;
}

export type StartResult = 'building' | 'missing' | Status;

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
    return (await this.script(START_SCRIPT, [recordKey(id), processingKey(slot), DEAD_KEY], [id, slot, new Date().toISOString()])) as StartResult;
  }

  /** Acknowledges a finished build as deployed. False when the slot no longer held the id. */
  async finish(id: string, slot: string, fields: Partial<DeploymentRecord>): Promise<boolean> {
    return this.settle(id, slot, { ...fields, status: 'deployed', finishedAt: new Date().toISOString() });
  }

  /** Acknowledges a build that failed on its own: reported with its reason, not retried. */
  async fail(id: string, slot: string, reason: string): Promise<boolean> {
    return this.settle(id, slot, { status: 'failed', error: reason, finishedAt: new Date().toISOString() });
  }

  /** Puts a claimed id back at the tail of the list (it runs next). False when the slot no longer held it. */
  async release(id: string, slot: string): Promise<boolean> {
    return (await this.script(RELEASE_SCRIPT, [recordKey(id), processingKey(slot), QUEUE_KEY], [id, new Date().toISOString()])) === 1;
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
    return { waiting, processing, delayed, dead };
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

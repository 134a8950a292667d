// The queue protocol: the verbs services call (enqueue, claim, start, finish, fail, retryLater,
// recoverOrphans, …) and the only code that changes a deployment's status. Each transition is one
// Lua script (scripts/*.lua, run through scripts.ts) or MULTI, so a status never disagrees with the
// lists; key names come from keys.ts.
// Over 300 lines: it is the one typed wrapper of every transition (the verbs services and tests
// call), each a few lines; the scripts live in scripts/.
//
// Ownership is per claimed id: a slot owns an id while the id is in its processing list, and only
// the owner may start it, record its outcome, release it or retry it. Every script that acts for a
// slot first checks that the slot still holds the id, and does nothing otherwise.
import { CANCEL_CHANNEL, RETIRED_BUILDS_KEY, skewAliasKey, skewDeploymentKey, skewProductionKey, DEAD_KEY, DEAD_REASONS_KEY, DELAYED_KEY, DEPLOYMENTS_KEY, deliveriesKey, projectDeliveriesKey, PROCESSING_PREFIX, QUEUE_KEY, READY_KEY, REAPER_LOCK_KEY, RECORD_PREFIX, SLOTS_KEY, SLOTS_SEEDED_KEY, UNREMOVED_KEY, heartbeatKey, idempotencyKey, idempotencyLeaseKey, logKey, processingKey, projectBranchesKey, projectDeploymentsKey, projectKey, projectPendingKey, projectRunningKey, recordKey } from '../keys';
import type { Redis } from '../io/redis';
import { fromHash, toHash, type DeploymentRecord, type Status } from '../deployment/record';
import { Projects, pageNewestFirst, type Page } from '../projects/store';
import { runScript, type ScriptName } from './scripts';

export { QUEUE_SCRIPTS } from './scripts';

/** How long an Idempotency-Key names its deployment. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
/** How long a build waits before looking again when its project branch is already building. */
const BRANCH_WAIT_MS = 1000;
/** Alias fields kept between a start and its settle, per Queue instance. */
const MAX_REMEMBERED_CLAIMS = 1000;

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

// The scripts (scripts/*.lua) touch `deployment:<id>` keys named from list entries, not only KEYS:
// fine on one Redis primary (what Slipway runs on), not on Redis Cluster.

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
  /** Skew protection (SKEW_PROTECTION_HOURS, _BUILDS): what the aliases served until now stays reachable. */
  skew?: { ms: number; builds: number };
}

export interface SettleResult {
  /** False when the slot no longer owned the build: nothing was written. */
  recorded: boolean;
  /** The build that was live before this one (deployed only), if any. */
  previousBuild: string | null;
  /** With `claimNext`: the id claimed in the same step (now in the slot's list), or null. */
  next: string | null;
  /**
   * What START answered for `next` in the same step, null with no `next`. 'branch': a project
   * deployment, claimed but not started (call start). 'started' comes with its record.
   */
  nextStart: StartResult | 'branch' | null;
  /** With nextStart 'started': the record as started (null only when it is unreadable). */
  nextRecord: DeploymentRecord | null;
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

  /** A site's earlier builds (skew protection: SETTLE and POINT write them), `<id>/<build>` with when each stopped serving (ms). */
  async earlierBuilds(history: string): Promise<{ member: string; at: number }[]> {
    const flat = await this.redis.zRangeWithScores(history, 0, -1);
    return flat.map((e) => ({ member: e.value, at: e.score })).sort((a, b) => b.at - a.at);
  }

  /** Up to `limit` builds a redeploy replaced whose skew-protection window has passed (builds:retired). */
  async retiredDue(limit: number, nowMs = Date.now()): Promise<{ id: string; build: string; member: string }[]> {
    const members = await this.redis.zRangeByScore(RETIRED_BUILDS_KEY, '-inf', nowMs, { LIMIT: { offset: 0, count: limit } });
    return members.map((m) => ({ id: m.slice(0, m.indexOf('/')), build: m.slice(m.indexOf('/') + 1), member: m }));
  }

  async forgetRetired(member: string): Promise<void> {
    await this.redis.zRem(RETIRED_BUILDS_KEY, member);
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
    return Number(await this.script('keep-uploading', [recordKey(id)], [String(UPLOADING_TTL_SECONDS)])) === 1;
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
    if (!project || !label) return (await this.script('enqueue', keys, [id, now(), score, '', '', ...args])) as EnqueueResult;
    // The script checks the branch's pending deployment is still the one read here, else it is read again.
    for (;;) {
      const previous = (await this.redis.hGet(projectPendingKey(project), label)) ?? '';
      const result = (await this.script(
        'enqueue',
        [...keys, projectDeploymentsKey(project), projectPendingKey(project), recordKey(previous || id), DELAYED_KEY],
        [id, now(), score, label, previous, ...args],
      )) as EnqueueResult | 'retry';
      if (result !== 'retry') return result;
    }
  }

  /**
   * Ends an uploading project deployment `skipped` (skip.lua) while its alias still serves `serving`,
   * the deployment it was compared with. Idempotent like enqueue: a repeat answers the status it has.
   */
  async skip(id: string, serving: string, fields: Partial<DeploymentRecord>): Promise<'skipped' | 'moved' | 'missing' | Status> {
    const args = Object.entries(toHash(fields)).flat();
    const [project, label, createdAt, production] = await this.redis.hmGet(recordKey(id), ['project', 'aliasLabel', 'createdAt', 'production']);
    if (!project || !label) return 'missing';
    const score = String(Date.parse(createdAt ?? '') || Date.now());
    for (;;) {
      const previous = (await this.redis.hGet(projectPendingKey(project), label)) ?? '';
      const result = (await this.script(
        'skip',
        [recordKey(id), DEPLOYMENTS_KEY, projectDeploymentsKey(project), projectPendingKey(project), recordKey(previous || id), QUEUE_KEY, DELAYED_KEY, projectKey(project), projectBranchesKey(project)],
        [id, now(), score, label, previous, production === '1' ? '1' : '0', serving, ...args],
      )) as 'skipped' | 'moved' | 'missing' | 'retry' | Status;
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
  async site(id: string): Promise<{ liveBuild: string | null; spaFallback: string | null; project: string | null }> {
    const [liveBuild, spaFallback, project] = await this.redis.hmGet(recordKey(id), ['liveBuild', 'spaFallback', 'project']);
    return { liveBuild: liveBuild ?? null, spaFallback: spaFallback ?? null, project: project ?? null };
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
    const plain = (await this.script('start', keys, args)) as StartResult | 'branch';
    if (plain !== 'branch') {
      if (plain === 'started') this.remember(id, { project: null, label: null, production: null, createdAt: null });
      return plain;
    }
    const { project, label } = await this.aliasFields(id);
    // Gone since (its record removed): the plain step says so.
    if (!project || !label) return (await this.script('start', keys, args)) as StartResult;
    // The script checks the branch's running build is still the one read here, else it is read again.
    for (;;) {
      const other = (await this.redis.hGet(projectRunningKey(project), label)) ?? '';
      const result = (await this.script(
        'start',
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
    return (await this.script('release', [recordKey(id), processingKey(slot), QUEUE_KEY], [id, now(), slot])) as ReleaseResult;
  }

  /**
   * A platform failure: back on the list after `delayMs`, or — after the last of `maxAttempts` —
   * failed and on the dead list.
   */
  async retryLater(id: string, slot: string, reason: string, maxAttempts: number, delayMs: number): Promise<RetryResult> {
    const keys = [recordKey(id), processingKey(slot), DELAYED_KEY, DEAD_KEY, DEAD_REASONS_KEY];
    return (await this.script('retry', keys, [id, String(maxAttempts), String(Date.now() + delayMs), reason, now(), slot])) as RetryResult;
  }

  /** Moves a claimed id that can never run to the dead list, with the reason. */
  async bury(id: string, slot: string, reason: string): Promise<void> {
    await this.script('bury', [recordKey(id), processingKey(slot), DEAD_KEY, DEAD_REASONS_KEY], [id, reason, now()]);
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
    return Number(await this.script('promote', [DELAYED_KEY, QUEUE_KEY], [String(Date.now()), String(limit)]));
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
    return Number(await this.script('trim-dead', [DEAD_KEY, DEAD_REASONS_KEY], [String(maxEntries), cutoff, String(maxRemovals)]));
  }

  /** What the last deliveries for a deployment (or, `project: true`, a project's webhooks) answered (notify/ writes them), newest first. */
  async deliveries(id: string, limit = 20, project = false): Promise<unknown[]> {
    return (await this.redis.lRange(project ? projectDeliveriesKey(id) : deliveriesKey(id), 0, limit - 1)).flatMap((line) => {
      try {
        return [JSON.parse(line) as unknown];
      } catch {
        return [];
      }
    });
  }

  async cancel(id: string): Promise<CancelResult> {
    return (await this.script('cancel', [recordKey(id), QUEUE_KEY, DELAYED_KEY], [id, now(), CANCEL_CHANNEL])) as CancelResult;
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
    return (await this.script('redeploy', keys, [id, now()])) as 'requeued' | 'missing' | 'removing' | Status;
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
    const [requeued, dead, dropped] = (await this.script('recover', keys, [RECORD_PREFIX, String(maxAttempts), now(), slot, checkHeartbeat ? '1' : '0', why])) as [
      number,
      number,
      number,
    ];
    return { requeued, dead, dropped };
  }

  private async settle(id: string, slot: string, liveBuild: string, fields: Partial<DeploymentRecord>, options: SettleOptions): Promise<SettleResult> {
    const args = Object.entries(toHash(fields)).flat();
    const keys = [recordKey(id), processingKey(slot), QUEUE_KEY, DEAD_KEY, DEAD_REASONS_KEY];
    let alias = ['', '0', '0'];
    let histories = ['', '', skewDeploymentKey(id)];
    const known = this.claimed.get(id);
    this.claimed.delete(id);
    if (liveBuild !== '') {
      // Set when the deployment was made and never changed since: what start read is still true.
      const { project, label, production, createdAt } = known ?? (await this.aliasFields(id));
      if (project && label) {
        keys.push(projectKey(project), projectBranchesKey(project));
        alias = [label, String(Date.parse(createdAt ?? '') || 0), production === '1' ? '1' : '0'];
        histories = [skewAliasKey(project, label), skewProductionKey(project), skewDeploymentKey(id)];
      }
    }
    const skew = [String(Date.now()), String(options.skew?.ms ?? 0), String(options.skew?.builds ?? 0), RECORD_PREFIX, ...histories, RETIRED_BUILDS_KEY];
    const reply = (await this.script('settle', keys, [id, slot, liveBuild, ...alias, options.claimNext ? '1' : '0', fields.status ?? '', ...skew, now(), PROCESSING_PREFIX, ...args])) as [number, string, string, string, ...string[]];
    const [recorded, previous, next, nextStart, ...flat] = reply;
    let nextRecord: DeploymentRecord | null = null;
    if (nextStart === 'started') {
      const hash: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) hash[flat[i]!] = flat[i + 1]!;
      nextRecord = fromHash(hash);
      // Started by the plain rules, so it has no branch: its settle has nothing more to read.
      this.remember(next, { project: null, label: null, production: null, createdAt: null });
    }
    return { recorded: recorded === 1, previousBuild: previous || null, next: next || null, nextStart: (nextStart || null) as SettleResult['nextStart'], nextRecord };
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

  private script(name: ScriptName, keys: string[], args: string[]): Promise<unknown> {
    return runScript(this.redis, name, keys, args);
  }
}

const now = () => new Date().toISOString();

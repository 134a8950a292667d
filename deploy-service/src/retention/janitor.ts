// The janitor: the collector of what nothing else removes. Each pass, in order:
//   1. an empty or reset Redis (its marker missing) is reconciled from S3 (shared/src/recovery/reconcile.ts)
//      before anything else reads it, so nothing below mistakes lost records for orphans;
//   2. projects changed since their S3 copy was written get it written (backup.ts), and builds whose
//      removal failed (S3 was away) are removed, unless live after all;
//   3. sources with no record (an upload that died, or failed and could not clean up) are removed
//      once older than the `uploading` record's life, a bounded number per pass;
//   4. deployments past their retention (RETAIN_*_DAYS) are removed, their S3 objects first (source,
//      every build's output, the stored log) and then their Redis record, log and listings.
// Every worker runs it at start and every JANITOR_INTERVAL_SECONDS; a lock in Redis lets one run at a
// time, each step can be run again, and a failed step is logged and left to the next pass (which
// starts where this one stopped). Builds under dist/ are never removed for a missing record: Redis may
// have lost it, and reconcile is what brings it back.
import { randomBytes } from 'node:crypto';
import { Queue, Retention, UPLOADING_TTL_SECONDS, describeError, reconcile, recordKey, redisWasReset, saveProjectCopy, storageKeys, type Config, type Logger, type ReconcileReport, type Projects, type Redis, type Storage } from '@slipway/shared';
import { removeBuild } from '../deployment/publish';

/** Removals per pass: a large backlog is worked off over several passes. */
const MAX_REMOVALS_PER_PASS = 500;
/** Deployments a retention pass reads at most; the next pass goes on from there. */
const MAX_READS_PER_PASS = 2000;
/** Sources a pass looks at; the next pass goes on from there. */
const MAX_SOURCE_CHECKS_PER_PASS = 1000;
/** Owed build removals done per pass. */
const MAX_BUILD_REMOVALS_PER_PASS = 200;
/** Project copies written per pass. */
const MAX_PROJECT_SAVES_PER_PASS = 200;
const PAGE = 100;
/** Longer than a pass takes; past it another worker may start one, which is safe (steps are idempotent). */
const LOCK_MS = 10 * 60_000;
/** The first pass runs this long after a worker starts (its slots first), not a whole interval later. */
const FIRST_PASS_MS = 5_000;

type Deps = { config: Pick<Config, 'retention'>; redis: Redis; storage: Storage; logger: Logger; projects: Projects };

export interface RetentionResult {
  removed: string[];
  kept: number;
}

export interface PassResult {
  /** What reconcile restored, when this pass found Redis new or reset. */
  reconciled: ReconcileReport | null;
  projectsSaved: number;
  /** Builds whose removal had failed, removed now (or found live and kept). */
  buildsRemoved: number;
  sourcesRemoved: number;
  retention: RetentionResult | null;
  /** Steps that failed (the next pass does them again). */
  failed: string[];
}

/** One whole pass; null when another worker holds the lock. */
export async function janitorPass(deps: Deps, now = Date.now()): Promise<PassResult | null> {
  return withLock(deps.redis, async () => {
    const result: PassResult = { reconciled: null, projectsSaved: 0, buildsRemoved: 0, sourcesRemoved: 0, retention: null, failed: [] };
    const step = async (name: string, run: () => Promise<void>) => {
      try {
        await run();
      } catch (err) {
        result.failed.push(name);
        deps.logger.warn({ err: describeError(err), step: name }, 'janitor step failed; the next pass does it again');
      }
    };
    let consistent = false;
    await step('reconcile', async () => {
      if (await redisWasReset(deps.redis)) {
        const report = await reconcile(deps);
        result.reconciled = report;
        const restored = report.projects.restored + report.deployments.restored;
        if (restored > 0 || report.problems.length > 0) deps.logger.warn(report, 'Redis had lost Slipway\'s state (it was empty or reset): restored what S3 holds');
        else deps.logger.info('Redis is new: nothing in S3 to restore');
      }
      consistent = true;
    });
    await step('project copies', async () => {
      for (const { name } of await deps.projects.unsaved(MAX_PROJECT_SAVES_PER_PASS)) {
        await saveProjectCopy(deps.projects, deps.storage, name);
        result.projectsSaved++;
      }
    });
    // Without a reconciled Redis, a missing record says nothing.
    if (consistent) await step('unremoved builds', async () => {
      const queue = new Queue(deps.redis);
      for (const { id, build } of await queue.unremoved(MAX_BUILD_REMOVALS_PER_PASS)) {
        // Live after all (a settle whose reply was lost) is never removed; nor is anything of a
        // deployment without a readable record (retention removes a whole deployment its own way).
        const record = await queue.get(id);
        if (record && record.liveBuild !== build) await removeBuild(deps.storage, id, build);
        await queue.removedBuild(id, build);
        result.buildsRemoved++;
      }
    });
    await step('retired builds', async () => {
      const queue = new Queue(deps.redis);
      for (const { id, build, member } of await queue.retiredDue(MAX_BUILD_REMOVALS_PER_PASS, now)) {
        // A redeploy's replaced build, past its skew-protection window; never one that is live again.
        if ((await queue.liveBuild(id)) !== build) await removeBuild(deps.storage, id, build);
        await queue.forgetRetired(member);
        result.buildsRemoved++;
      }
    });
    if (consistent) await step('orphaned sources', async () => void (result.sourcesRemoved = await collectSources(deps, now)));
    await step('retention', async () => void (result.retention = await retentionPass(deps, now)));
    if (result.sourcesRemoved > 0) deps.logger.info({ sources: result.sourcesRemoved }, 'janitor removed the sources of uploads that never became deployments');
    return result;
  });
}

/**
 * Only the retention step, under the lock (tests drive it with a clock days ahead); null when locked
 * or no retention is set. (A janitor's pass; the queue's `sweep` is a slot emptying its own list.)
 */
export async function retentionOnly(deps: Omit<Deps, 'projects'>, now = Date.now()): Promise<RetentionResult | null> {
  return (await withLock(deps.redis, () => retentionPass(deps, now))) ?? null;
}

async function withLock<T>(redis: Redis, run: () => Promise<T>): Promise<T | null> {
  const retention = new Retention(redis);
  const token = randomBytes(8).toString('hex');
  if (!(await retention.lock(token, LOCK_MS))) return null;
  try {
    return await run();
  } finally {
    await retention.unlock(token).catch(() => undefined);
  }
}

/**
 * Removes `source/<id>/` prefixes with no deployment record whose first object is older than an
 * `uploading` record lives (so no upload in progress is touched). Returns how many it removed.
 */
export async function collectSources(deps: Pick<Deps, 'redis' | 'storage'>, now = Date.now()): Promise<number> {
  const retention = new Retention(deps.redis);
  const after = await retention.cursor('sources');
  let checked = 0;
  let removed = 0;
  let last: string | null = null;
  for await (const id of deps.storage.listFolders(storageKeys.source(''), after ?? undefined)) {
    last = id;
    if (++checked > MAX_SOURCE_CHECKS_PER_PASS) break;
    if ((await deps.redis.exists(recordKey(id))) === 1) continue;
    const first = await deps.storage.list(`${storageKeys.source(id)}/`, 1).next();
    const at = first.done ? undefined : first.value.lastModified?.getTime();
    if (at !== undefined && now - at < UPLOADING_TTL_SECONDS * 1000) continue;
    // Read again just before: a record restored or made meanwhile keeps its source.
    if ((await deps.redis.exists(recordKey(id))) === 1 || (await redisWasReset(deps.redis))) continue;
    await deps.storage.deletePrefix(`${storageKeys.source(id)}/`);
    removed++;
  }
  // Past the end: the next pass starts from the beginning again.
  await retention.setCursor('sources', checked > MAX_SOURCE_CHECKS_PER_PASS ? last : null);
  return removed;
}

async function retentionPass(deps: Omit<Deps, 'projects'>, now: number): Promise<RetentionResult | null> {
  const { retention: days } = deps.config;
  const ages = [days.previewDays, days.productionDays, days.failedDays, days.canceledDays].filter((d) => d > 0);
  if (ages.length === 0) return null;
  const retention = new Retention(deps.redis);
  const result: RetentionResult = { removed: [], kept: 0 };
  // Nothing younger than the shortest retention can be due.
  const before = now - Math.min(...ages) * 24 * 3600 * 1000;
  let from = await retention.cursor('retention');
  let reads = 0;
  let done = false;
  while (result.removed.length < MAX_REMOVALS_PER_PASS && reads < MAX_READS_PER_PASS) {
    const ids = await retention.oldest(before, PAGE, from);
    if (ids.length === 0) {
      done = true;
      break;
    }
    for (const { id, cursor } of ids) {
      reads++;
      from = cursor;
      const verdict = await retention.mark(id, days, now);
      if (verdict === 'keep' || verdict === 'active') result.kept++;
      else if (verdict === 'remove') {
        await removeObjects(deps.storage, id);
        await retention.forget(id);
        result.removed.push(id);
      }
      if (result.removed.length >= MAX_REMOVALS_PER_PASS || reads >= MAX_READS_PER_PASS) break;
    }
  }
  await retention.setCursor('retention', done ? null : from);
  if (result.removed.length > 0) deps.logger.info({ removed: result.removed.length, kept: result.kept }, 'janitor removed deployments past their retention');
  return result;
}

async function removeObjects(storage: Storage, id: string): Promise<void> {
  // One after another: each is a bounded listing and batched deletes; the next pass retries a failure.
  await storage.deletePrefix(`${storageKeys.source(id)}/`);
  await storage.deletePrefix(`${storageKeys.dist(id)}/`);
  await storage.deletePrefix(storageKeys.log(id));
}

/** The janitor's timer for a worker: a pass soon after start, then every interval. */
export function startJanitor(deps: Omit<Deps, 'config'> & { config: Pick<Config, 'retention' | 'janitorIntervalMs'> }): () => void {
  const run = () =>
    void janitorPass(deps).catch((err: unknown) => deps.logger.warn({ err: describeError(err) }, 'janitor pass failed; the next one carries on'));
  const first = setTimeout(run, Math.min(FIRST_PASS_MS, deps.config.janitorIntervalMs));
  const every = setInterval(run, deps.config.janitorIntervalMs);
  return () => {
    clearTimeout(first);
    clearInterval(every);
  };
}

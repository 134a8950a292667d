// The janitor: removes deployments past their retention (RETAIN_*_DAYS), their S3 objects first
// (source, every build's output, the stored log) and then their Redis record, log and listings.
// Every worker runs it every JANITOR_INTERVAL_SECONDS; a lock in Redis lets one run at a time, and
// each step can be run again, so a pass cut short (a crash, a lost lock) is finished by the next.
import { randomBytes } from 'node:crypto';
import { Retention, describeError, storageKeys, type Config, type Logger, type Redis, type Storage } from '@slipway/shared';

/** Removals per pass: a large backlog is worked off over several passes. */
const MAX_REMOVALS_PER_PASS = 500;
const PAGE = 100;
/** Longer than a pass takes; past it another worker may start one, which is safe (steps are idempotent). */
const LOCK_MS = 10 * 60_000;

export interface SweepResult {
  removed: string[];
  kept: number;
}

/** One pass; null when another worker holds the lock or no retention is set. */
export async function sweep(deps: { config: Pick<Config, 'retention'>; redis: Redis; storage: Storage; logger: Logger }, now = Date.now()): Promise<SweepResult | null> {
  const { retention: days } = deps.config;
  const ages = [days.previewDays, days.productionDays, days.failedDays, days.canceledDays].filter((d) => d > 0);
  if (ages.length === 0) return null;
  const retention = new Retention(deps.redis);
  const token = randomBytes(8).toString('hex');
  if (!(await retention.lock(token, LOCK_MS))) return null;
  const result: SweepResult = { removed: [], kept: 0 };
  try {
    // Nothing younger than the shortest retention can be due.
    const before = now - Math.min(...ages) * 24 * 3600 * 1000;
    let offset = 0;
    while (result.removed.length < MAX_REMOVALS_PER_PASS) {
      const ids = await retention.oldest(before, PAGE, offset);
      if (ids.length === 0) break;
      for (const id of ids) {
        const verdict = await retention.mark(id, days, now);
        if (verdict === 'keep' || verdict === 'active') {
          result.kept++;
          offset++;
        } else if (verdict === 'remove') {
          await removeObjects(deps.storage, id);
          await retention.forget(id);
          result.removed.push(id);
        }
        if (result.removed.length >= MAX_REMOVALS_PER_PASS) break;
      }
    }
  } finally {
    await retention.unlock(token).catch(() => undefined);
  }
  if (result.removed.length > 0) deps.logger.info({ removed: result.removed.length, kept: result.kept }, 'janitor removed deployments past their retention');
  return result;
}

async function removeObjects(storage: Storage, id: string): Promise<void> {
  // One after another: each is a bounded listing and batched deletes; the next pass retries a failure.
  await storage.deletePrefix(`${storageKeys.source(id)}/`);
  await storage.deletePrefix(`${storageKeys.dist(id)}/`);
  await storage.deletePrefix(storageKeys.log(id));
}

/** The janitor's timer for a worker: a pass every interval. */
export function startJanitor(deps: { config: Pick<Config, 'retention' | 'janitorIntervalMs'>; redis: Redis; storage: Storage; logger: Logger }): () => void {
  const run = () =>
    void sweep(deps).catch((err: unknown) => deps.logger.warn({ err: describeError(err) }, 'janitor pass failed; the next one carries on'));
  const every = setInterval(run, deps.config.janitorIntervalMs);
  return () => clearInterval(every);
}

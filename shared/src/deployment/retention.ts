// Retention: which finished deployments are old enough to remove, and removing one from Redis
// (its record, log and listings) once its S3 objects are gone. The janitor (deploy-service's
// janitor.ts) drives it; the rules are in the scripts, so each decision is one atomic step.
//
// A deployment is kept while it is queued or building, while it is a project's production or the
// newest deployment of a branch alias, and until its age passes its kind's setting (0: for ever).
import type { Redis } from '../io/redis';
import { DEPLOYMENTS_KEY, JANITOR_LOCK_KEY, PROJECT_PREFIX, janitorCursorKey, deliveriesKey, logKey, recordKey } from '../keys';



export interface RetentionDays {
  previewDays: number;
  productionDays: number;
  failedDays: number;
  canceledDays: number;
}

export type MarkResult = 'remove' | 'keep' | 'active' | 'gone';

// MARK: decides, and when the answer is remove, sets `removing` so nothing can point at it, rebuild
// it or roll back to it while its objects are deleted. (It reads a project's hash and branches by
// name, from the prefix keys.ts gives it.) A record already marked is removed again
// (an earlier pass stopped half-way): removal is idempotent.
const MARK_SCRIPT = `
-- KEYS: record, deployments     ARGV: id, nowMs, previewMs, productionMs, failedMs, canceledMs (0: keep; skipped ones too), projectPrefix
-- Returns 'remove' (marked: remove its objects, then forget it), 'keep', 'active' (queued or building) or 'gone' (no record).
local record = KEYS[1]
local id, now = ARGV[1], tonumber(ARGV[2])
local status = redis.call('HGET', record, 'status')
if not status then
  redis.call('ZREM', KEYS[2], id)
  return 'gone'
end
if redis.call('HEXISTS', record, 'removing') == 1 then return 'remove' end
-- A site served it until lately: its hashed assets stay reachable there (skew protection) until then.
if (tonumber(redis.call('HGET', record, 'skewUntil') or '') or 0) > now then return 'keep' end
if status ~= 'deployed' and status ~= 'failed' and status ~= 'canceled' and status ~= 'skipped' then return 'active' end
-- A failed or canceled redeploy of a deployed one still serves its earlier build: a site, kept as one.
local serving = redis.call('HEXISTS', record, 'liveBuild') == 1
local project = redis.call('HGET', record, 'project')
if project and serving then
  if redis.call('HGET', ARGV[7] .. project, 'production') == id then return 'keep' end
  local label = redis.call('HGET', record, 'aliasLabel')
  if label and redis.call('HGET', ARGV[7] .. project .. ':branches', label) == id then return 'keep' end
end
local keep
if serving and redis.call('HGET', record, 'production') == '1' then keep = tonumber(ARGV[4])
elseif serving then keep = tonumber(ARGV[3])
elseif status == 'failed' then keep = tonumber(ARGV[5])
else keep = tonumber(ARGV[6]) end
local created = redis.call('ZSCORE', KEYS[2], id)
if keep == 0 or not tonumber(created or '') or now - tonumber(created) < keep then return 'keep' end
redis.call('HSET', record, 'removing', '1')
return 'remove'
`;

// FORGET: the Redis side of a removal, after its S3 objects are gone.
const FORGET_SCRIPT = `
-- KEYS: record, log, deployments, deliveries     ARGV: id, projectPrefix
-- Returns 1 (forgotten), or 0 when the record exists and was not marked for removal (nothing written).
local project = redis.call('HGET', KEYS[1], 'project')
if redis.call('HEXISTS', KEYS[1], 'removing') == 0 and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
-- Site servers drop what they hold of it (the channel is keys.ts's SITES_CHANGED_CHANNEL).
redis.call('PUBLISH', 'sites:changed', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if project then redis.call('ZREM', ARGV[2] .. project .. ':deployments', ARGV[1]) end
return 1
`;

export class Retention {
  constructor(private readonly redis: Redis) {}

  /** One janitor at a time across every worker: true when this one may run (for up to `ms`). */
  async lock(token: string, ms: number): Promise<boolean> {
    return (await this.redis.set(JANITOR_LOCK_KEY, token, { condition: 'NX', expiration: { type: 'PX', value: ms } })) === 'OK';
  }

  async unlock(token: string): Promise<void> {
    await this.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", { keys: [JANITOR_LOCK_KEY], arguments: [token] });
  }

  /**
   * Up to `limit` ids created before `before` (ms), oldest first, after `from` (a cursor this
   * returned, `<score>:<id>`; null: from the oldest). Each comes with the cursor that continues after it.
   */
  async oldest(before: number, limit: number, from: string | null): Promise<{ id: string; cursor: string }[]> {
    const split = from?.indexOf(':') ?? -1;
    const [score, member] = from && split > 0 ? [from.slice(0, split), from.slice(split + 1)] : ['-inf', ''];
    // Ids sharing the cursor's score (created in the same millisecond) come in member order.
    const slack = from ? 64 : 0;
    const rows = await this.redis.zRangeWithScores(DEPLOYMENTS_KEY, score, before, { BY: 'SCORE', LIMIT: { offset: 0, count: limit + slack } });
    return rows
      .filter((r) => !(from && String(r.score) === score && r.value <= member))
      .slice(0, limit)
      .map((r) => ({ id: r.value, cursor: `${r.score}:${r.value}` }));
  }

  /** Where the janitor's `step` stopped in its last pass (null: at the start). */
  async cursor(step: 'retention' | 'sources'): Promise<string | null> {
    return (await this.redis.get(janitorCursorKey(step))) ?? null;
  }

  async setCursor(step: 'retention' | 'sources', cursor: string | null): Promise<void> {
    if (cursor === null) await this.redis.del(janitorCursorKey(step));
    else await this.redis.set(janitorCursorKey(step), cursor);
  }

  async mark(id: string, days: RetentionDays, now = Date.now()): Promise<MarkResult> {
    const ms = (d: number) => String(d * 24 * 3600 * 1000);
    return (await this.redis.eval(MARK_SCRIPT, {
      keys: [recordKey(id), DEPLOYMENTS_KEY],
      arguments: [id, String(now), ms(days.previewDays), ms(days.productionDays), ms(days.failedDays), ms(days.canceledDays), PROJECT_PREFIX],
    })) as MarkResult;
  }

  async forget(id: string): Promise<void> {
    await this.redis.eval(FORGET_SCRIPT, { keys: [recordKey(id), logKey(id), DEPLOYMENTS_KEY, deliveriesKey(id)], arguments: [id, PROJECT_PREFIX] });
  }
}

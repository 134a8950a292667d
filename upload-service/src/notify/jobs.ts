// The deliveries that are due: a sorted set of job ids scored by when each may run next (ms), and a
// small hash per job. A runner claims a due job by pushing its score a lease ahead (LEASE_MS), so a
// runner that dies mid-delivery leaves a job that comes due again by itself; every API replica runs
// one and they never take the same job at once. A job planned again while it runs is marked `again`
// and runs once more when it finishes: a status or a comment job sends the deployment's state as it is
// when it runs, so the last run always sends the last state and a slow old one cannot overwrite it.
import { NOTIFY_DUE_KEY, notifyJobKey, type Redis } from '@slipway/shared';

export const LEASE_MS = 60_000;
/** A job's hash outlives its last plan by a week at most: the collector of jobs whose set entry was lost. */
const JOB_TTL_SECONDS = 7 * 24 * 3600;

const PLAN = `
-- KEYS: due, job     ARGV: jobId, nowMs, createdMs, ttlSeconds, field, value, ...
-- Returns 'due' (it runs now) or 'again' (it is running: it runs again when that run ends).
-- The fields are written only when they come from a deployment at least as new as the job's (a late
-- event of an older deployment of the same pull request does not take its comment back).
local created = tonumber(ARGV[3])
if created >= tonumber(redis.call('HGET', KEYS[2], 'createdMs') or '-1') then
  redis.call('HSET', KEYS[2], 'createdMs', ARGV[3], unpack(ARGV, 5))
end
redis.call('HSET', KEYS[2], 'attempts', '0')
redis.call('EXPIRE', KEYS[2], ARGV[4])
if tonumber(redis.call('HGET', KEYS[2], 'leased') or '0') > tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[2], 'again', '1')
  return 'again'
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 'due'
`;

const CLAIM = `
-- KEYS: due     ARGV: nowMs, leaseMs, limit, jobPrefix
-- Returns the ids claimed: each due job's score and lease move leaseMs ahead.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local leaseEnd = tonumber(ARGV[1]) + tonumber(ARGV[2])
local claimed = {}
for _, id in ipairs(ids) do
  if redis.call('EXISTS', ARGV[4] .. id) == 1 then
    redis.call('ZADD', KEYS[1], leaseEnd, id)
    redis.call('HSET', ARGV[4] .. id, 'leased', leaseEnd)
    redis.call('HDEL', ARGV[4] .. id, 'again')
    claimed[#claimed + 1] = id
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return claimed
`;

const FINISH = `
-- KEYS: due, job     ARGV: jobId, nowMs, retryAtMs ('' when it is done or given up)
-- Returns 'again' (planned again while it ran: due now), 'retry' (due at retryAtMs) or 'done' (removed).
if redis.call('HGET', KEYS[2], 'again') == '1' then
  redis.call('HDEL', KEYS[2], 'again', 'leased')
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  return 'again'
end
if ARGV[3] ~= '' then
  redis.call('HDEL', KEYS[2], 'leased')
  redis.call('HINCRBY', KEYS[2], 'attempts', 1)
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 'retry'
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 'done'
`;

export type Job = Record<string, string> & { id: string; kind: string; attempts: string };

export class Jobs {
  constructor(private readonly redis: Redis) {}

  /** Plans a job for a deployment created at `createdMs`; safe to repeat (the same id is one job). */
  async plan(id: string, createdMs: number, fields: Record<string, string>, now = Date.now()): Promise<'due' | 'again'> {
    return (await this.redis.eval(PLAN, { keys: [NOTIFY_DUE_KEY, notifyJobKey(id)], arguments: [id, String(now), String(createdMs), String(JOB_TTL_SECONDS), ...Object.entries(fields).flat()] })) as 'due' | 'again';
  }

  /** Up to `limit` due jobs, each leased to this caller for LEASE_MS. */
  async claim(limit: number, now = Date.now()): Promise<Job[]> {
    const ids = (await this.redis.eval(CLAIM, { keys: [NOTIFY_DUE_KEY], arguments: [String(now), String(LEASE_MS), String(limit), notifyJobKey('')] })) as string[];
    const jobs = await Promise.all(ids.map(async (id) => ({ ...(await this.redis.hGetAll(notifyJobKey(id))), id }) as Job));
    return jobs.filter((j) => j.kind);
  }

  /** Ends a run: `retryAt` (ms) to try again then, null when done or given up. */
  async finish(id: string, retryAt: number | null, now = Date.now()): Promise<'again' | 'retry' | 'done'> {
    return (await this.redis.eval(FINISH, { keys: [NOTIFY_DUE_KEY, notifyJobKey(id)], arguments: [id, String(now), retryAt === null ? '' : String(Math.round(retryAt))] })) as 'again' | 'retry' | 'done';
  }

  /** When the next job is due (ms), null when none is. */
  async nextDue(): Promise<number | null> {
    const [first] = await this.redis.zRangeWithScores(NOTIFY_DUE_KEY, 0, 0);
    return first ? first.score : null;
  }
}

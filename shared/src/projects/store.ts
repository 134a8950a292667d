// Projects in Redis (their key names are spelled in keys.ts):
//   project:<name>                hash: settings, `production` (the aliased deployment), `pinned`
//   projects                      sorted set: names by creation time
//   project:<name>:deployments    sorted set: deployment ids by creation time (the history)
//   project:<name>:branches       hash: branch label → newest deployed id, `<label>:at` → its createdAt
//   project:<name>:pending        hash: branch label → newest queued id (superseding)
//   project:<name>:running        hash: branch label → the id that last started building
//   domains                       hash: custom host name → the project whose production it serves
//   hook:<name>:<sha256>          string, with a TTL: a push hook body already taken (replays refused)
//   projects:unsaved              hash: project name → a change count, for projects changed since their
//                                 copy in S3 (backup.ts) was last written; every change adds to it
// Aliases are pointers: they move in the same atomic step that records a build `deployed`
// (queue/scripts/settle.lua), and rollback and promote are one step each, never a rebuild.
// Over 300 lines: every write of a project is one Lua script, kept beside the method that runs it.
import { randomBytes } from 'node:crypto';
import { DOMAINS_KEY, EVENTS_KEY, RECORD_PREFIX, skewProductionKey, projectCommentsKey, projectDeliveriesKey, PROJECTS_KEY, UNSAVED_PROJECTS_KEY as UNSAVED_KEY, hookSeenKey, projectBranchesKey, projectDeploymentsKey, projectKey, projectPendingKey, projectRunningKey, recordKey } from '../keys';
import type { Redis } from '../io/redis';
import { ProjectRecordSchema, type CreateProject, type ProjectRecord, type UpdateProject } from './schema';
import type { EnvEntry } from './secrets';

/** What the store writes of a project's secrets: sealed already (secrets.ts), never the values. */
export interface SealedProjectFields {
  sealedEnv?: string;
  envMeta?: EnvEntry[];
  gitUser?: string;
  gitToken?: string;
  deployKey?: string;
  deployKeyPublic?: string;
  forgeApiUrl?: string | null;
  forgeToken?: string;
  sealedNotifications?: string | null;
  notificationsMeta?: { url: string; events?: string[] }[] | null;
  forkEnv?: '1';
  previewPassword?: string;
  previewStamp?: string;
}
type Nullable<T> = { [K in keyof T]?: T[K] | null };
export type StoredProject = Omit<CreateProject, 'env' | 'gitAuth' | 'forkEnv' | 'forge' | 'notifications' | 'previewPassword'> & SealedProjectFields;
/** `env: null` drops a plain env from before sealing. */
export type StoredChange = Omit<UpdateProject, 'env' | 'gitAuth' | 'forkEnv' | 'forge' | 'notifications' | 'previewPassword'> & Nullable<SealedProjectFields> & { env?: null };
import { toHash } from '../deployment/record';

/** A new project's (or a rotated) hook secret: 32 random bytes. */
const newHookSecret = () => randomBytes(32).toString('base64url');

// Custom domains are claimed in the same step that writes the project: a host another project
// holds is refused, the project's old hosts it no longer lists are let go.
const DOMAINS_LUA = `
local function set_domains(project_key, domains_key, name, hosts)
  for _, host in ipairs(hosts) do
    local owner = redis.call('HGET', domains_key, host)
    if owner and owner ~= name then return host end
  end
  local old = redis.call('HGET', project_key, 'domains')
  if old then
    for _, host in ipairs(cjson.decode(old)) do
      if redis.call('HGET', domains_key, host) == name then redis.call('HDEL', domains_key, host) end
      redis.call('PUBLISH', 'sites:changed', 'domain:' .. host)
    end
  end
  for _, host in ipairs(hosts) do
    redis.call('HSET', domains_key, host, name)
    redis.call('PUBLISH', 'sites:changed', 'domain:' .. host)
  end
  if #hosts > 0 then redis.call('HSET', project_key, 'domains', cjson.encode(hosts)) else redis.call('HDEL', project_key, 'domains') end
  return false
end
`;

// CREATE: only when the name is free and its domains are not another project's.
const CREATE_SCRIPT = `
-- KEYS: project, projects, domains, unsaved     ARGV: name, createdMs, domainsJson, field, value, ...
-- Returns 'ok', 'exists', or 'domain:<host>' (another project holds it; nothing written).
${DOMAINS_LUA}
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
local hosts = cjson.decode(ARGV[3])
for _, host in ipairs(hosts) do
  local owner = redis.call('HGET', KEYS[3], host)
  if owner then return 'domain:' .. host end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
set_domains(KEYS[1], KEYS[3], ARGV[1], hosts)
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HINCRBY', KEYS[4], ARGV[1], 1)
-- Site servers may hold "no such project" for its hosts (sites/pointers.ts; the channel is keys.ts's).
redis.call('PUBLISH', 'sites:changed', KEYS[1])
return 'ok'
`;

// RESTORE: CREATE for reconcile, but never over a change Redis has not yet copied to S3 (a project
// deleted or changed while reconcile read its copy: Redis knows better than the copy).
const RESTORE_SCRIPT = `
-- KEYS: project, projects, domains, unsaved     ARGV: name, createdMs, domainsJson, field, value, ...
-- Returns what CREATE returns, or 'exists' when the project has a change pending (nothing written).
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then return 'exists' end
${CREATE_SCRIPT}`;

// UPDATE: set and clear fields of an existing project; domains ('-' when unchanged) claimed first.
const UPDATE_SCRIPT = `
-- KEYS: project, domains, unsaved     ARGV: name, domainsJson or '-', clearCount, clear..., field, value, ...
-- Returns 'ok', 'no-project', or 'domain:<host>' (another project holds it; nothing written).
${DOMAINS_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return 'no-project' end
if ARGV[2] ~= '-' then
  local taken = set_domains(KEYS[1], KEYS[2], ARGV[1], cjson.decode(ARGV[2]))
  if taken then return 'domain:' .. taken end
end
local n = tonumber(ARGV[3])
for i = 4, n + 3 do redis.call('HDEL', KEYS[1], ARGV[i]) end
if #ARGV > n + 3 then redis.call('HSET', KEYS[1], unpack(ARGV, n + 4)) end
-- Each change of the env (set or cleared) is a new version of it.
for i = 4, #ARGV do
  if ARGV[i] == 'sealedEnv' and (i <= n + 3 or (i - n - 4) % 2 == 0) then redis.call('HINCRBY', KEYS[1], 'envVersion', 1) break end
end
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
redis.call('PUBLISH', 'sites:changed', KEYS[1])
return 'ok'
`;

// SWAP_ENV: a new env, only over the one that was read.
const SWAP_ENV_SCRIPT = `
-- KEYS: project, unsaved     ARGV: name, expected sealedEnv ('' for none), sealedEnv, envMeta, updatedAt
if redis.call('EXISTS', KEYS[1]) == 0 then return 'no-project' end
local now = redis.call('HGET', KEYS[1], 'sealedEnv') or ''
if now ~= ARGV[2] then return 'changed' end
redis.call('HSET', KEYS[1], 'sealedEnv', ARGV[3], 'envMeta', ARGV[4], 'updatedAt', ARGV[5])
redis.call('HDEL', KEYS[1], 'env')
redis.call('HINCRBY', KEYS[1], 'envVersion', 1)
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
return 'ok'
`;

// DELETE: the project, its indexes and its domains.
const DELETE_SCRIPT = `
-- KEYS: project, projects, domains, deployments, branches, pending, running, unsaved, comments, deliveries     ARGV: name
-- Returns 1, or 0 when there was no such project.
${DOMAINS_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
set_domains(KEYS[1], KEYS[3], ARGV[1], {})
redis.call('DEL', KEYS[1], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[9], KEYS[10])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[8], ARGV[1], 1)
redis.call('PUBLISH', 'sites:changed', KEYS[1])
return 1
`;

// POINT: production → a deployed deployment of this project (rollback pins, promote unpins).
const CLOSE_ALIAS_SCRIPT = `
-- KEYS: projectBranches, projectPending, unsaved     ARGV: label, nowMs, name
-- Returns {the deployment the alias served ('' for none), the label's waiting deployment ('' for none)}.
-- The alias goes, and its time becomes now: a deployment made before (one building or waiting) never
-- moves it back (SETTLE moves an alias only to a newer deployment); one made after (a reopen) does.
local served = redis.call('HGET', KEYS[1], ARGV[1]) or ''
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1] .. ':at', ARGV[2])
-- The close is in the project's S3 copy too (backup.ts), so a reconcile never brings the alias back.
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
redis.call('PUBLISH', 'sites:changed', (string.gsub(KEYS[1], ':branches$', '')))
return {served, redis.call('HGET', KEYS[2], ARGV[1]) or ''}
`;

const POINT_SCRIPT = `
-- KEYS: project, projectDeployments, record, unsaved, events
-- ARGV: id, pin ('1' or '0'), name, nowIso, nowMs, skewMs ('0': off), skewBuilds, recordPrefix, productionHistory
-- Returns 'ok', 'no-project', 'not-in-project' or 'not-deployed' (nothing written).
if redis.call('EXISTS', KEYS[1]) == 0 then return 'no-project' end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 'not-in-project' end
if redis.call('HGET', KEYS[3], 'status') ~= 'deployed' or not redis.call('HGET', KEYS[3], 'liveBuild') then return 'not-deployed' end
if redis.call('HEXISTS', KEYS[3], 'removing') == 1 then return 'not-deployed' end
local at = redis.call('ZSCORE', KEYS[2], ARGV[1])
-- Already so (a repeat after a lost reply, or asked twice): nothing changes and nothing is told.
if redis.call('HGET', KEYS[1], 'production') == ARGV[1] and (redis.call('HGET', KEYS[1], 'pinned') == '1') == (ARGV[2] == '1') then return 'ok' end
-- Skew protection: the build production served until now stays reachable for its hashed assets (sites.ts).
local old, window = redis.call('HGET', KEYS[1], 'production'), tonumber(ARGV[6]) or 0
local oldBuild = old and old ~= ARGV[1] and window > 0 and redis.call('HGET', ARGV[8] .. old, 'liveBuild')
if oldBuild then
  local now = tonumber(ARGV[5])
  redis.call('ZADD', ARGV[9], now, old .. '/' .. oldBuild)
  redis.call('ZREMRANGEBYSCORE', ARGV[9], '-inf', now - window)
  redis.call('ZREMRANGEBYRANK', ARGV[9], 0, -((tonumber(ARGV[7]) or 5) + 1))
  redis.call('PEXPIRE', ARGV[9], window)
  if (tonumber(redis.call('HGET', ARGV[8] .. old, 'skewUntil') or '') or 0) < now + window then redis.call('HSET', ARGV[8] .. old, 'skewUntil', now + window) end
end
redis.call('HSET', KEYS[1], 'production', ARGV[1], 'productionAt', at)
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'pinned', '1') else redis.call('HDEL', KEYS[1], 'pinned') end
redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
redis.call('PUBLISH', 'sites:changed', KEYS[1])
-- Told to the project's webhooks (notify/): a rollback pins production, a promote does not.
redis.call('XADD', KEYS[5], 'MAXLEN', '~', '100000', '*', 'id', ARGV[1], 'event', ARGV[2] == '1' and 'rolled-back' or 'promoted', 'at', ARGV[4])
return 'ok'
`;

// RENEW_STAMP: a new preview stamp, only for a project whose previews are closed (a change that
// opened them meanwhile wins).
const RENEW_STAMP_SCRIPT = `
-- KEYS: project, unsaved     ARGV: name, stamp, updatedAt
if redis.call('EXISTS', KEYS[1]) == 0 then return 'no-project' end
if redis.call('HEXISTS', KEYS[1], 'previewStamp') == 0 then return 'open' end
redis.call('HSET', KEYS[1], 'previewStamp', ARGV[2], 'updatedAt', ARGV[3])
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('PUBLISH', 'sites:changed', KEYS[1])
return 'ok'
`;

export type PointResult = 'ok' | 'no-project' | 'not-in-project' | 'not-deployed';

export interface Page<T> {
  items: T[];
  /** Pass as `cursor` for the next (older) page; null at the end. */
  next: string | null;
}

export class Projects {
  constructor(private readonly redis: Redis) {}

  /** 'exists' when the name is taken; `domain:<host>` when another project holds that host. */
  async create(input: StoredProject, now = new Date()): Promise<'ok' | 'exists' | `domain:${string}`> {
    const { domains, ...rest } = input;
    const version = input.sealedEnv ? { envVersion: 1 } : {};
    const fields = toHash({ ...rest, ...version, createdAt: now.toISOString(), updatedAt: now.toISOString(), productionBranch: input.productionBranch ?? 'main', hookSecret: newHookSecret() });
    return (await this.redis.eval(CREATE_SCRIPT, {
      keys: [projectKey(input.name), PROJECTS_KEY, DOMAINS_KEY, UNSAVED_KEY],
      arguments: [input.name, String(now.getTime()), JSON.stringify(domains ?? []), ...Object.entries(fields).flat()],
    })) as 'ok' | 'exists' | `domain:${string}`;
  }

  /**
   * Writes a project back from its S3 copy (reconcile.ts): its stored fields as they are, a new hook
   * secret, the domains no other project holds now. 'exists' when the name is taken again, or the
   * project changed (or was deleted) since its copy was written.
   */
  async restore(name: string, fields: Record<string, string>, domains: readonly string[]): Promise<{ result: 'ok' | 'exists'; domainsLeft: string[] }> {
    const createdMs = String(Date.parse(fields.createdAt ?? '') || Date.now());
    const hash = { ...fields, name, hookSecret: newHookSecret() };
    let hosts = [...domains];
    const left: string[] = [];
    for (;;) {
      const result = (await this.redis.eval(RESTORE_SCRIPT, {
        keys: [projectKey(name), PROJECTS_KEY, DOMAINS_KEY, UNSAVED_KEY],
        arguments: [name, createdMs, JSON.stringify(hosts), ...Object.entries(hash).flat()],
      })) as 'ok' | 'exists' | `domain:${string}`;
      if (!result.startsWith('domain:')) return { result: result as 'ok' | 'exists', domainsLeft: left };
      const taken = result.slice('domain:'.length);
      left.push(taken);
      hosts = hosts.filter((h) => h !== taken);
    }
  }

  /** The raw `project:<name>` hash (empty when there is none): what its S3 copy is made from. */
  hash(name: string): Promise<Record<string, string>> {
    return this.redis.hGetAll(projectKey(name));
  }

  /** Up to `limit` projects changed since their S3 copy was written, with their change counts. */
  async unsaved(limit: number): Promise<{ name: string; changes: string }[]> {
    const { entries } = await this.redis.hScan(UNSAVED_KEY, '0', { COUNT: limit });
    return entries.slice(0, limit).map(({ field, value }) => ({ name: field, changes: value }));
  }

  /** The project's S3 copy is written as of `changes` (a change since then keeps it unsaved). */
  async saved(name: string, changes: string): Promise<void> {
    await this.redis.eval("if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0", { keys: [UNSAVED_KEY], arguments: [name, changes] });
  }

  /** Its change count now ('0' when it has none pending): read before its copy is written. */
  async changes(name: string): Promise<string> {
    return (await this.redis.hGet(UNSAVED_KEY, name)) ?? '0';
  }

  async get(name: string): Promise<ProjectRecord | null> {
    const hash = await this.redis.hGetAll(projectKey(name));
    if (Object.keys(hash).length === 0) return null;
    const parsed = ProjectRecordSchema.safeParse(hash);
    return parsed.success ? parsed.data : null;
  }

  /** 'no-project', or `domain:<host>` when another project holds that host (then nothing changed). */
  async update(name: string, change: StoredChange, now = new Date()): Promise<'ok' | 'no-project' | `domain:${string}`> {
    const { domains, ...rest } = change;
    const clear = Object.entries(rest).filter(([, v]) => v === null).map(([k]) => k);
    const set = toHash({ ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== null && v !== undefined)), updatedAt: now.toISOString() });
    const hosts = domains === undefined ? '-' : JSON.stringify(domains ?? []);
    return (await this.redis.eval(UPDATE_SCRIPT, {
      keys: [projectKey(name), DOMAINS_KEY, UNSAVED_KEY],
      arguments: [name, hosts, String(clear.length), ...clear, ...Object.entries(set).flat()],
    })) as 'ok' | 'no-project' | `domain:${string}`;
  }

  /**
   * Replaces the project's env if it is still `expected` (the sealedEnv read, '' for none): one
   * variable set or removed without losing a change made meanwhile. 'changed': read it again.
   */
  async swapEnv(name: string, expected: string, fields: { sealedEnv: string; envMeta: EnvEntry[] }, now = new Date()): Promise<'ok' | 'changed' | 'no-project'> {
    return (await this.redis.eval(SWAP_ENV_SCRIPT, {
      keys: [projectKey(name), UNSAVED_KEY],
      arguments: [name, expected, fields.sealedEnv, JSON.stringify(fields.envMeta), now.toISOString()],
    })) as 'ok' | 'changed' | 'no-project';
  }

  /** Removes the project, its aliases, domains and history index; its deployments keep their own URLs. */
  async delete(name: string): Promise<boolean> {
    const keys = [projectKey(name), PROJECTS_KEY, DOMAINS_KEY, projectDeploymentsKey(name), projectBranchesKey(name), projectPendingKey(name), projectRunningKey(name), UNSAVED_KEY, projectCommentsKey(name), projectDeliveriesKey(name)];
    return (await this.redis.eval(DELETE_SCRIPT, { keys, arguments: [name] })) === 1;
  }

  /** A new hook secret for an existing project (the old one stops working at once); null when there is none. */
  async rotateHookSecret(name: string): Promise<string | null> {
    const secret = newHookSecret();
    const done = await this.redis.eval(UPDATE_SCRIPT, { keys: [projectKey(name), DOMAINS_KEY, UNSAVED_KEY], arguments: [name, '-', '0', 'hookSecret', secret] });
    return done === 'ok' ? secret : null;
  }

  /**
   * True the first time a hook body (by its digest) is offered within `ttlSeconds`: a replayed
   * delivery is refused. `forgetDelivery` lets a delivery that could not be acted on come again.
   */
  async firstDelivery(name: string, digest: string, ttlSeconds: number): Promise<boolean> {
    return (await this.redis.set(hookSeenKey(name, digest), '1', { condition: 'NX', expiration: { type: 'EX', value: ttlSeconds } })) === 'OK';
  }

  async forgetDelivery(name: string, digest: string): Promise<void> {
    await this.redis.del(hookSeenKey(name, digest));
  }

  /** The project a custom host name belongs to. */
  async domainProject(host: string): Promise<string | null> {
    return (await this.redis.hGet(DOMAINS_KEY, host)) ?? null;
  }

  /** Projects by creation time, newest first. */
  async list(cursor: string | null, limit: number): Promise<Page<ProjectRecord>> {
    const names = await this.page(PROJECTS_KEY, cursor, limit);
    const items: ProjectRecord[] = [];
    for (const name of names.items) {
      const project = await this.get(name);
      if (project) items.push(project);
    }
    return { items, next: names.next };
  }

  /** A project's deployment ids, newest first. */
  deployments(name: string, cursor: string | null, limit: number): Promise<Page<string>> {
    return this.page(projectDeploymentsKey(name), cursor, limit);
  }

  /** Points production at `id` now: pinned (rollback) or not (promote). */
  async point(name: string, id: string, pin: boolean, skew: { ms: number; builds: number } = { ms: 0, builds: 0 }, now = new Date()): Promise<PointResult> {
    return (await this.redis.eval(POINT_SCRIPT, {
      keys: [projectKey(name), projectDeploymentsKey(name), recordKey(id), UNSAVED_KEY, EVENTS_KEY],
      arguments: [id, pin ? '1' : '0', name, now.toISOString(), String(now.getTime()), String(skew.ms), String(skew.builds), RECORD_PREFIX, skewProductionKey(name)],
    })) as PointResult;
  }

  /**
   * Removes a branch alias (a closed pull request's) so that no deployment made before now moves it
   * back; safe to repeat. Answers what it served and the deployment still waiting for it, if any.
   */
  async closeAlias(name: string, label: string, now = Date.now()): Promise<{ served: string | null; pending: string | null }> {
    const [served, pending] = (await this.redis.eval(CLOSE_ALIAS_SCRIPT, { keys: [projectBranchesKey(name), projectPendingKey(name), UNSAVED_KEY], arguments: [label, String(now), name] })) as [string, string];
    return { served: served || null, pending: pending || null };
  }

  /** The newest deployed production deployment older than `before` (what a plain rollback goes back to). */
  async previousProduction(project: ProjectRecord, isDeployedProduction: (id: string) => Promise<boolean>): Promise<string | null> {
    const before = project.productionAt ?? Number.POSITIVE_INFINITY;
    let cursor: string | null = null;
    for (let pages = 0; pages < 20; pages++) {
      const page: Page<string> = await this.deployments(project.name, cursor, 50);
      for (const id of page.items) {
        const at = Number(await this.redis.zScore(projectDeploymentsKey(project.name), id));
        if (id !== project.production && at < before && (await isDeployedProduction(id))) return id;
      }
      if (!page.next) return null;
      cursor = page.next;
    }
    return null;
  }

  /** The deployment an alias host serves: the project's production, or a branch's newest. */
  /** The project's preview stamp (sites/protect.ts): null when its previews are open to anyone. */
  async previewStamp(name: string): Promise<string | null> {
    return (await this.redis.hGet(projectKey(name), 'previewStamp')) ?? null;
  }

  /** Whether `id` is in the project's history. */
  async hasDeployment(name: string, id: string): Promise<boolean> {
    return (await this.redis.zScore(projectDeploymentsKey(name), id)) !== null;
  }

  /** Ends every preview cookie and share link of the project (a new stamp); 'open' when its previews are not closed. */
  async renewPreviewStamp(name: string, stamp: string, now = new Date()): Promise<'ok' | 'no-project' | 'open'> {
    return (await this.redis.eval(RENEW_STAMP_SCRIPT, { keys: [projectKey(name), UNSAVED_KEY], arguments: [name, stamp, now.toISOString()] })) as 'ok' | 'no-project' | 'open';
  }

  async aliasTarget(name: string, label: string | null): Promise<string | null> {
    if (label === null) return (await this.redis.hGet(projectKey(name), 'production')) ?? null;
    return (await this.redis.hGet(projectBranchesKey(name), label)) ?? null;
  }

  /** The labels whose alias was closed (a closed pull request's: only `<label>:at` is left), with when (ms). */
  async closedAliases(name: string): Promise<Record<string, number>> {
    const all = await this.redis.hGetAll(projectBranchesKey(name));
    return Object.fromEntries(
      Object.entries(all)
        .filter(([k]) => k.endsWith(':at') && all[k.slice(0, -3)] === undefined)
        .map(([k, v]) => [k.slice(0, -3), Number(v)] as const)
        .filter(([, at]) => Number.isFinite(at)),
    );
  }

  /** Puts back the close times of aliases (reconcile): a deployment made before one never moves it back. */
  async restoreClosedAliases(name: string, closed: Record<string, number>): Promise<void> {
    const entries = Object.entries(closed);
    if (entries.length === 0) return;
    await this.redis.hSet(projectBranchesKey(name), Object.fromEntries(entries.map(([label, at]) => [`${label}:at`, String(at)])));
  }

  /** Branch label → deployment id, for every branch alias of a project. */
  async branchAliases(name: string): Promise<Record<string, string>> {
    const all = await this.redis.hGetAll(projectBranchesKey(name));
    return Object.fromEntries(Object.entries(all).filter(([k]) => !k.endsWith(':at')));
  }

  /** Newest first by score; the cursor is `<score>:<member>` of the last item given. */
  private async page(key: string, cursor: string | null, limit: number): Promise<Page<string>> {
    return pageNewestFirst(this.redis, key, cursor, limit);
  }
}

/**
 * One page of a sorted set, highest score first. The cursor is `<score>:<member>` of the last item
 * given; members that share its score and came before it (REV order: greater members first) are
 * skipped, so equal scores never lose an item between pages.
 */
export async function pageNewestFirst(redis: Redis, key: string, cursor: string | null, limit: number): Promise<Page<string>> {
  const [score, member] = cursor ? [cursor.slice(0, cursor.indexOf(':')), cursor.slice(cursor.indexOf(':') + 1)] : ['+inf', ''];
  const slack = cursor ? 64 : 0;
  const rows = await redis.zRangeWithScores(key, score, '-inf', { BY: 'SCORE', REV: true, LIMIT: { offset: 0, count: limit + 1 + slack } });
  const fresh = cursor ? rows.filter((r) => !(String(r.score) === score && r.value >= member)) : rows;
  const items = fresh.slice(0, limit);
  const last = items.at(-1);
  return { items: items.map((r) => r.value), next: fresh.length > limit && last ? `${last.score}:${last.value}` : null };
}

// Reconcile: puts back into Redis what S3 says was live, after Redis lost it (restarted empty, a
// failover to a stale replica, a dump restored from last week). It reads the copies backup.ts writes:
// projects first (settings, domains, a rollback's pin), then every deployment whose record is gone
// and that has a complete build with facts (its manifest and deployment.json), as `deployed` with
// that build live, listed in its project, its branch alias and production moved by the same rules
// SETTLE follows. It never overwrites: what Redis has wins, so running it again (or while the
// platform works) changes nothing. What it cannot restore it says: env values and hook secrets (never
// in S3), builds published before facts were written, domains another project took meanwhile.
//
// Run by `npm run reconcile` (deploy-service/src/reconcile-command.ts), and by the janitor when Redis
// lacks the marker it sets (an empty or reset Redis).
import { forEachBounded } from '../io/concurrency';
import { BUILD_ID_PATTERN, isDeploymentId } from '../deployment/ids';
import { DeploymentFactsSchema, ProjectCopySchema, backupKeys, readCopy, type DeploymentFacts } from './backup';
import type { Projects } from '../projects/store';
import { DEPLOYMENTS_KEY, MARKER_KEY, projectBranchesKey, projectDeploymentsKey, projectKey, recordKey } from '../keys';
import { DeploymentRecordSchema } from '../deployment/record';
import { runScript } from '../queue/scripts';
import type { Redis } from '../io/redis';
import { siteKeys } from '../site/manifest';
import type { Storage } from '../io/s3';
import { storageKeys } from '../io/storage-keys';

/** S3 reads at once while restoring. */
const CONCURRENCY = 8;
/** Problems listed in a report; the rest are counted. */
const MAX_PROBLEMS = 200;

export interface ReconcileReport {
  projects: { restored: number; present: number };
  deployments: { restored: number; present: number; unrestorable: number };
  /** One line per thing not (or not wholly) restored, for the operator. */
  problems: string[];
  /** Problems beyond the ones listed. */
  moreProblems: number;
}

export async function reconcile(deps: { redis: Redis; storage: Storage; projects: Projects }, now = new Date()): Promise<ReconcileReport> {
  const { redis, storage, projects } = deps;
  const report: ReconcileReport = { projects: { restored: 0, present: 0 }, deployments: { restored: 0, present: 0, unrestorable: 0 }, problems: [], moreProblems: 0 };
  const problem = (line: string) => (report.problems.length < MAX_PROBLEMS ? report.problems.push(line) : report.moreProblems++);
  const pinned = new Map<string, string>();

  for await (const { key } of storage.list(backupKeys.projects)) {
    const name = /^projects\/([a-z0-9-]+)\.json$/.exec(key)?.[1];
    if (!name) continue;
    if (Object.keys(await projects.hash(name)).length > 0) {
      report.projects.present++;
      continue;
    }
    const copy = await readCopy(storage, key, ProjectCopySchema).catch(() => null);
    if (!copy || copy.fields.name !== name) {
      problem(`project ${name}: its copy in S3 (${key}) is unreadable; not restored`);
      continue;
    }
    // Production is what its restored deployments say, unless a rollback pinned it.
    const { production, productionAt, pinned: pin, domains, ...fields } = copy.fields;
    const keep: Record<string, string> = pin === '1' && production ? { production, productionAt: productionAt ?? '0', pinned: '1' } : {};
    let hosts: string[] = [];
    try {
      hosts = domains ? (JSON.parse(domains) as string[]).filter((h) => typeof h === 'string') : [];
    } catch {
      problem(`project ${name}: its domains in S3 are unreadable; restored without them`);
    }
    const { result, domainsLeft } = await projects.restore(name, { ...fields, ...keep }, hosts);
    if (result === 'exists') {
      report.projects.present++;
      continue;
    }
    report.projects.restored++;
    // Before any deployment is restored: a closed pull request's alias stays closed.
    await projects.restoreClosedAliases(name, copy.closed);
    if (keep.production) pinned.set(name, keep.production);
    problem(`project ${name}: restored with a new hook secret (rotate it with POST /projects/${name}/hook-secret and set it on the forge; the old one is not in S3)`);
    if (copy.envNames.length > 0) problem(`project ${name}: env values not restored (never stored in S3): set ${copy.envNames.join(', ')} again`);
    if (copy.credentials.includes('notifications')) problem(`project ${name}: its notifications were not restored (their secrets were never stored in S3): set notifications again`);
    if (copy.credentials.includes('previewPassword')) problem(`project ${name}: its preview password was not restored (never stored in S3): its previews stay closed, and open with share links, until previewPassword is set again`);
    if (copy.credentials.includes('forge')) problem(`project ${name}: its forge token was not restored (never stored in S3): set forge again`);
    if (copy.credentials.includes('gitAuth')) problem(`project ${name}: its access token was not restored (never stored in S3): set gitAuth again`);
    if (copy.credentials.includes('deployKey')) problem(`project ${name}: its deploy key was not restored (never stored in S3): make one (POST /projects/${name}/deploy-key) and add it to the repository`);
    for (const host of domainsLeft) problem(`project ${name}: domain ${host} not restored: another project holds it now`);
  }

  await forEachBounded(storage.listFolders(storageKeys.dist('')), CONCURRENCY, async (id) => {
    if (!isDeploymentId(id)) return;
    if ((await redis.exists(recordKey(id))) === 1) {
      report.deployments.present++;
      return;
    }
    const facts = await newestFacts(storage, id);
    if (typeof facts === 'string') {
      report.deployments.unrestorable++;
      problem(`deployment ${id}: ${facts}; its objects are left in S3`);
      return;
    }
    const hash: Record<string, string> = {
      ...facts.fields,
      id,
      status: 'deployed',
      liveBuild: facts.build,
      finishedAt: facts.publishedAt,
      outputFiles: String(facts.outputFiles),
      outputBytes: String(facts.outputBytes),
      restoredAt: now.toISOString(),
    };
    if (!DeploymentRecordSchema.safeParse(hash).success) {
      report.deployments.unrestorable++;
      problem(`deployment ${id}: its facts in S3 do not make a valid record; not restored`);
      return;
    }
    const createdMs = Date.parse(hash.createdAt ?? '') || Date.parse(facts.publishedAt) || now.getTime();
    const project = hash.project;
    const keys = [recordKey(id), DEPLOYMENTS_KEY, ...(project ? [projectKey(project), projectDeploymentsKey(project), projectBranchesKey(project)] : [])];
    const result = await runScript(redis, 'restore', keys, [id, String(createdMs), hash.aliasLabel ?? '', hash.production === '1' ? '1' : '0', ...Object.entries(hash).flat()]);
    if (result === 'exists') {
      report.deployments.present++;
      return;
    }
    report.deployments.restored++;
    if (facts.envNames.length > 0) problem(`deployment ${id}: restored without its env values (never stored in S3: ${facts.envNames.join(', ')}); a redeploy would build without them`);
  });

  for (const [name, id] of pinned) {
    if ((await redis.exists(recordKey(id))) === 0) problem(`project ${name}: production was pinned to ${id} (a rollback), which could not be restored; promote a deployment to serve production again`);
  }
  await redis.set(MARKER_KEY, now.toISOString());
  return report;
}

/** The deployment's newest build that was completely published with its facts, or why there is none. */
async function newestFacts(storage: Storage, id: string): Promise<DeploymentFacts | string> {
  const builds = new Set<string>();
  for await (const folder of storage.listFolders(`${storageKeys.dist(id)}/`)) {
    const build = siteKeys.buildOf(folder);
    if (BUILD_ID_PATTERN.test(build)) builds.add(build);
  }
  if (builds.size === 0) return 'no build under its prefix';
  let newest: DeploymentFacts | null = null;
  let complete = 0;
  for (const build of builds) {
    const manifest = await storage.list(siteKeys.manifest(id, build), 1).next();
    if (manifest.done) continue;
    complete++;
    const facts = await readCopy(storage, backupKeys.facts(id, build), DeploymentFactsSchema).catch(() => null);
    if (facts && facts.build === build && facts.fields.id === id && (!newest || facts.publishedAt > newest.publishedAt)) newest = facts;
  }
  if (newest) return newest;
  return complete === 0 ? 'no completely published build' : 'its builds were published before Slipway wrote deployment facts, so nothing says which project or alias it served';
}

/**
 * Whether Redis is new or was reset since Slipway last wrote to it: its marker is missing. The
 * janitor then runs reconcile (which sets the marker).
 */
export async function redisWasReset(redis: Redis): Promise<boolean> {
  return (await redis.exists(MARKER_KEY)) === 0;
}

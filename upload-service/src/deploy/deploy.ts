// The deploy flow behind POST /deploy: validate → clone → upload the source → record and enqueue.
// Nothing reaches the queue until every file is in S3; every failure path leaves Redis and S3 as they were.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { ConflictError, DeployRequestSchema, InvalidInputError, TooManyRequestsError, UnavailableError, CloneFailedError, envForDeployment, openGitAuth, openProjectEnv, projectKey, sealDeploymentEnv, sealedPlace, type Secrets, branchLabel, pullRequestLabel, type ForgeRef, newDeploymentId, siteUrl, storageKeys, type Config, type DeployRequest, type DeploymentRecord, type Logger, type ProjectRecord, type Queue, type Storage, settingsDigest, type Watched } from '@slipway/shared';
import type { LimitFunction } from 'p-limit';
import { archiveSource } from './archive';
import { cloneRepo } from './clone';
import { skipUnchanged, type WatchPlan } from './skip';
import { enqueueConfirmed, platform, undo } from './steps';
import type { GitCredential } from './git-access';
import { checkRepoUrl, type RepoTarget } from './url-policy';

/** The lease of a request preparing an idempotent deployment: renewed while it works, so a retry can tell a live one from a dead one. */
const LEASE_MS = 15_000;
/** How often an upload renews its `uploading` record's life (an hour, UPLOADING_TTL_SECONDS). */
const KEEP_UPLOADING_MS = 60_000;

/** A client's Idempotency-Key, with who sent it and to which route: the same key from another token is another key. */
export interface Idempotency {
  key: string;
  who: string;
  where: string;
}

export interface DeployDeps {
  config: Config;
  queue: Queue;
  storage: Storage;
  logger: Logger;
  /** False while Redis is unreachable: then nothing is cloned and the answer is 503. */
  redisReady: () => boolean;
  /** Bounds the clones in progress (MAX_CONCURRENT_CLONES). */
  clones: LimitFunction;
}

/**
 * The request's Idempotency-Key (visible ASCII, at most 255 characters), scoped to its API token and
 * route; undefined when it sends none, InvalidInputError for one that cannot be a key.
 */
export function idempotencyOf(req: { get(name: string): string | undefined }, where: string): Idempotency | undefined {
  const key = req.get('idempotency-key');
  if (key === undefined) return undefined;
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) throw new InvalidInputError('Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID, say)');
  const token = /^Bearer +(\S+)$/i.exec(req.get('authorization') ?? '')?.[1];
  return { key, where, who: token ? createHash('sha256').update(token).digest('hex') : 'anonymous' };
}

export async function createDeployment(deps: DeployDeps, body: unknown, idempotency?: Idempotency): Promise<DeploymentRecord> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidInputError('the request body must be a JSON object such as {"repoUrl": "https://github.com/owner/site.git"}');
  }
  const parsed = DeployRequestSchema.safeParse(body);
  if (!parsed.success) throw new InvalidInputError(describeIssues(parsed.error.issues));
  return startDeployment(deps, parsed.data, {}, idempotency);
}

/** What a project deployment builds, beyond the project's own settings. */
export interface ProjectDeployOptions {
  /** The branch (else production's) and, optionally, the commit to build. */
  branch?: string;
  commit?: string;
  idempotency?: Idempotency;
  /**
   * The URL of another repository (a fork's) to build with the project's settings: always a preview,
   * never given the project's credentials, and given its env only when the project opts in (forkEnv).
   */
  fork?: string;
  /** A pull request's number: a preview at the alias `pr-<number>`, whatever its branch is called. */
  pullRequest?: number;
  /** Where the commit lives on its forge, for commit statuses and the pull request's comment (notify/). */
  forge?: ForgeRef;
  /** A push: when it changed none of the project's watched paths, it ends `skipped` without a build. */
  skipUnchanged?: boolean;
}

/**
 * A deployment of a project: its settings, the branch asked for (else production's), its aliases. A
 * fork's deployment has an alias of its own (`fork-<hash of its URL and branch>`) unless it is a pull
 * request's (`pr-<number>`): a fork's `main` is not the project's.
 */
export async function createProjectDeployment(deps: DeployDeps, project: ProjectRecord, options: ProjectDeployOptions = {}): Promise<DeploymentRecord> {
  const { fork, pullRequest } = options;
  const fromFork = fork !== undefined && fork !== project.repoUrl;
  const chosen = options.branch ?? project.productionBranch;
  const production = chosen === project.productionBranch && !fromFork && pullRequest === undefined ? ('1' as const) : undefined;
  const { secrets } = deps.config;
  // Production's env, or preview's with the branch's own over it (projects/secrets.ts).
  const env = envForDeployment(openProjectEnv(project, secrets), { branch: chosen, production: production === '1', fork: fromFork }, project.forkEnv === '1');
  const request: DeployRequest = {
    repoUrl: fromFork ? fork : project.repoUrl,
    branch: chosen,
    commit: options.commit,
    rootDir: project.rootDir,
    installCommand: project.installCommand,
    buildCommand: project.buildCommand,
    outputDir: project.outputDir,
    env,
    nodeVersion: project.nodeVersion,
    buildMemoryMb: project.buildMemoryMb,
    sourceScope: project.sourceScope,
    spaFallback: project.spaFallback,
  };
  const aliasLabel =
    pullRequest !== undefined ? pullRequestLabel(pullRequest) : fromFork ? `fork-${createHash('sha256').update(`${fork}\0${chosen}`).digest('hex').slice(0, 6)}` : branchLabel(chosen, project.name);
  const extra: Extra = { project: project.name, aliasLabel, production, envVersion: fromFork && project.forkEnv !== '1' ? undefined : project.envVersion, forge: options.forge };
  // Everything it builds with but the source: a change of any of them builds again, watched paths or not.
  const { env: _env, branch: _branch, commit: _commit, ...settings } = request;
  const watch: WatchPlan = { paths: project.watchPaths ?? 'default', settings: settingsDigest({ ...settings, envVersion: extra.envVersion }), skipUnchanged: options.skipUnchanged === true };
  return startDeployment(deps, request, extra, options.idempotency, fromFork ? undefined : projectCredential(project, secrets), watch);
}

/** The project's way into its repository: its deploy key for an SSH URL, its access token for HTTPS; none, or the key's absence, say so at the clone. */
export function projectCredential(project: ProjectRecord, secrets: Secrets): GitCredential | null {
  const ssh = !/^https?:\/\//.test(project.repoUrl);
  if (ssh && project.deployKey) return { kind: 'key', privateKey: secrets.open(project.deployKey, sealedPlace(projectKey(project.name), 'deployKey')) };
  if (ssh) throw new CloneFailedError(`project ${project.name} has an SSH repoUrl and no deploy key: POST /projects/${project.name}/deploy-key makes one, and its public key goes to the repository`);
  const auth = openGitAuth(project, secrets);
  return auth ? { kind: 'token', auth } : null;
}

type Extra = Pick<DeploymentRecord, 'project' | 'aliasLabel' | 'production' | 'envVersion' | 'forge'>;

/** `credential` undefined: a plain POST /deploy (public https only); a project's deployment passes its own (or null). */
async function startDeployment(deps: DeployDeps, request: DeployRequest, extra: Extra, idempotency?: Idempotency, credential?: GitCredential | null, watch?: WatchPlan): Promise<DeploymentRecord> {
  const auth = credential ?? null;
  const { config } = deps;
  // Env values are stored sealed only: without SECRETS_KEY they are refused before anything is cloned.
  if (request.env && Object.keys(request.env).length > 0) config.secrets.ensureEnabled();
  const target = await checkRepoUrl(request.repoUrl, { allowPrivateNetworks: config.allowPrivateNetworks, allowedHosts: config.gitAllowedHosts }, { ssh: auth?.kind === 'key' });
  if (!deps.redisReady()) throw new UnavailableError('Redis is unavailable; nothing was enqueued, try again shortly');
  const { clones } = deps;
  // Clones hold a process, disk and memory each: a few at a time, a bounded line behind them, 429 past that.
  if (clones.activeCount + clones.pendingCount >= config.maxConcurrentClones + config.maxWaitingClones) {
    throw new TooManyRequestsError(`${clones.activeCount + clones.pendingCount} deployments are being prepared; the limit is ${config.maxConcurrentClones + config.maxWaitingClones}, try again shortly`, 5);
  }
  if (!idempotency) return clones(() => prepare(deps, request, target, extra, { id: newDeploymentId() }, auth, watch));
  return idempotent(deps, idempotency, request, extra, (id, renew) => clones(() => prepare(deps, request, target, extra, { id, renew }, auth, watch)));
}

/**
 * The same key within 24 h (from the same token, to the same route) answers with the same
 * deployment: the one it made, as it is now; or, when the request that took the key died before
 * queueing it (no live lease), the same deployment prepared again, under the same id. The same key
 * for a different request is a conflict, and so is a retry while the first is still preparing.
 */
async function idempotent(deps: DeployDeps, i: Idempotency, request: DeployRequest, extra: Extra, run: (id: string, renew: () => Promise<void>) => Promise<DeploymentRecord>): Promise<DeploymentRecord> {
  const hash = createHash('sha256').update(`${i.who}\0${i.where}\0${i.key}`).digest('hex');
  const asked = createHash('sha256').update(JSON.stringify([request, extra])).digest('hex');
  const held = await platform('Redis', () => deps.queue.idempotent(hash, { id: newDeploymentId(), request: asked }));
  if (held.request !== asked) throw new ConflictError('this Idempotency-Key was used for another request in the last 24 hours; use a new key for a new request');
  const lease = await platform('Redis', () => deps.queue.leaseIdempotent(hash, LEASE_MS));
  if (!lease) throw new ConflictError(`a request with this Idempotency-Key is still preparing deployment ${held.id}; ask again in a few seconds`);
  try {
    const existing = await platform('Redis', () => deps.queue.get(held.id));
    if (existing && existing.status !== 'uploading') return existing;
    return await run(held.id, lease.renew);
  } finally {
    await lease.release().catch(() => undefined);
  }
}

async function prepare(deps: DeployDeps, request: DeployRequest, target: RepoTarget, extra: Extra, claim: { id: string; renew?: () => Promise<void> }, credential: GitCredential | null, watch?: WatchPlan): Promise<DeploymentRecord> {
  const { config, queue, storage } = deps;
  const { id } = claim;
  const logger = deps.logger.child({ deploymentId: id });
  const started = Date.now();
  // An idempotent request renews its lease while it works: a retry meanwhile is told to wait.
  const renewing = claim.renew ? setInterval(() => void claim.renew!().catch(() => undefined), LEASE_MS / 3) : null;
  // The pid in the name: a later upload-service removes what this one leaves if it dies (main.ts).
  // The clone is a folder inside it, beside what git needs that must not be uploaded (a credential, a path list).
  const work = await mkdtemp(path.join(config.workDir ?? tmpdir(), `slipway-clone-${process.pid}-`));
  const dir = path.join(work, 'repo');
  await mkdir(dir);
  let keeping: NodeJS.Timeout | undefined;
  try {
    // An id prepared again (its first request died mid-upload) starts from an empty source.
    if (claim.renew) await platform('S3', () => storage.deletePrefix(`${storageKeys.source(id)}/`));
    const { commit, branch, packages, files, watched: holds } = await cloneRepo(
      target,
      request.branch,
      dir,
      { timeoutMs: config.cloneTimeoutMs, maxBytes: config.maxRepoBytes, maxFiles: config.maxRepoFiles },
      // The whole repository unless asked otherwise: an app may import from any folder of it.
      { rootDir: request.rootDir, narrow: request.sourceScope === 'rootDir', commit: request.commit, credential, knownHosts: config.sshKnownHosts, watch: watch?.paths },
    );
    const watched: Watched | undefined = holds && watch ? { ...holds, settings: watch.settings } : undefined;
    const record: DeploymentRecord = {
      id,
      repoUrl: target.url,
      branch,
      commit,
      rootDir: request.rootDir,
      installCommand: request.installCommand,
      buildCommand: request.buildCommand,
      outputDir: request.outputDir,
      ...sealDeploymentEnv(id, request.env, config.secrets),
      nodeVersion: request.nodeVersion,
      buildMemoryMb: request.buildMemoryMb,
      sourceScope: request.sourceScope,
      cache: request.cache,
      spaFallback: request.spaFallback,
      ...extra,
      watched,
      sourceFormat: 'tar.gz',
      status: 'uploading',
      attempts: 0,
      createdAt: new Date().toISOString(),
      url: siteUrl(config, id),
    };
    await platform('Redis', () => queue.createUploading(record));
    if (watch?.skipUnchanged && watched) {
      const skipped = await skipUnchanged(queue, record, watched);
      if (skipped) {
        logger.info({ repoUrl: target.url, commit, serving: skipped.skip?.serving, compared: watched.paths, ms: Date.now() - started }, 'deployment skipped: none of the watched paths changed');
        return skipped;
      }
    }
    // The record lives while the upload does (it expires only when this process dies first).
    keeping = setInterval(() => void queue.keepUploading(id).catch(() => undefined), KEEP_UPLOADING_MS);
    let fields: Pick<DeploymentRecord, 'sourceFiles' | 'sourceBytes'>;
    try {
      // One archive of the selected files, streamed from git's objects to one multipart upload.
      const source = await archiveSource(dir, files, { timeoutMs: config.cloneTimeoutMs });
      await platform('S3', () => storage.putStream(storageKeys.sourceArchive(id), source.stream, { contentType: 'application/gzip' }));
      fields = { sourceFiles: source.files, sourceBytes: source.bytes };
    } catch (err) {
      await undo(deps, id, logger);
      throw err;
    }
    const outcome = await enqueueConfirmed(queue, id, fields);
    if (outcome === 'unknown') {
      // The request may have reached Redis: undoing now could delete a deployment that is already queued.
      logger.error({ deploymentId: id }, 'Redis failed while the deployment was being queued, and did not come back to say whether it was');
      throw new UnavailableError(`Redis became unavailable while deployment ${id} was being queued; it may still run: see /deployments/${id}`);
    }
    if (outcome === 'not-queued') {
      await undo(deps, id, logger);
      throw new UnavailableError('Redis is unavailable; nothing was enqueued, try again shortly');
    }
    if (outcome === 'record-gone') {
      await undo(deps, id, logger);
      logger.error({ deploymentId: id }, 'the uploading record was gone when the upload finished');
      throw new UnavailableError(`the record of deployment ${id} was gone from Redis when its upload finished (Redis was reset or lost its data meanwhile); nothing was enqueued, try again`);
    }
    logger.info({ repoUrl: target.url, commit, rootDir: request.rootDir, workspacePackages: packages, ...fields, ms: Date.now() - started }, 'deployment queued');
    return { ...record, ...fields, status: 'queued' };
  } finally {
    if (renewing) clearInterval(renewing);
    clearInterval(keeping);
    await rm(work, { recursive: true, force: true });
  }
}

export function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 5)
    .map((i) => (i.path.length ? `${i.path.map(String).join('.')}: ${i.message}` : i.message))
    .join('; ');
}

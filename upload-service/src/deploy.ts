// The deploy flow behind POST /deploy: validate → clone → upload the source → record and enqueue.
// Nothing reaches the queue until every file is in S3; every failure path leaves Redis and S3 as they were.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  DeployRequestSchema,
  InvalidInputError,
  SlipwayError,
  TooManyRequestsError,
  UnavailableError,
  describeError,
  isRedisOffline,
  isRedisUnavailable,
  branchLabel,
  newDeploymentId,
  siteUrl,
  storageKeys,
  uploadTree,
  type Config,
  type DeployRequest,
  type DeploymentRecord,
  type Logger,
  type ProjectRecord,
  type Queue,
  type Storage,
} from '@slipway/shared';
import type { LimitFunction } from 'p-limit';
import { cloneRepo } from './clone';
import { checkRepoUrl, type RepoTarget } from './url-policy';

/** How long a failed enqueue is asked again before the answer is 503. */
const ENQUEUE_CONFIRM_MS = 10_000;

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

export async function createDeployment(deps: DeployDeps, body: unknown): Promise<DeploymentRecord> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidInputError('the request body must be a JSON object such as {"repoUrl": "https://github.com/owner/site.git"}');
  }
  const parsed = DeployRequestSchema.safeParse(body);
  if (!parsed.success) throw new InvalidInputError(describeIssues(parsed.error.issues));
  return startDeployment(deps, parsed.data, {});
}

/** A deployment of a project: its settings, the branch asked for (else production's), its aliases. */
export async function createProjectDeployment(deps: DeployDeps, project: ProjectRecord, branch: string | undefined, commit?: string): Promise<DeploymentRecord> {
  const chosen = branch ?? project.productionBranch;
  const request: DeployRequest = {
    repoUrl: project.repoUrl,
    branch: chosen,
    commit,
    rootDir: project.rootDir,
    installCommand: project.installCommand,
    buildCommand: project.buildCommand,
    outputDir: project.outputDir,
    env: project.env,
    nodeVersion: project.nodeVersion,
    spaFallback: project.spaFallback,
  };
  const production = chosen === project.productionBranch ? ('1' as const) : undefined;
  return startDeployment(deps, request, { project: project.name, aliasLabel: branchLabel(chosen, project.name), production });
}

async function startDeployment(deps: DeployDeps, request: DeployRequest, extra: Pick<DeploymentRecord, 'project' | 'aliasLabel' | 'production'>): Promise<DeploymentRecord> {
  const { config } = deps;
  const target = await checkRepoUrl(request.repoUrl, { allowPrivateNetworks: config.allowPrivateNetworks, allowedHosts: config.gitAllowedHosts });
  if (!deps.redisReady()) throw new UnavailableError('Redis is unavailable; nothing was enqueued, try again shortly');
  const { clones } = deps;
  // Clones hold a process, disk and memory each: a few at a time, a bounded line behind them, 429 past that.
  if (clones.activeCount + clones.pendingCount >= config.maxConcurrentClones + config.maxWaitingClones) {
    throw new TooManyRequestsError(`${clones.activeCount + clones.pendingCount} deployments are being prepared; the limit is ${config.maxConcurrentClones + config.maxWaitingClones}, try again shortly`, 5);
  }
  return clones(() => prepare(deps, request, target, extra));
}

async function prepare(deps: DeployDeps, request: DeployRequest, target: RepoTarget, extra: Pick<DeploymentRecord, 'project' | 'aliasLabel' | 'production'>): Promise<DeploymentRecord> {
  const { config, queue, storage } = deps;

  const id = newDeploymentId();
  const logger = deps.logger.child({ deploymentId: id });
  const started = Date.now();
  const dir = await mkdtemp(path.join(config.workDir ?? tmpdir(), 'slipway-clone-'));
  try {
    const { commit, branch, packages } = await cloneRepo(
      target,
      request.branch,
      dir,
      { timeoutMs: config.cloneTimeoutMs, maxBytes: config.maxRepoBytes, maxFiles: config.maxRepoFiles },
      { rootDir: request.rootDir, commit: request.commit },
    );
    const record: DeploymentRecord = {
      id,
      repoUrl: target.url,
      branch,
      commit,
      rootDir: request.rootDir,
      installCommand: request.installCommand,
      buildCommand: request.buildCommand,
      outputDir: request.outputDir,
      env: request.env,
      nodeVersion: request.nodeVersion,
      cache: request.cache,
      spaFallback: request.spaFallback,
      ...extra,
      status: 'uploading',
      attempts: 0,
      createdAt: new Date().toISOString(),
      url: siteUrl(config, id),
    };
    await platform('Redis', () => queue.createUploading(record));
    let fields: Pick<DeploymentRecord, 'sourceFiles' | 'sourceBytes'>;
    try {
      const source = await platform('S3', () =>
        uploadTree(storage, dir, storageKeys.source(id), {
          skipDirs: new Set(['.git']),
          maxFiles: config.maxRepoFiles,
          maxBytes: config.maxRepoBytes,
          what: 'repository',
          concurrency: config.uploadConcurrency,
        }),
      );
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
    logger.info({ repoUrl: target.url, commit, rootDir: request.rootDir, workspacePackages: packages, ...fields, ms: Date.now() - started }, 'deployment queued');
    return { ...record, ...fields, status: 'queued' };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Enqueues, and finds out what happened when Redis fails on the way. Enqueue is idempotent, so it
 * is asked again (for up to ENQUEUE_CONFIRM_MS) until Redis answers: any status but `missing` means
 * the id is on the list. 'unknown' only when a request may have reached Redis and no answer came.
 */
async function enqueueConfirmed(queue: Queue, id: string, fields: Partial<DeploymentRecord>): Promise<'queued' | 'not-queued' | 'unknown'> {
  const deadline = Date.now() + ENQUEUE_CONFIRM_MS;
  let maybeSent = false;
  for (let wait = 100; ; wait = Math.min(wait * 2, 1000)) {
    try {
      return (await queue.enqueue(id, fields)) === 'missing' ? 'not-queued' : 'queued';
    } catch (err) {
      if (!isRedisUnavailable(err)) return 'not-queued'; // Redis answered with an error: the script did not run
      // An offline client sends nothing; any other failure (reset, timeout) may have come after Redis ran it.
      if (!isRedisOffline(err)) maybeSent = true;
      if (Date.now() > deadline) return maybeSent ? 'unknown' : 'not-queued';
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** Removes what a failed deployment wrote; each step on its own so one failure does not skip the other. */
async function undo(deps: DeployDeps, id: string, logger: Logger): Promise<void> {
  try {
    await deps.storage.deletePrefix(`${storageKeys.source(id)}/`);
  } catch (err) {
    logger.error({ err: describeError(err) }, 'could not remove the uploaded source of a failed deployment');
  }
  try {
    await deps.queue.discard(id);
  } catch (err) {
    // The `uploading` record expires on its own.
    logger.error({ err: describeError(err) }, 'could not remove the record of a failed deployment');
  }
}

/** Runs a Redis or S3 step; an error that is not Slipway's own means the platform is unavailable. */
async function platform<T>(what: 'Redis' | 'S3', step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (err instanceof SlipwayError) throw err;
    // The cause is logged by the error handler; the client gets no internal addresses.
    throw new UnavailableError(`${what === 'S3' ? 'object storage' : 'Redis'} is unavailable; nothing was enqueued, try again shortly`, err);
  }
}

export function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 5)
    .map((i) => (i.path.length ? `${i.path.map(String).join('.')}: ${i.message}` : i.message))
    .join('; ');
}

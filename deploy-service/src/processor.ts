// Runs one deployment: source into a fresh work folder, install, build, find the output, publish
// it. Throws BuildFailedError when the repository's own build fails; any other error is the platform's.
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import {
  BuildFailedError,
  RepoTooLargeError,
  describeError,
  storageKeys,
  type Config,
  type DeploymentRecord,
  type Logger,
  type Storage,
  type UploadResult,
} from '@slipway/shared';
import { describeExit, runCommand } from './build';
import type { BuildLog } from './build-log';
import { startEgressProxy } from './egress';
import { planBuild, type PackageJson } from './plan';
import type { ToolCache } from './tools';
import { restoreCache, saveCache } from './cache-steps';
import type { BuildCache } from './cache';
import { failureSummary } from './failure';
import { requireStaticSite, serverBuildReason } from './static-output';
import { publishOutput, removeStaleBuilds } from './publish';
import { allocateBuildUid, writeIdentityFiles, type Caps, type SandboxSupport } from './sandbox';
import { OUTPUT_DIR_CANDIDATES, createWorkspace, downloadPrefix, existingDir, existingFile, findOutputDir, handOver } from './workspace';

export interface ProcessDeps {
  config: Config;
  storage: Storage;
  logger: Logger;
  sandbox: SandboxSupport;
  tools: ToolCache;
  /** Null with BUILD_CACHE=off. */
  cache: BuildCache | null;
}


/** Builds `record` and publishes its output as build `build` (not yet live: the caller records it). */
export async function processDeployment(deps: ProcessDeps, record: DeploymentRecord, build: string, log: BuildLog, signal: AbortSignal): Promise<UploadResult> {
  const { config, storage } = deps;
  const stale = await removeStaleBuilds(storage, record.id, record.liveBuild);
  if (stale.length > 0) deps.logger.info({ deploymentId: record.id, builds: stale }, 'removed the output of earlier attempts that never went live');
  const ws = await createWorkspace(config.workDir, record.id);
  const uid = await allocateBuildUid(config.buildUids);
  const caps: Caps = { memoryBytes: config.buildMemoryBytes, maxProcs: config.buildMaxProcs, maxFileBytes: config.buildMaxFileBytes, tmpBytes: config.buildTmpBytes };
  const egress = await startEgressProxy(path.join(ws.root, 'egress.sock'), { privateHosts: config.buildEgressPrivateHosts, allowHosts: config.buildEgressAllow }, (reason) =>
    log.line(`[slipway] egress refused: ${reason}`),
  );
  try {
    // Milliseconds per phase, logged at the end: where a build's time goes.
    const phases: Record<string, number> = {};
    let mark = performance.now();
    const phase = (name: string) => {
      const now = performance.now();
      phases[name] = Math.round(now - mark);
      mark = now;
    };
    const source = await downloadPrefix(storage, storageKeys.source(record.id), ws.src, config.uploadConcurrency);
    phase('download');
    log.line(`[slipway] source: ${source.files} files, commit ${record.commit ?? 'unknown'}`);
    log.line(describeSandbox(deps.sandbox, uid?.uid ?? null, caps));
    signal.throwIfAborted();
    await handOver(ws, uid?.uid ?? null);
    const etc = await writeIdentityFiles(ws.root, uid?.uid ?? process.getuid?.() ?? 0);
    const appDir = await existingDir(ws.src, record.rootDir ?? '.');
    if (!appDir) throw new BuildFailedError(`rootDir "${record.rootDir}" is not a folder in the repository`);

    const env = buildEnv(record);
    log.hide(record.env ?? {});
    if (record.env) log.line(`[slipway] env: ${Object.keys(record.env).sort().join(', ')} (values hidden in this log)`);

    const pkg = await readPackageJson(appDir);
    const plan = await planBuild(record, await realpath(ws.src), appDir, pkg, deps.tools);
    phase('plan');
    for (const note of plan.notes) log.line(note);
    const tools = { root: deps.tools.root, path: plan.toolPath };
    const sandboxed = deps.sandbox.kind === 'bwrap';
    /** Runs one command in the sandbox; a non-zero exit fails the build with the line that explains it. */
    const run = async (argv: readonly string[], name: string, extra: { label?: string; binds?: [string, string][] } = {}) => {
      const result = await runCommand(argv, log, {
        cwd: appDir,
        ws,
        uid: uid?.uid ?? null,
        support: deps.sandbox,
        caps,
        egressSocket: egress.socketPath,
        etc,
        env,
        tools,
        name: `${build}-${name}`,
        timeoutMs: config.buildTimeoutMs,
        signal,
        ...extra,
      });
      signal.throwIfAborted();
      if (result.code !== 0) {
        const exit = describeExit(argv, result, { timeoutMs: config.buildTimeoutMs, caps });
        const summary = failureSummary(log.commandLines());
        // An exit code says little, so the explaining line leads; a cap or the time limit is the reason itself.
        const limited = result.timedOut || result.capHit !== null || result.aborted;
        throw new BuildFailedError(summary === null ? exit : limited ? `${exit}; its last words: ${summary}` : `${summary} (${exit})`);
      }
    };
    const cache = deps.cache && record.cache !== false && plan.manager ? await restoreCache(deps.cache, record, plan, appDir, { ws, uid: uid?.uid ?? null, sandboxed, log, run }) : null;
    if (!cache) log.line(record.cache === false ? '[slipway] cache: off (cache: false)' : plan.manager ? '[slipway] cache: off (BUILD_CACHE=off)' : '[slipway] cache: none (nothing to install)');
    phase('restore');
    for (const [n, argv] of plan.steps.entries()) {
      if (argv === plan.install && cache?.exact) continue;
      await run(argv, String(n));
    }
    phase('commands');
    let outputDir = await findOutputDir(appDir, record.outputDir, plan.preset?.outputs);
    // A plain static site (or one whose package.json only holds dev tools) is published as it is.
    if (!outputDir && plan.steps.length === 0 && (await existingFile(appDir, 'index.html'))) outputDir = appDir;
    if (!outputDir) {
      const server = pkg ? await serverBuildReason(appDir, null, pkg) : null;
      if (server) throw new BuildFailedError(`${server}; Slipway publishes static sites only`);
      throw new BuildFailedError(
        pkg
          ? `the build wrote none of ${[...(plan.preset?.outputs ?? []), ...OUTPUT_DIR_CANDIDATES].join(', ')}; set outputDir to the folder it writes`
          : 'the repository has no package.json and no index.html in its app folder; there is nothing to build or publish',
      );
    }
    // Only a static site is published: a server bundle (handler.js, env.js ...) must never be served as files.
    await requireStaticSite(appDir, outputDir, pkg, record.spaFallback);
    signal.throwIfAborted();
    const output = await publishOutput(storage, record.id, build, outputDir, {
      concurrency: config.uploadConcurrency,
      maxFiles: config.maxOutputFiles,
      maxBytes: config.maxOutputBytes,
      tmpDir: path.join(ws.root, 'publish'),
    }).catch(
      (err: unknown) => {
        // Past MAX_OUTPUT_FILES or MAX_OUTPUT_MB: the build's doing, so it fails rather than retries.
        throw err instanceof RepoTooLargeError ? new BuildFailedError(err.message) : err;
      },
    );
    if (output.files === 0) throw new BuildFailedError('the output folder is empty; there is nothing to publish');
    const rules = output.redirects + output.headerRules > 0 ? `; ${output.redirects} redirect rules, ${output.headerRules} header rules` : '';
    log.line(`[slipway] published ${output.files} files (${output.bytes} bytes; ${output.compressed} with Brotli/gzip variants${rules})`);
    phase('publish');
    if (cache) {
      await saveCache(cache, appDir, { ws, uid: uid?.uid ?? null, sandboxed, log, run, maxArchiveBytes: config.buildCacheArchiveBytes }).catch((err: unknown) => {
        // The site is published and does not depend on it: the next build is only slower.
        signal.throwIfAborted();
        log.line(`[slipway] cache: not saved (${err instanceof BuildFailedError ? err.message : 'an error on the worker; its log has it'})`);
        if (!(err instanceof BuildFailedError)) deps.logger.warn({ deploymentId: record.id, err: describeError(err) }, 'build cache not saved');
      });
    }
    phase('save');
    deps.logger.info({ deploymentId: record.id, build, phases }, 'build phases (ms)');
    return output;
  } finally {
    await egress.close();
    await ws.remove();
    await uid?.release();
  }
}

/** What every command of the build gets besides the sandbox's own settings: the request's env and Slipway's. */
export function buildEnv(record: Pick<DeploymentRecord, 'id' | 'env' | 'commit' | 'branch' | 'url'>): Record<string, string> {
  const system: Record<string, string> = { SLIPWAY_DEPLOYMENT_ID: record.id, SLIPWAY_URL: record.url };
  if (record.commit) system.SLIPWAY_COMMIT = record.commit;
  if (record.branch) system.SLIPWAY_BRANCH = record.branch;
  return { ...record.env, ...system };
}

/** The log's line on how the build is sealed and capped. */
function describeSandbox(sandbox: SandboxSupport, uid: number | null, caps: Caps): string {
  const mb = (b: number) => `${Math.round(b / 1024 / 1024)} MB`;
  const where = sandbox.kind === 'bwrap' ? 'sandbox: bubblewrap (own pid, mount, network, ipc, uts and user namespaces; egress through the proxy)' : 'sandbox: OFF (BUILD_SANDBOX=off): this build is not isolated';
  const who = uid !== null ? `uid ${uid}` : 'the worker\'s uid';
  const how = sandbox.caps === 'rlimit' ? 'rlimits' : sandbox.caps;
  return `[slipway] ${where}; runs as ${who}; caps by ${how}: memory ${mb(caps.memoryBytes)}, ${caps.maxProcs} processes, files ${mb(caps.maxFileBytes)}, /tmp ${mb(caps.tmpBytes)}`;
}

async function readPackageJson(appDir: string): Promise<PackageJson | null> {
  if (!(await existingFile(appDir, 'package.json'))) return null;
  const text = await readFile(`${appDir}/package.json`, 'utf8');
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as PackageJson;
  } catch (err) {
    throw new BuildFailedError(`package.json is not a valid JSON object (${err instanceof Error ? err.message : String(err)})`);
  }
}

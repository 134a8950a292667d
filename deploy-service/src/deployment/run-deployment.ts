// Runs one deployment: source into a fresh work folder and disk, install, build, take the output
// out through the sandbox, publish it. Throws BuildFailedError when the repository's own build fails;
// any other error is the platform's. Everything it acquires (folder, disk, uid, proxy) is released
// on every path, each in its own step.
import { setMaxListeners } from 'node:events';
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import {
  BuildFailedError,
  RepoTooLargeError,
  deploymentEnv,
  describeError,
  storageKeys,
  type Config,
  type DeploymentRecord,
  type Logger,
  type Storage,
} from '@slipway/shared';
import { describeExit, runCommand, type CommandOptions } from '../sandbox/run-command';
import type { BuildLog } from './build-log';
import { egressPolicy, startEgressProxy } from '../sandbox/egress';
import { planBuild } from '../detect/plan';
import { describeOutput, outputCandidates } from '../detect/presets';
import { readPackageJson } from '../detect/package-json';
import type { ToolCache } from '../toolchain/tool-cache';
import { keepDisk, planCache, restoreArchives, restoreKeptTree, saveCache, type CacheUse, type RestoredCache, type Step, type StepContext } from '../cache/cache-steps';
import { cacheScope, type BuildCache } from '../cache/cache';
import type { ClaimedDisk } from '../cache/cache-trees';
import { collectOutput } from '../sandbox/collect';
import type { DiskKind } from '../sandbox/disk';
import { causeLine, egressFailure, errorLine } from './failure';
import { buildEnv, buildMemory } from './build-env';
import { Holdings, RELEASE_TIMEOUT_MS, Watchdog } from './watchdog';
import { SERVER_PROBES, requireStaticSite, serverBuildReason } from './static-output';
import { publishOutput, removeStaleBuilds, type PublishResult } from './publish';
import { allocateBuildUid, writeIdentityFiles, type Caps, type SandboxSupport } from '../sandbox/sandbox';
import { OUTPUT_DIR_CANDIDATES, createWorkspace, downloadArchive, downloadPrefix, existingDir, handOver } from './workspace';

export interface RunDeploymentDeps {
  config: Config;
  storage: Storage;
  logger: Logger;
  sandbox: SandboxSupport;
  /** How builds' disks are capped on this worker (disk.ts). */
  disk: DiskKind;
  tools: ToolCache;
  /** Null with BUILD_CACHE=off. */
  cache: BuildCache | null;
}

/** The phases as the log's last line names them. */
const PHASE_NAMES: Record<string, string> = { download: 'source download', plan: 'detection', restore: 'cache restore', commands: 'install and build', collect: 'output collect', publish: 'publish', save: 'cache save' };

/** The same refusal this many times stops the build's command (a build probing a blocked host once or twice goes on). */
export const EGRESS_REFUSALS_TO_STOP = 20;


/** Slipway's own steps in a build's sandbox (collect, cache pack and unpack) each end within this. */
export const STEP_TIMEOUT_MS = 5 * 60_000;
/** Uploading a build's output ends within this (each request has its own deadline too). */
export const PUBLISH_TIMEOUT_MS = 15 * 60_000;

/** Downloading the source and detecting the toolchain (a Node release and a package manager to fetch) each end within this. */
const DOWNLOAD_TIMEOUT_MS = 30 * 60_000;
const PLAN_TIMEOUT_MS = 10 * 60_000;

/**
 * Builds `record` and publishes its output as build `build` (not yet live: the caller records it).
 * Each phase tells `guard.watchdog` its deadline; what it acquires goes into `guard.holdings`, which
 * the caller may release itself if this never returns.
 */
export async function runDeployment(
  deps: RunDeploymentDeps,
  record: DeploymentRecord,
  build: string,
  log: BuildLog,
  signal: AbortSignal,
  guard: { watchdog: Watchdog; holdings: Holdings; releaseAfter?: boolean } = { watchdog: new Watchdog(() => undefined), holdings: new Holdings() },
): Promise<PublishResult> {
  const { config, storage } = deps;
  const { watchdog, holdings } = guard;
  watchdog.enter('source download', DOWNLOAD_TIMEOUT_MS);
  // Side by side with making the build's disk (a few tens of ms): removing what earlier attempts left
  // (awaited before anything is published) and the source archive's GET (read once the disk is there).
  const staleRemoved = removeStaleBuilds(storage, record.id, record.liveBuild);
  const archiveKey = storageKeys.sourceArchive(record.id);
  const archive = record.sourceFormat === 'tar.gz' ? storage.get(archiveKey, undefined, signal) : null;
  for (const started of [staleRemoved, archive]) started?.catch(() => undefined); // awaited below, or given up with the build
  // An archive GET left unread (the disk failed) lets go of its connection.
  if (archive) holdings.add('the source download', async () => (await archive.catch(() => null))?.body.destroy());
  holdings.add('the removal of earlier attempts', () => staleRemoved.catch(() => undefined));
  let published = false;
  try {
    const useCache = deps.cache !== null && record.cache !== false;
    const claimed: ClaimedDisk | null = useCache && deps.cache!.trees && deps.disk === 'loop' ? await deps.cache!.trees.claim(cacheScope(record).own, config.buildDisk) : null;
    if (claimed) holdings.add('the cache disk claim', claimed.release);
    const ws = await createWorkspace(config.workDir, record.id, { kind: deps.disk, limits: config.buildDisk, imageDir: await deps.cache?.trees?.imageDir(), reuse: claimed?.image });
    holdings.add('the work folder', ws.remove);
    const stale = await staleRemoved;
    if (stale.length > 0) deps.logger.info({ deploymentId: record.id, builds: stale }, 'removed the output of earlier attempts that never went live');
    const uid = await allocateBuildUid(config.buildUids);
    if (uid) holdings.add('the build uid', uid.release);
    // A target the policy refuses again and again (an install retrying its registry) stops the
    // command at once, with the setting that would allow it, instead of at the build's time limit.
    const refusals = new Map<string, number>();
    const refusedStop = new AbortController();
    let refusedReason: string | null = null;
    /** The last refusal by policy while the current command ran: named when it fails with nothing clearer. */
    let commandRefusal: string | null = null;
    const policy = egressPolicy({ privateHosts: config.buildEgressPrivateHosts, allowHosts: config.buildEgressAllow }, deps.tools.registry);
    const egress = await startEgressProxy(path.join(ws.root, 'egress.sock'), policy, (reason, byPolicy) => {
      log.line(`[slipway] egress refused: ${reason}`);
      if (!byPolicy) return;
      commandRefusal = reason;
      const times = (refusals.get(reason) ?? 0) + 1;
      refusals.set(reason, times);
      if (times >= EGRESS_REFUSALS_TO_STOP && !refusedStop.signal.aborted) {
        refusedReason = reason;
        refusedStop.abort('egress');
      }
    });
    holdings.add('the egress proxy', egress.close);
    const memory = buildMemory(config, record.buildMemoryMb);
    const caps: Caps = { memoryBytes: memory.bytes, maxProcs: config.buildMaxProcs, maxFileBytes: config.buildMaxFileBytes };

    // Milliseconds per phase, logged at the end: where a build's time goes.
    const phases: Record<string, number> = {};
    let mark = performance.now();
    const phase = (name: string) => {
      const now = performance.now();
      phases[name] = Math.round(now - mark);
      mark = now;
    };
    // One archive (every deployment since the archive), or a file per object (those from before it).
    const source = archive
      ? await downloadArchive(archive, archiveKey, ws.src, { maxFiles: config.maxRepoFiles, maxBytes: config.maxRepoBytes }, signal)
      : await downloadPrefix(storage, storageKeys.source(record.id), ws.src, config.uploadConcurrency, signal);
    phase('download');
    watchdog.enter('detection', PLAN_TIMEOUT_MS);
    log.line(`[slipway] source: ${source.files} files, commit ${record.commit ?? 'unknown'}`);
    log.line(describeSandbox(deps, uid?.uid ?? null, caps));
    if (memory.note) log.line(memory.note);
    signal.throwIfAborted();
    // Read before any build runs: the source as the worker wrote it.
    const appDir = await existingDir(ws.src, record.rootDir ?? '.');
    if (!appDir) throw new BuildFailedError(`rootDir "${record.rootDir}" is not a folder in the repository`);
    const pkg = await readPackageJson(appDir);
    const srcRoot = await realpath(ws.src);
    const plan = await planBuild(record, srcRoot, appDir, pkg, deps.tools);
    phase('plan');
    for (const note of plan.notes) log.line(note);
    watchdog.enter('cache restore', DOWNLOAD_TIMEOUT_MS);
    const cacheUse: CacheUse | null = useCache && plan.manager ? await planCache(deps.cache!, record, plan, appDir) : null;
    const keptHit = cacheUse ? await restoreKeptTree(cacheUse, claimed, ws) : false;

    await handOver(ws, uid?.uid ?? null);
    const etc = await writeIdentityFiles(ws.root, uid?.uid ?? process.getuid?.() ?? 0);
    const own = deploymentEnv(record, config.secrets);
    const env = buildEnv(record, own, caps.memoryBytes);
    log.hide(own);
    if (Object.keys(own).length > 0) log.line(`[slipway] env: ${Object.keys(own).sort().join(', ')} (values hidden in this log)`);
    const sandboxed = deps.sandbox.kind === 'bwrap';
    const common: Omit<CommandOptions, 'env' | 'name' | 'timeoutMs'> = {
      cwd: appDir,
      ws,
      uid: uid?.uid ?? null,
      support: deps.sandbox,
      caps,
      egressSocket: egress.socketPath,
      etc,
      tools: { root: deps.tools.root, path: plan.toolPath },
      signal,
    };
    const limits = { timeoutMs: config.buildTimeoutMs, caps, disk: config.buildDisk, maxLogBytes: config.maxLogBytes };
    /** Runs one of the build's commands; a non-zero exit fails the build with the line that explains it. */
    const run = async (argv: readonly string[], name: string) => {
      commandRefusal = null;
      const result = await watchdog.within(`"${argv.join(' ')}"`, config.buildTimeoutMs, () =>
        runCommand(argv, log, { ...common, env, name: `${build}-${name}`, timeoutMs: config.buildTimeoutMs, signal: AbortSignal.any([signal, refusedStop.signal]) }),
      );
      signal.throwIfAborted();
      if (refusedReason !== null) throw new BuildFailedError(egressFailure(refusedReason, EGRESS_REFUSALS_TO_STOP));
      if (result.code !== 0) {
        const exit = describeExit(argv, result, limits);
        // A line naming the cause wins; then a refused connection (a tool's own words for it are
        // a generic network error); then the tool's error line.
        const lines = log.commandLines();
        const refused: string | null = commandRefusal;
        const summary = causeLine(lines) ?? (refused !== null ? egressFailure(refused, refusals.get(refused) ?? 1) : errorLine(lines));
        // An exit code says little, so the explaining line leads; a cap or the time limit is the reason itself.
        const limited = result.timedOut || result.capHit !== null || result.aborted;
        throw new BuildFailedError(summary === null ? exit : limited ? `${exit}; its last words: ${summary}` : `${summary} (${exit})`);
      }
    };
    /** Slipway's own steps: none of the build's variables (its NODE_OPTIONS must not reach them), their own deadline. */
    const step: Step = async (argv, name, extra) => {
      // From the source's root: the app folder may be gone (a build can move it or put a link there).
      const result = await watchdog.within(`Slipway's ${name} step`, STEP_TIMEOUT_MS, () => runCommand(argv, log, { ...common, cwd: ws.src, env: {}, own: true, name: `${build}-${name}`, timeoutMs: STEP_TIMEOUT_MS, ...extra }));
      signal.throwIfAborted();
      return result;
    };
    const c: StepContext = { ws, sandboxed, log, step, signal };

    const cache: RestoredCache | null = cacheUse ? await restoreArchives(cacheUse, keptHit, c) : null;
    /** Saving the cache never fails a build: without it the next build is only slower. */
    const storeCache = async (save: () => Promise<void>) => {
      try {
        await save();
      } catch (err) {
        signal.throwIfAborted();
        log.line(`[slipway] cache: not saved (${err instanceof BuildFailedError ? err.message : 'an error on the worker; its log has it'})`);
        if (!(err instanceof BuildFailedError)) deps.logger.warn({ deploymentId: record.id, err: describeError(err) }, 'build cache not saved');
      }
    };
    if (!cache) log.line(record.cache === false ? '[slipway] cache: off (cache: false)' : plan.manager ? '[slipway] cache: off (BUILD_CACHE=off)' : '[slipway] cache: none (nothing to install)');
    phase('restore');
    watchdog.enter('install and build', config.buildTimeoutMs);
    let installed = false;
    try {
      for (const [n, argv] of plan.steps.entries()) {
        if (argv === plan.install && cache?.exact) continue;
        await run(argv, String(n));
        installed ||= argv === plan.install;
      }
    } catch (err) {
      // The install finished and the build failed: its cache makes the fixed commit's build fast.
      if (cache && installed && err instanceof BuildFailedError) {
        log.line('[slipway] cache: the build failed after its install; saving the install for the next build');
        await storeCache(() => saveCache(cache, appDir, { ...c, maxArchiveBytes: config.buildCacheArchiveBytes }));
      }
      throw err;
    }
    phase('commands');
    watchdog.enter('output collect', STEP_TIMEOUT_MS);

    const appRel = path.relative(srcRoot, appDir);
    const candidates = outputCandidates(plan.preset, OUTPUT_DIR_CANDIDATES);
    const collected = await collectOutput(c, {
      app: appRel,
      outputDir: record.outputDir ?? null,
      candidates,
      // A plain static site (or one whose package.json only holds dev tools) is published as it is.
      plain: plan.steps.length === 0,
      probes: SERVER_PROBES,
      limits: { maxFiles: config.maxOutputFiles, maxBytes: config.maxOutputBytes, what: 'the output', limitNames: { files: 'MAX_OUTPUT_FILES', bytes: 'MAX_OUTPUT_MB' } },
    });
    phase('collect');
    if (!collected.dir) {
      const server = pkg ? serverBuildReason(collected.exists, null, pkg) : null;
      if (server) throw new BuildFailedError(`${server}; Slipway publishes static sites only`);
      throw new BuildFailedError(
        pkg
          ? `the build wrote none of ${candidates.join(', ')}; set outputDir to the folder it writes`
          : 'the repository has no package.json and no index.html in its app folder; there is nothing to build or publish',
      );
    }
    log.line(describeOutput(plan.preset, record.outputDir ?? null, collected.rel, OUTPUT_DIR_CANDIDATES));
    if (collected.tree!.skipped > 0) log.line(`[slipway] output: ${collected.tree!.skipped} links and special files left out (only files and folders are published)`);
    // Only a static site is published: a server bundle (handler.js, env.js ...) must never be served as files.
    await requireStaticSite(collected.dir, collected.rel, pkg, collected.exists, record.spaFallback);
    log.line(`[slipway] publishing ${collected.tree!.files} files`);
    watchdog.enter('publish', PUBLISH_TIMEOUT_MS);
    const publishing = AbortSignal.any([signal, AbortSignal.timeout(PUBLISH_TIMEOUT_MS)]);
    setMaxListeners(0, publishing);
    const output = await publishOutput(storage, record, build, collected.dir, {
      concurrency: config.uploadConcurrency,
      maxFiles: config.maxOutputFiles,
      maxBytes: config.maxOutputBytes,
      tmpDir: path.join(ws.root, 'publish'),
      signal: publishing,
    }).catch((err: unknown) => {
      signal.throwIfAborted();
      throw err instanceof RepoTooLargeError ? new BuildFailedError(err.message) : err;
    });
    if (output.files === 0) throw new BuildFailedError('the output folder is empty; there is nothing to publish');
    const rules = output.redirects + output.headerRules > 0 ? `; ${output.redirects} redirect rules, ${output.headerRules} header rules` : '';
    log.line(`[slipway] published ${output.files} files (${output.bytes} bytes; ${output.compressed} with Brotli/gzip variants${rules})`);
    for (const warning of output.warnings ?? []) log.line(`[slipway] ${warning}`);
    phase('publish');
    watchdog.enter('cache save', PUBLISH_TIMEOUT_MS);
    if (cache) {
      await storeCache(async () => {
        await saveCache(cache, appDir, { ...c, maxArchiveBytes: config.buildCacheArchiveBytes });
        await keepDisk(cache, c);
      });
    }
    phase('save');
    deps.logger.info({ deploymentId: record.id, build, phases }, 'build phases (ms)');
    log.line(`[slipway] time: ${Object.entries(phases).map(([name, ms]) => `${PHASE_NAMES[name] ?? name} ${(ms / 1000).toFixed(1)} s`).join(', ')}`);
    published = true;
    return output;
  } finally {
    // A published build's folder, disk and uid can wait until its outcome is recorded: the caller
    // that asked (guard.releaseAfter) releases them then, so the site goes live 15-20 ms sooner.
    if (!(published && guard.releaseAfter)) await release(deps, record, guard);
  }
}

async function release(deps: RunDeploymentDeps, record: DeploymentRecord, { watchdog, holdings }: { watchdog: Watchdog; holdings: Holdings }): Promise<void> {
  watchdog.enter('releasing what the build held', RELEASE_TIMEOUT_MS * 4);
  await holdings.releaseAll((what, err) => deps.logger.error({ deploymentId: record.id, what, err: describeError(err) }, 'could not release what a build held'));
}

/** The log's line on how the build is sealed and capped. */
function describeSandbox(deps: Pick<RunDeploymentDeps, 'sandbox' | 'disk' | 'config'>, uid: number | null, caps: Caps): string {
  const mb = (b: number) => `${Math.round(b / 1024 / 1024)} MB`;
  const { sandbox, config } = deps;
  const where = sandbox.kind === 'bwrap' ? `sandbox: bubblewrap (own pid, mount, network, ipc, uts and user namespaces; egress through the proxy${sandbox.relay ? ', names looked up through it too' : ' only'})` : 'sandbox: OFF (BUILD_SANDBOX=off): this build is not isolated';
  const who = uid !== null ? `uid ${uid}` : 'the worker\'s uid';
  const how = sandbox.caps === 'rlimit' ? 'rlimits' : sandbox.caps;
  const disk = `disk ${mb(config.buildDisk.bytes)} and ${config.buildDisk.inodes.toLocaleString('en-US')} files (${deps.disk === 'loop' ? 'a filesystem of its own' : 'watched'})`;
  return `[slipway] ${where}; runs as ${who}; caps by ${how}: memory ${mb(caps.memoryBytes)}, ${caps.maxProcs} processes, files ${mb(caps.maxFileBytes)}, ${disk}`;
}

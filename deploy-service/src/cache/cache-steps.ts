// The build cache's steps in a build. Before the install: move back the node_modules kept on this
// worker's disk (cache-trees.ts), or unpack the archives. After a successful build: pack them, and
// keep the disk with its node_modules. Archives are packed and unpacked by `tar` as the build itself,
// inside its sandbox; a packed one leaves the sandbox on the step's stdout, received into a file of
// the worker's with a size cap. An archive that cannot be unpacked is a miss, and is removed.
import { chown, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { DeploymentRecord } from '@slipway/shared';
import type { BuildLog } from '../deployment/build-log';
import type { CommandOptions, CommandResult } from '../sandbox/run-command';
import { FRAMEWORK_CACHES, MANAGER_CACHES, archiveScript, cacheKeys, cacheScope, type ArchiveName, type BuildCache, type CacheKeys, type CacheScope, type CachedArchive } from './cache';
import { restoreKept, type ClaimedDisk } from './cache-trees';
import { removeTree } from '../sandbox/disk';
import { ArchiveTooLargeError, receiveFacts, receiveFile } from '../sandbox/handoff';
import type { BuildPlan } from '../detect/plan';
import { SANDBOX } from '../sandbox/sandbox';
import type { Workspace } from '../deployment/workspace';

/** Where an archive to unpack is shown inside the sandbox. */
const ARCHIVE_INSIDE = '/run/slipway/cache.tgz';

const WHAT: Record<ArchiveName, string> = { deps: 'node_modules', packages: "the package manager's cache", build: "the framework's cache folders" };

/** Runs one of Slipway's own steps in the build's sandbox (none of the build's variables, Slipway's deadline). */
export type Step = (argv: readonly string[], name: string, extra: Partial<Pick<CommandOptions, 'label' | 'binds' | 'wholeDisk' | 'stdout'>>) => Promise<CommandResult>;

export interface StepContext {
  ws: Workspace;
  sandboxed: boolean;
  log: BuildLog;
  step: Step;
  signal: AbortSignal;
}

/** The cache a build uses: whose it is and its keys. */
export interface CacheUse {
  cache: BuildCache;
  scope: CacheScope;
  keys: CacheKeys;
}

export interface RestoredCache extends CacheUse {
  /** node_modules is this lockfile's own: the install is skipped. */
  exact: boolean;
}

/** The build's root as its commands see it: /build in the sandbox, the disk without one. */
const buildRoot = (c: StepContext) => (c.sandboxed ? '/build' : c.ws.disk.root);

export async function planCache(cache: BuildCache, record: Pick<DeploymentRecord, 'repoUrl' | 'rootDir' | 'project' | 'branch' | 'production'>, plan: BuildPlan, appDir: string): Promise<CacheUse> {
  const manager = plan.manager!;
  return { cache, scope: cacheScope(record), keys: await cacheKeys(manager.found, manager.version, plan.node.version, appDir, plan.install) };
}

/**
 * Before the build's folders are handed to its uid: with a kept disk of this lockfile's, its
 * node_modules go back into the fresh source. Whatever else the disk kept is removed.
 */
export async function restoreKeptTree(use: CacheUse, claimed: ClaimedDisk | null, ws: Workspace): Promise<boolean> {
  if (!claimed) return false;
  const keep = path.join(ws.disk.root, 'keep');
  const moved = claimed.meta.deps === use.keys.deps && (await restoreKept(keep, ws.src, claimed.meta.paths).catch(() => false));
  await removeTree(keep);
  return moved;
}

/** Unpacks the archives a build can use (all but deps when the kept node_modules came back). */
export async function restoreArchives(use: CacheUse, keptHit: boolean, c: StepContext): Promise<RestoredCache> {
  const { cache, scope, keys } = use;
  /** Whose an archive is, for the log: nothing for the build's own scope. */
  const from = (a: CachedArchive) => (a.scope === scope.own ? '' : ` (${a.whose} cache)`);
  const whose = (a: CachedArchive) => (a.scope === scope.own ? '' : `; ${a.whose} cache`);
  if (keptHit) {
    c.log.line('[slipway] cache: hit (this lockfile, manager and Node; node_modules kept on this worker): the install is skipped');
    const framework = await cache.findBuild(scope, c.signal);
    if (framework) await unpack(use, framework, 'cache-build', `the framework's cache folders${from(framework)}`, c);
    return { ...use, exact: true };
  }
  let deps = await cache.findDeps(scope, keys, c.signal);
  if (deps && !(await unpack(use, deps, 'cache-deps', `${deps.exact ? 'node_modules for this lockfile' : "an earlier lockfile's node_modules"}${from(deps)}`, c))) {
    // Whatever it left half unpacked goes too: the install starts clean.
    await c.step(['/bin/sh', '-c', 'find src -name node_modules -type d -prune -exec rm -rf {} +'], 'cache-clean', { label: '[slipway] cache: removing what was unpacked' });
    deps = null;
  }
  if (!deps) c.log.line(`[slipway] cache: miss${keys.deps ? '' : ' (no lockfile: dependencies are not cached)'}`);
  if (!deps?.exact) {
    // An install will run: the packages it downloaded last time save it the network.
    const packages = await cache.findPackages(scope, c.signal);
    if (packages) await unpack(use, packages, 'cache-packages', `the package manager's cache${from(packages)}`, c);
  }
  if (deps) {
    c.log.line(
      deps.exact
        ? `[slipway] cache: hit (this lockfile, manager and Node${whose(deps)}): the install is skipped`
        : `[slipway] cache: partial (an earlier lockfile${whose(deps)}): installing with a warm cache`,
    );
  }
  const framework = await cache.findBuild(scope, c.signal);
  if (framework) await unpack(use, framework, 'cache-build', `the framework's cache folders${from(framework)}`, c);
  return { ...use, exact: deps?.exact ?? false };
}

/** Unpacks one archive as the build; false (and the archive removed, here and in S3) when tar fails on it. */
async function unpack(use: CacheUse, archive: CachedArchive, name: string, what: string, c: StepContext): Promise<boolean> {
  const inside = c.sandboxed ? ARCHIVE_INSIDE : archive.file;
  const result = await c.step(['tar', '-xzf', inside, '-C', buildRoot(c)], name, { label: `[slipway] cache: unpacking ${what}`, binds: [[archive.file, ARCHIVE_INSIDE]] });
  if (result.code === 0) return true;
  c.log.line(`[slipway] cache: ${what} could not be unpacked; removed, the build goes on without it`);
  await use.cache.drop(archive).catch(() => undefined);
  return false;
}

/** Packs node_modules and the manager's cache (after a miss) and the framework caches, and keeps them. */
export async function saveCache(restored: RestoredCache, appDir: string, c: StepContext & { maxArchiveBytes: number }): Promise<void> {
  const { cache, scope, keys } = restored;
  const appRel = path.relative(c.ws.disk.root, appDir);
  const pack = async (name: ArchiveName, paths: string[], withNodeModules: boolean) => {
    const received = await cache.receivingPath(scope);
    let bytes = 0;
    const result = await c.step(['/bin/sh', '-c', archiveScript(buildRoot(c), paths, withNodeModules)], `cache-save-${name}`, {
      label: `[slipway] cache: packing ${WHAT[name]}`,
      stdout: async (stream) => void (bytes = await receiveFile(stream, received, c.maxArchiveBytes)),
    });
    if (result.stdoutError instanceof ArchiveTooLargeError) return c.log.line(`[slipway] cache: ${name} not saved: it passed the ${Math.round(c.maxArchiveBytes / 1024 / 1024)} MB an archive may hold (BUILD_CACHE_ARCHIVE_MB)`);
    if (result.stdoutError) throw result.stdoutError;
    if (result.code !== 0) return c.log.line(`[slipway] cache: ${name} not saved: packing it failed (exit ${result.code ?? result.signal})`);
    if (bytes === 0) return; // nothing to archive
    await cache.save(scope, keys, name, received, bytes, c.signal);
    c.log.line(`[slipway] cache: saved ${name} (${(bytes / 1024 / 1024).toFixed(1)} MB)`);
  };
  if (keys.deps && !restored.exact) {
    await pack('deps', [], true);
    await pack('packages', MANAGER_CACHES.map((p) => `home/${p}`), false);
  }
  // Which of these exist is decided by the script, in the sandbox, never through a link.
  await pack('build', FRAMEWORK_CACHES.map((rel) => `${appRel}/${rel}`), false);
}

/**
 * Keeps this build's disk for the scope's next build: in the sandbox the build moves its node_modules
 * folders into keep/; the worker removes everything else, unmounts the disk and keeps its image.
 */
export async function keepDisk(use: CacheUse, c: StepContext): Promise<void> {
  const trees = use.cache.trees;
  if (!trees || !use.keys.deps || c.ws.disk.kind !== 'loop' || !c.sandboxed) return;
  const keep = path.join(c.ws.disk.root, 'keep');
  await mkdir(keep, { mode: 0o700 });
  // The build's own (src/ is), so the step can move its folders in; the disk's root stays the worker's.
  const { uid, gid } = await stat(c.ws.src);
  await chown(keep, uid, gid);
  let paths: string[] = [];
  const result = await c.step(['/bin/sh', SANDBOX.collect, 'keep', SANDBOX.src, SANDBOX.keep], 'cache-keep', {
    label: '[slipway] cache: keeping node_modules on this worker',
    // The whole disk at /build: a rename from src/ to keep/ must not cross two mounts (EXDEV).
    wholeDisk: true,
    stdout: async (stream) => {
      const received = await receiveFacts(stream);
      const facts = received.facts as { paths?: unknown } | null;
      paths = Array.isArray(facts?.paths) ? facts.paths.filter((p): p is string => typeof p === 'string') : [];
      received.rest.resume();
    },
  });
  if (result.code !== 0 || result.stdoutError || paths.length === 0) return;
  for (const dir of [c.ws.src, c.ws.home, c.ws.tmp]) await removeTree(dir);
  const image = await c.ws.disk.detach();
  if (image) await trees.keep(use.scope.own, image, { deps: use.keys.deps, paths, limits: { ...c.ws.disk.limits } });
}

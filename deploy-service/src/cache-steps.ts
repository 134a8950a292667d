// The build cache's two steps in a build: before the install, move in the node_modules kept on this
// worker (cache-trees.ts) or unpack the archives; after a successful build, pack them and keep the
// node_modules. Archives are packed and unpacked by `tar` as the build itself, inside its sandbox:
// they are the build's data and are never read by the worker.
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import type { DeploymentRecord } from '@slipway/shared';
import type { BuildLog } from './build-log';
import { FRAMEWORK_CACHES, MANAGER_CACHES, archiveScript, cacheKeys, type ArchiveName, type BuildCache, type CacheKeys } from './cache';
import type { BuildPlan } from './plan';
import type { Workspace } from './workspace';

/** Where an archive to unpack is shown inside the sandbox. */
const ARCHIVE_INSIDE = '/run/slipway/cache.tgz';

const WHAT: Record<ArchiveName, string> = { deps: 'node_modules', packages: "the package manager's cache", build: "the framework's cache folders" };

type Run = (argv: readonly string[], name: string, extra?: { label?: string; binds?: [string, string][] }) => Promise<void>;

interface StepContext {
  ws: Workspace;
  /** The build's own uid (the worker is root), or null. */
  uid: number | null;
  sandboxed: boolean;
  log: BuildLog;
  run: Run;
}

export interface RestoredCache {
  cache: BuildCache;
  keys: CacheKeys;
  /** The deps archive was this lockfile's own: the install is skipped. */
  exact: boolean;
}

/** The build's root as its commands see it: /build in the sandbox, the work folder without one. */
const buildRoot = (c: StepContext) => (c.sandboxed ? '/build' : c.ws.root);

export async function restoreCache(cache: BuildCache, record: Pick<DeploymentRecord, 'repoUrl' | 'rootDir'>, plan: BuildPlan, appDir: string, c: StepContext): Promise<RestoredCache> {
  const manager = plan.manager!;
  const keys = await cacheKeys(record.repoUrl, record.rootDir, manager.found, manager.version, plan.node.version, appDir);
  const unpack = async (file: string, name: string, what: string) => {
    const inside = c.sandboxed ? ARCHIVE_INSIDE : file;
    await c.run(['tar', '-xzf', inside, '-C', buildRoot(c)], name, { label: `[slipway] cache: unpacking ${what}`, binds: [[file, ARCHIVE_INSIDE]] });
  };
  const moved = cache.trees ? await cache.trees.take(keys, c.ws.src, c.uid) : null;
  if (moved) {
    c.log.line(`[slipway] cache: hit (this lockfile, manager and Node; node_modules kept on this worker): the install is skipped`);
    const framework = await cache.findBuild(keys);
    if (framework) await unpack(framework, 'cache-build', "the framework's cache folders");
    return { cache, keys, exact: true };
  }
  const deps = await cache.findDeps(keys);
  if (!deps) c.log.line(`[slipway] cache: miss${keys.deps ? '' : ' (no lockfile: dependencies are not cached)'}`);
  else await unpack(deps.file, 'cache-deps', deps.exact ? 'node_modules for this lockfile' : "an earlier lockfile's node_modules");
  if (!deps?.exact) {
    // An install will run: the packages it downloaded last time save it the network.
    const packages = await cache.findPackages(keys);
    if (packages) await unpack(packages, 'cache-packages', "the package manager's cache");
  }
  if (deps) c.log.line(deps.exact ? '[slipway] cache: hit (this lockfile, manager and Node): the install is skipped' : '[slipway] cache: partial (an earlier lockfile): installing with a warm cache');
  const framework = await cache.findBuild(keys);
  if (framework) await unpack(framework, 'cache-build', "the framework's cache folders");
  return { cache, keys, exact: deps?.exact ?? false };
}

/** Packs node_modules and the manager's cache (after a miss) and the framework caches, and keeps them. */
export async function saveCache(restored: RestoredCache, appDir: string, c: StepContext & { maxArchiveBytes: number }): Promise<void> {
  const { cache, keys } = restored;
  const appRel = path.relative(c.ws.root, appDir);
  const pack = async (name: ArchiveName, paths: string[], withNodeModules: boolean) => {
    const out = `home/.slipway-cache-${name}.tgz`;
    const script = archiveScript(buildRoot(c), out, paths, withNodeModules);
    await c.run(['/bin/sh', '-c', script], `cache-save-${name}`, { label: `[slipway] cache: packing ${WHAT[name]}` });
    const saved = await cache.save(keys, name, path.join(c.ws.root, out), c.maxArchiveBytes);
    if ('bytes' in saved) c.log.line(`[slipway] cache: saved ${name} (${(saved.bytes / 1024 / 1024).toFixed(1)} MB)`);
    else if (saved.skipped !== 'empty') c.log.line(`[slipway] cache: ${name} not saved: ${saved.skipped}`);
  };
  if (keys.deps && !restored.exact) {
    await pack('deps', [], true);
    await pack('packages', MANAGER_CACHES.map((p) => `home/${p}`), false);
  }
  // Only whether a folder is there is looked at here (without following links); tar reads them as the build.
  const frameworkDirs = [];
  for (const rel of FRAMEWORK_CACHES) if ((await lstat(path.join(appDir, rel)).catch(() => null))?.isDirectory()) frameworkDirs.push(`${appRel}/${rel}`);
  if (frameworkDirs.length > 0) await pack('build', frameworkDirs, false);
  // Last: the archives above read node_modules where the build left it.
  if (cache.trees) await cache.trees.keep(keys, c.ws.src);
}

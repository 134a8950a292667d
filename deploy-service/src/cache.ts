// The build cache: per repository (and rootDir), three archives, each made and unpacked by `tar`
// inside the build's own sandbox, so the worker never reads what a build put in them:
//   deps     — every node_modules, keyed by the lockfile, the manager and the Node version; an
//              exact hit skips the install, an earlier key's archive still warms it;
//   packages — the package manager's own download cache, unpacked only when an install runs;
//   build    — the frameworks' cache folders (.next/cache, .astro, .angular/cache ...), saved
//              after every successful build.
// Kept on the worker's disk (CACHE_DIR, least recently used evicted past BUILD_CACHE_MB) and in S3
// under cache/<repo>/, so any replica can use it.
import { createHash } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { storageKeys, type Storage } from '@slipway/shared';
import { readSmall } from './node-version';
import type { NodeModulesTrees } from './cache-trees';
import type { Manager } from './package-manager';

/** Package managers' own caches, relative to the build's HOME. */
export const MANAGER_CACHES = ['.npm/_cacache', '.local/share/pnpm/store', '.cache/yarn', '.yarn/berry/cache', '.bun/install/cache'];
/** Frameworks' cache folders, relative to the app folder (node_modules/.cache travels with node_modules). */
export const FRAMEWORK_CACHES = ['.next/cache', '.astro', '.angular/cache', '.parcel-cache', '.cache', '.svelte-kit/output/prerendered/.cache', '.nuxt/cache', '.docusaurus/cache'];

export interface CacheKeys {
  /** The repository (and rootDir): one repository never sees another's cache. */
  repo: string;
  /** What node_modules depends on; null without a lockfile (nothing to key it on). */
  deps: string | null;
}

const sha = (...parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);

export async function cacheKeys(repoUrl: string, rootDir: string | undefined, manager: Manager, managerVersion: string, nodeVersion: string, appDir: string): Promise<CacheKeys> {
  const repo = sha('repo', repoUrl, rootDir ?? '');
  if (manager.lockfile === null) return { repo, deps: null };
  const texts: string[] = [];
  // The lockfile, the settings that change how it is installed, and the manifests (a dependency
  // added without a lockfile update must not be served an old node_modules).
  for (const file of [path.basename(manager.lockfile), '.npmrc', '.yarnrc.yml', 'pnpm-workspace.yaml', 'package.json']) {
    texts.push(file, (await readSmall(path.join(manager.root, file), 256 * 1024 * 1024)) ?? '');
  }
  texts.push('app package.json', (await readSmall(path.join(appDir, 'package.json'))) ?? '');
  return { repo, deps: sha('deps', manager.name, managerVersion, nodeVersion, process.platform, process.arch, ...texts) };
}

export type CacheHit = { file: string; exact: boolean } | null;

/** deps: node_modules for one key; packages: the manager's download cache; build: the frameworks' caches. */
export type ArchiveName = 'deps' | 'packages' | 'build';

export class BuildCache {
  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly storage: Storage,
    /** The fast path (unpacked node_modules moved in), or null where it is not safe. */
    readonly trees: NodeModulesTrees | null = null,
  ) {}

  /** The deps archive for `keys`: the exact one, else the repository's latest; null when there is none. */
  async findDeps(keys: CacheKeys): Promise<CacheHit> {
    if (keys.deps) {
      const exact = await this.fetch(keys.repo, `deps-${keys.deps}.tgz`);
      if (exact) return { file: exact, exact: true };
    }
    const latest = await this.latestDeps(keys.repo);
    if (!latest || latest === keys.deps) return null;
    const file = await this.fetch(keys.repo, `deps-${latest}.tgz`);
    return file ? { file, exact: false } : null;
  }

  /** The package manager's own cache (downloaded packages): only needed when an install runs. */
  async findPackages(keys: CacheKeys): Promise<string | null> {
    return this.fetch(keys.repo, 'packages.tgz');
  }

  async findBuild(keys: CacheKeys): Promise<string | null> {
    return this.fetch(keys.repo, 'build.tgz');
  }

  /** Keeps an archive a build wrote (a regular file, never through a link) here and in S3. */
  async save(keys: CacheKeys, name: ArchiveName, source: string, maxArchiveBytes: number): Promise<{ bytes: number } | { skipped: string }> {
    const handle = await open(source, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => null);
    if (!handle) return { skipped: 'empty' }; // nothing to archive: the script wrote none
    const info = await handle.stat();
    if (!info.isFile()) {
      await handle.close();
      return { skipped: 'not a regular file' };
    }
    if (info.size > maxArchiveBytes) {
      await handle.close();
      return { skipped: `${Math.round(info.size / 1024 / 1024)} MB is over the ${Math.round(maxArchiveBytes / 1024 / 1024)} MB an archive may hold` };
    }
    const file = name === 'deps' ? `deps-${keys.deps}.tgz` : `${name}.tgz`;
    const local = path.join(this.dir, keys.repo, file);
    await mkdir(path.dirname(local), { recursive: true, mode: 0o755 });
    const partial = `${local}.${process.pid}.partial`;
    await pipeline(handle.createReadStream(), createWriteStream(partial, { mode: 0o644 }));
    await rename(partial, local);
    await this.storage.putFile(`${storageKeys.cache(keys.repo)}/${file}`, local, info.size, { contentType: 'application/gzip' });
    if (name === 'deps' && keys.deps) await this.storage.putText(`${storageKeys.cache(keys.repo)}/deps-latest`, keys.deps);
    await this.evict();
    return { bytes: info.size };
  }

  /** A local copy of `cache/<repo>/<file>`: from disk (touched, for the LRU), else downloaded from S3. */
  private async fetch(repo: string, file: string): Promise<string | null> {
    const local = path.join(this.dir, repo, file);
    const now = new Date();
    if (await utimes(local, now, now).then(() => true, () => false)) return local;
    const object = await this.storage.get(`${storageKeys.cache(repo)}/${file}`);
    if (!object) return null;
    await mkdir(path.dirname(local), { recursive: true, mode: 0o755 });
    const partial = `${local}.${process.pid}.partial`;
    try {
      await pipeline(object.body, createWriteStream(partial, { mode: 0o644 }));
      await rename(partial, local);
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
    return local;
  }

  private async latestDeps(repo: string): Promise<string | null> {
    const object = await this.storage.get(`${storageKeys.cache(repo)}/deps-latest`);
    if (!object) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of object.body) chunks.push(chunk as Buffer);
    const key = Buffer.concat(chunks).toString('utf8').trim();
    return /^[0-9a-f]{32}$/.test(key) ? key : null;
  }

  /** Deletes the least recently used archives until the folder is under BUILD_CACHE_MB. */
  private async evict(): Promise<void> {
    const files: { file: string; size: number; used: number }[] = [];
    for (const repo of await readdir(this.dir).catch(() => [] as string[])) {
      for (const name of await readdir(path.join(this.dir, repo)).catch(() => [] as string[])) {
        if (!name.endsWith('.tgz')) continue;
        const file = path.join(this.dir, repo, name);
        const s = await stat(file).catch(() => null);
        if (s) files.push({ file, size: s.size, used: s.mtimeMs });
      }
    }
    let total = files.reduce((sum, f) => sum + f.size, 0);
    for (const f of files.sort((a, b) => a.used - b.used)) {
      if (total <= this.maxBytes) break;
      await unlink(f.file).catch(() => undefined);
      total -= f.size;
    }
  }
}

/**
 * The sh script, run as the build from its root (`/build` in the sandbox), that archives what exists
 * of `paths` (relative to that root, never through a link) plus every node_modules under src/ (for
 * deps) into `out`. Nothing is written when there is nothing to archive.
 */
export function archiveScript(root: string, out: string, paths: readonly string[], withNodeModules: boolean): string {
  const q = (p: string) => `'${p.replaceAll("'", "'\\''")}'`;
  return [
    'set -e',
    `cd ${q(root)}`,
    'list="${TMPDIR:-/tmp}/.slipway-cache-list"',
    ': > "$list"',
    withNodeModules ? 'find src -name node_modules -type d -prune -print >> "$list"' : ':',
    `for p in ${paths.map(q).join(' ') || "''"}; do if [ -n "$p" ] && [ -d "$p" ] && [ ! -L "$p" ]; then echo "$p" >> "$list"; fi; done`,
    // gzip -1: most of gzip's saving at a fraction of its time, and the save is on the deploy's path.
    `if [ -s "$list" ]; then tar -I 'gzip -1' -cf ${q(out)} -T "$list"; fi`,
  ].join('\n');
}

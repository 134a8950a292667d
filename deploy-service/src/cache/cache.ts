// The build cache: per trust scope (below), three archives, each made and unpacked by `tar` inside
// the build's own sandbox, so the worker never reads what a build put in them:
//   deps     — every node_modules, keyed by the lockfile, the install command, the manager and the
//              Node version; an exact hit skips the install, an earlier key's archive still warms it;
//   packages — the package manager's own download cache, unpacked only when an install runs;
//   build    — the frameworks' cache folders (.next/cache, .astro, .angular/cache ...), saved
//              after every successful build.
// A scope is who may write a cache others then run: a project's production builds, each branch of a
// project, and a repository's plain POST /deploy builds are three different writers. A build reads
// and writes its own scope's cache only; a preview may also read production's (never the reverse).
// Kept on the worker's disk (CACHE_DIR; the least recently used archives and kept disks are evicted
// together past BUILD_CACHE_MB) and in S3 under cache/<scope>/, so any replica can use it.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { readSmallFile, storageKeys, type DeploymentRecord, type Storage } from '@slipway/shared';
import type { KeptDisks } from './cache-trees';
import type { Manager } from '../detect/package-manager';

/** Package managers' own caches, relative to the build's HOME. */
export const MANAGER_CACHES = ['.npm/_cacache', '.local/share/pnpm/store', '.cache/yarn', '.yarn/berry/cache', '.bun/install/cache'];
/** Frameworks' cache folders, relative to the app folder (node_modules/.cache travels with node_modules). */
export const FRAMEWORK_CACHES = ['.next/cache', '.astro', '.angular/cache', '.parcel-cache', '.cache', '.svelte-kit/output/prerendered/.cache', '.nuxt/cache', '.docusaurus/cache'];

export interface CacheScope {
  /** Where this build's cache is read first and written. */
  own: string;
  /** Read when the own scope has nothing: production's, for a preview of a project. */
  fallback: string | null;
  /** For the log: whose cache the own scope is, and the fallback's. */
  names: { own: string; fallback: string | null };
}

export interface CacheKeys {
  /** What node_modules depends on; null without a lockfile (nothing to key it on). */
  deps: string | null;
}

const sha = (...parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);

/** Whose cache a deployment may use: see the file's comment. */
export function cacheScope(record: Pick<DeploymentRecord, 'repoUrl' | 'rootDir' | 'project' | 'branch' | 'production'>): CacheScope {
  const repo = [record.repoUrl, record.rootDir ?? ''];
  if (!record.project) return { own: sha('plain', ...repo), fallback: null, names: { own: "this repository's", fallback: null } };
  const production = sha('production', record.project, ...repo);
  if (record.production === '1') return { own: production, fallback: null, names: { own: "production's", fallback: null } };
  return { own: sha('branch', record.project, record.branch ?? '', ...repo), fallback: production, names: { own: "this branch's", fallback: "production's" } };
}

export async function cacheKeys(manager: Manager, managerVersion: string, nodeVersion: string, appDir: string, install: readonly string[] | null): Promise<CacheKeys> {
  if (manager.lockfile === null) return { deps: null };
  const texts: string[] = ['install', JSON.stringify(install ?? [])];
  // The lockfile, the settings that change how it is installed, and the manifests (a dependency
  // added without a lockfile update must not be served an old node_modules).
  for (const file of [path.basename(manager.lockfile), '.npmrc', '.yarnrc.yml', 'pnpm-workspace.yaml', 'package.json']) {
    texts.push(file, (await readSmallFile(path.join(manager.root, file), 256 * 1024 * 1024)) ?? '');
  }
  texts.push('app package.json', (await readSmallFile(path.join(appDir, 'package.json'))) ?? '');
  return { deps: sha('deps', manager.name, managerVersion, nodeVersion, process.platform, process.arch, ...texts) };
}

/** A local archive, and whose it is. */
export interface CachedArchive {
  file: string;
  scope: string;
  /** Whose, for the log ("production's"). */
  whose: string;
  /** Its S3 key and local name (to drop it when it cannot be unpacked). */
  name: string;
}

export type DepsHit = (CachedArchive & { exact: boolean }) | null;

/** deps: node_modules for one key; packages: the manager's download cache; build: the frameworks' caches. */
export type ArchiveName = 'deps' | 'packages' | 'build';

export class BuildCache {
  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly storage: Storage,
    /** The fast path (the last build's disk kept with its node_modules), or null where there is none. */
    readonly trees: KeptDisks | null = null,
  ) {}

  /** The deps archive: this key's (own scope, then the fallback's), else the latest of either; null when there is none. */
  async findDeps(scope: CacheScope, keys: CacheKeys, signal?: AbortSignal): Promise<DepsHit> {
    const scopes = this.scopes(scope);
    if (keys.deps) {
      for (const s of scopes) {
        const hit = await this.fetch(s, `deps-${keys.deps}.tgz`, signal);
        if (hit) return { ...hit, exact: true };
      }
    }
    for (const s of scopes) {
      const latest = await this.latestDeps(s.key, signal);
      if (!latest || latest === keys.deps) continue;
      const hit = await this.fetch(s, `deps-${latest}.tgz`, signal);
      if (hit) return { ...hit, exact: false };
    }
    return null;
  }

  /** The package manager's own cache (downloaded packages): only needed when an install runs. */
  findPackages(scope: CacheScope, signal?: AbortSignal): Promise<CachedArchive | null> {
    return this.first(scope, 'packages.tgz', signal);
  }

  findBuild(scope: CacheScope, signal?: AbortSignal): Promise<CachedArchive | null> {
    return this.first(scope, 'build.tgz', signal);
  }

  /** A fresh local name (only this save's, whatever else runs) to receive an archive into. */
  async receivingPath(scope: CacheScope): Promise<string> {
    const dir = path.join(this.dir, scope.own);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    return path.join(dir, `.${randomBytes(6).toString('hex')}.partial`);
  }

  /** Keeps a received archive in the own scope, here and in S3. */
  async save(scope: CacheScope, keys: CacheKeys, name: ArchiveName, received: string, bytes: number, signal?: AbortSignal): Promise<void> {
    const file = name === 'deps' ? `deps-${keys.deps}.tgz` : `${name}.tgz`;
    const local = path.join(this.dir, scope.own, file);
    await rename(received, local);
    await this.storage.putFile(`${storageKeys.cache(scope.own)}/${file}`, local, bytes, { contentType: 'application/gzip', signal });
    if (name === 'deps' && keys.deps) await this.storage.putText(`${storageKeys.cache(scope.own)}/deps-latest`, keys.deps);
    await this.evict();
  }

  /** Removes an archive that could not be unpacked, here and in S3: the next build misses instead of failing again. */
  async drop(archive: CachedArchive): Promise<void> {
    await unlink(archive.file).catch(() => undefined);
    await this.storage.deletePrefix(`${storageKeys.cache(archive.scope)}/${archive.name}`);
  }

  /** Deletes the least recently used archives and kept disks until the cache is under BUILD_CACHE_MB. */
  async evict(): Promise<void> {
    const entries: { remove: () => Promise<unknown>; size: number; used: number }[] = [];
    for (const scope of await readdir(this.dir).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{32}$/.test(scope)) continue;
      for (const name of await readdir(path.join(this.dir, scope)).catch(() => [] as string[])) {
        if (!name.endsWith('.tgz')) continue;
        const file = path.join(this.dir, scope, name);
        const s = await stat(file).catch(() => null);
        if (s) entries.push({ remove: () => unlink(file).catch(() => undefined), size: s.size, used: s.mtimeMs });
      }
    }
    if (this.trees) entries.push(...(await this.trees.entries()));
    let total = entries.reduce((sum, e) => sum + e.size, 0);
    for (const e of entries.sort((a, b) => a.used - b.used)) {
      if (total <= this.maxBytes) break;
      await e.remove();
      total -= e.size;
    }
  }

  private scopes(scope: CacheScope): { key: string; whose: string }[] {
    return [{ key: scope.own, whose: scope.names.own }, ...(scope.fallback ? [{ key: scope.fallback, whose: scope.names.fallback! }] : [])];
  }

  private async first(scope: CacheScope, file: string, signal?: AbortSignal): Promise<CachedArchive | null> {
    for (const s of this.scopes(scope)) {
      const hit = await this.fetch(s, file, signal);
      if (hit) return hit;
    }
    return null;
  }

  /** A local copy of `cache/<scope>/<file>`: from disk (touched, for the LRU), else downloaded from S3. */
  private async fetch(s: { key: string; whose: string }, name: string, signal?: AbortSignal): Promise<CachedArchive | null> {
    const local = path.join(this.dir, s.key, name);
    const found = { file: local, scope: s.key, whose: s.whose, name };
    const now = new Date();
    if (await utimes(local, now, now).then(() => true, () => false)) return found;
    const object = await this.storage.get(`${storageKeys.cache(s.key)}/${name}`, undefined, signal);
    if (!object) return null;
    await mkdir(path.dirname(local), { recursive: true, mode: 0o755 });
    const partial = `${local}.${randomBytes(6).toString('hex')}.partial`;
    try {
      await pipeline(object.body, createWriteStream(partial, { mode: 0o644 }), { signal });
      await rename(partial, local);
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
    return found;
  }

  private async latestDeps(scope: string, signal?: AbortSignal): Promise<string | null> {
    const object = await this.storage.get(`${storageKeys.cache(scope)}/deps-latest`, undefined, signal);
    if (!object) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of object.body) chunks.push(chunk as Buffer);
    const key = Buffer.concat(chunks).toString('utf8').trim();
    return /^[0-9a-f]{32}$/.test(key) ? key : null;
  }
}

/**
 * The sh script, run as the build from its root (`/build` in the sandbox), that writes to stdout a
 * gzipped tar of what exists of `paths` (relative to that root, never through a link) plus every
 * node_modules under src/ (for deps); nothing when there is nothing to archive.
 */
export function archiveScript(root: string, paths: readonly string[], withNodeModules: boolean): string {
  const q = (p: string) => `'${p.replaceAll("'", "'\\''")}'`;
  return [
    'set -e',
    `cd ${q(root)}`,
    // mktemp: a fresh name the build cannot have made ready (as a FIFO, say) beforehand.
    'list=$(mktemp)',
    withNodeModules ? 'find src -name node_modules -type d -prune -print >> "$list"' : ':',
    `for p in ${paths.map(q).join(' ') || "''"}; do if [ -n "$p" ] && [ -d "$p" ] && [ ! -L "$p" ]; then echo "$p" >> "$list"; fi; done`,
    // gzip -1: most of gzip's saving at a fraction of its time, and the save is on the deploy's path.
    `if [ -s "$list" ]; then tar -I 'gzip -1' -cf - -T "$list"; fi`,
    'rm -f "$list"',
  ].join('\n');
}

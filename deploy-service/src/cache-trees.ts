// The fast path of the build cache: the last successful build's node_modules folders, kept
// unpacked on the worker's disk and moved (renamed, not copied) into the next build of the same
// repository and lockfile, then handed to that build's uid. A warm redeploy then costs no unpacking.
//
// The worker only renames these folders and changes their owner (chown -R -h: links are never
// followed); it reads nothing in them. A build cannot hard-link a file it does not own into one
// (fs.protected_hardlinks, checked at start), so the owner change touches only the build's own files.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { CacheKeys } from './cache';

const run = promisify(execFile);

/** Unpacked trees kept per worker (the newest lockfile of each repository); the oldest go first. */
const MAX_TREES = 16;
/** How deep node_modules folders are looked for under the source (a monorepo's packages). */
const MAX_DEPTH = 4;
const MAX_FOLDERS_WALKED = 5000;

export class NodeModulesTrees {
  private constructor(private readonly dir: string) {}

  /** Null where the fast path would not be safe (hard links to others' files allowed) or possible. */
  static async open(cacheDir: string): Promise<NodeModulesTrees | null> {
    const protectedLinks = await readFile('/proc/sys/fs/protected_hardlinks', 'utf8').catch(() => '0');
    if (protectedLinks.trim() !== '1') return null;
    const dir = path.join(cacheDir, 'trees');
    // The cache folder must stay passable (builds read their archives through it); the trees
    // folder only the worker enters: builds never see a tree until it is moved into their own folder.
    await mkdir(cacheDir, { recursive: true, mode: 0o755 });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new NodeModulesTrees(dir);
  }

  /**
   * Moves the kept tree for `keys` into `srcRoot` and gives it to `uid`; the relative paths moved,
   * or null when there is none (or another build of the repository holds it right now).
   */
  async take(keys: CacheKeys, srcRoot: string, uid: number | null): Promise<string[] | null> {
    if (!keys.deps) return null;
    const kept = this.treePath(keys);
    const claimed = `${kept}.taken-${randomBytes(6).toString('hex')}`;
    // The rename is the claim: of two builds at once, one gets it and the other unpacks the archive.
    if (!(await rename(kept, claimed).then(() => true, () => false))) return null;
    try {
      const paths = JSON.parse(await readFile(path.join(claimed, 'paths.json'), 'utf8')) as string[];
      const realSrc = await realpath(srcRoot);
      // Every place checked before anything moves: a half-moved tree would leave the build stuck.
      for (const rel of paths) {
        const dest = path.join(srcRoot, rel);
        const parent = await realpath(path.dirname(dest)).catch(() => null);
        if (!parent || (parent !== realSrc && !parent.startsWith(realSrc + path.sep))) return null; // the source no longer has that folder
        if (await lstat(dest).then(() => true, () => false)) return null;
      }
      for (const [i, rel] of paths.entries()) await rename(path.join(claimed, String(i)), path.join(srcRoot, rel));
      if (uid !== null) await run('chown', ['-R', '-h', `${uid}:${uid}`, ...paths.map((rel) => path.join(srcRoot, rel))]);
      return paths;
    } finally {
      await rm(claimed, { recursive: true, force: true });
    }
  }

  /** Moves the build's node_modules folders out of `srcRoot` and keeps them for the next build. */
  async keep(keys: CacheKeys, srcRoot: string): Promise<number> {
    if (!keys.deps) return 0;
    const found = await findNodeModules(srcRoot);
    if (found.length === 0) return 0;
    const staging = `${this.treePath(keys)}.new-${randomBytes(6).toString('hex')}`;
    await mkdir(staging, { mode: 0o700 });
    try {
      for (const [i, rel] of found.entries()) await rename(path.join(srcRoot, rel), path.join(staging, String(i)));
      await writeFile(path.join(staging, 'paths.json'), JSON.stringify(found));
      // Only the newest lockfile of a repository is kept unpacked.
      for (const name of await readdir(this.dir)) {
        if (name.startsWith(`${keys.repo}-`) && path.join(this.dir, name) !== staging) await rm(path.join(this.dir, name), { recursive: true, force: true });
      }
      await rename(staging, this.treePath(keys));
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      throw err;
    }
    await this.evict();
    return found.length;
  }

  private treePath(keys: CacheKeys): string {
    return path.join(this.dir, `${keys.repo}-${keys.deps}`);
  }

  private async evict(): Promise<void> {
    const trees: { name: string; at: number }[] = [];
    for (const name of await readdir(this.dir)) {
      if (!/^[0-9a-f]{32}-[0-9a-f]{32}$/.test(name)) continue;
      const s = await stat(path.join(this.dir, name)).catch(() => null);
      if (s) trees.push({ name, at: s.mtimeMs });
    }
    for (const old of trees.sort((a, b) => b.at - a.at).slice(MAX_TREES)) await rm(path.join(this.dir, old.name), { recursive: true, force: true });
  }
}

/** node_modules folders under `root` (real folders, never through links), not looking inside them. */
export async function findNodeModules(root: string): Promise<string[]> {
  const found: string[] = [];
  let walked = 0;
  const queue: [string, number][] = [['', 0]];
  while (queue.length > 0 && walked < MAX_FOLDERS_WALKED) {
    const [rel, depth] = queue.shift()!;
    const entries = await readdir(path.join(root, rel), { withFileTypes: true }).catch(() => []);
    walked += 1;
    for (const entry of entries) {
      if (!entry.isDirectory()) continue; // a link is not a directory here: never followed
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.name === 'node_modules') found.push(child);
      else if (depth < MAX_DEPTH && !entry.name.startsWith('.')) queue.push([child, depth + 1]);
    }
  }
  return found;
}

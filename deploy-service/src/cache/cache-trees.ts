// The fast path of the build cache: the last successful build's disk (disk.ts, a loop-mounted image)
// is kept per cache scope with nothing on it but its node_modules folders, and the next build of the
// scope runs on that disk: when its lockfile key is the same, the folders are moved (renamed, not
// copied or unpacked) back into the fresh source and handed to the new build's uid; otherwise they
// are removed and the archive path is taken. A warm redeploy then costs no unpacking.
//
// In the build's sandbox the build itself moves its node_modules folders aside (collect.sh keep);
// the worker only renames folders it checked, changes owners without following links (chown -R -h),
// and removes. A kept disk counts in BUILD_CACHE_MB by the blocks its image file holds.
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { safeRelativePath } from '@slipway/shared';
import type { DiskLimits } from '../sandbox/disk';

/** Kept disks per worker, at most: the oldest go first (and every one counts in BUILD_CACHE_MB). */
const MAX_KEPT = 16;
/** Longer than any build may run (BUILD_TIMEOUT_SECONDS is at most a day per command, in practice minutes). */
const LEFTOVER_AGE_MS = 2 * 24 * 3600_000;

const MetaSchema = z.object({
  deps: z.string().regex(/^[0-9a-f]{32}$/),
  paths: z.array(z.string().max(4096)).max(5000),
  limits: z.object({ bytes: z.number(), inodes: z.number() }),
});
export type KeptMeta = z.infer<typeof MetaSchema>;

/** A kept disk claimed for one build: its image, and what is on it. */
export interface ClaimedDisk {
  image: string;
  meta: KeptMeta;
  /** Removes what is left of the claim (the image, once the build is done with it). */
  release(): Promise<void>;
}

export class KeptDisks {
  private constructor(
    /** CACHE_DIR/trees: only the worker enters it. */
    private readonly dir: string,
  ) {}

  static async open(cacheDir: string): Promise<KeptDisks> {
    const kept = new KeptDisks(path.join(cacheDir, 'trees'));
    const dir = await kept.imageDir();
    // What a worker that died mid-build left: claims, half-kept disks, images of disks in use. Judged
    // by age, not by pid: replicas in other containers may share this folder, and their builds are live.
    for (const name of await readdir(dir)) {
      if (/^[0-9a-f]{32}$/.test(name)) continue;
      const s = await stat(path.join(dir, name)).catch(() => null);
      if (s && Date.now() - s.mtimeMs > LEFTOVER_AGE_MS) await rm(path.join(dir, name), { recursive: true, force: true });
    }
    return kept;
  }

  /**
   * Where new disk images are made, beside the kept ones (keeping one is then a rename); made again
   * if someone removed the cache folder. The cache folder must stay passable (builds read their
   * archives through it); this one only the worker enters.
   */
  async imageDir(): Promise<string> {
    await mkdir(path.dirname(this.dir), { recursive: true, mode: 0o755 });
    await chmod(path.dirname(this.dir), 0o755);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    return this.dir;
  }

  /**
   * Takes the scope's kept disk, if there is one made with these limits. The rename is the claim:
   * of two builds of the scope at once, one gets it and the other starts on a fresh disk.
   */
  async claim(scope: string, limits: DiskLimits): Promise<ClaimedDisk | null> {
    const claimed = path.join(this.dir, `.claimed-${randomBytes(6).toString('hex')}`);
    if (!(await rename(path.join(this.dir, scope), claimed).then(() => true, () => false))) return null;
    const release = () => rm(claimed, { recursive: true, force: true });
    const meta = MetaSchema.safeParse(JSON.parse(await readFile(path.join(claimed, 'meta.json'), 'utf8').catch(() => 'null')));
    if (!meta.success || meta.data.limits.bytes !== limits.bytes || meta.data.limits.inodes !== limits.inodes) {
      await release();
      return null;
    }
    return { image: path.join(claimed, 'disk.img'), meta: meta.data, release };
  }

  /** Keeps a build's unmounted disk image (its node_modules moved to keep/) for the scope's next build. */
  async keep(scope: string, image: string, meta: KeptMeta): Promise<void> {
    const staging = path.join(this.dir, `.new-${randomBytes(6).toString('hex')}`);
    await mkdir(staging, { mode: 0o700 });
    try {
      await rename(image, path.join(staging, 'disk.img'));
      await writeFile(path.join(staging, 'meta.json'), JSON.stringify(meta));
      await rm(path.join(this.dir, scope), { recursive: true, force: true });
      await rename(staging, path.join(this.dir, scope));
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      throw err;
    }
    const now = new Date();
    await utimes(path.join(this.dir, scope), now, now).catch(() => undefined);
    const kept = (await this.entries()).sort((a, b) => b.used - a.used);
    for (const old of kept.slice(MAX_KEPT)) await old.remove();
  }

  /** Every kept disk with the space it holds and when it was kept, for the cache's eviction. */
  async entries(): Promise<{ remove: () => Promise<unknown>; size: number; used: number }[]> {
    const found = [];
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{32}$/.test(name)) continue;
      const folder = path.join(this.dir, name);
      const [image, info] = await Promise.all([stat(path.join(folder, 'disk.img')).catch(() => null), stat(folder).catch(() => null)]);
      if (!image || !info) continue;
      found.push({ remove: () => rm(folder, { recursive: true, force: true }), size: image.blocks * 512, used: info.mtimeMs });
    }
    return found;
  }
}

/**
 * Moves the kept node_modules folders (in `keep`, numbered as in `meta.paths`) back into the fresh
 * source at `src`, where the source has their parent folder and nothing at their place. Everything
 * is checked before anything moves; a path that does not fit leaves them all where they were.
 */
export async function restoreKept(keep: string, src: string, paths: readonly string[]): Promise<boolean> {
  for (const [i, rel] of paths.entries()) {
    let safe: string;
    try {
      safe = safeRelativePath(rel);
    } catch {
      return false;
    }
    if (safe !== rel || path.posix.basename(rel) !== 'node_modules') return false;
    if (!(await lstat(path.join(keep, String(i))).catch(() => null))?.isDirectory()) return false;
    // The source was written by the worker (no links): its folders are what they say they are.
    const parent = path.dirname(path.join(src, rel));
    if (parent !== src && !(await lstat(parent).catch(() => null))?.isDirectory()) return false;
    if (await lstat(path.join(src, rel)).then(() => true, () => false)) return false;
  }
  for (const [i, rel] of paths.entries()) await rename(path.join(keep, String(i)), path.join(src, rel));
  return true;
}

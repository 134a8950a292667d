// The build's folder: a fresh work folder per deployment, the source downloaded into it from S3
// (paged listing, bounded concurrency, streamed bodies), and the output folder found after the build.
import { createWriteStream } from 'node:fs';
import { execFile } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, realpath, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BuildFailedError, forEachBounded, pathInside, type Storage } from '@slipway/shared';

export interface Workspace {
  root: string;
  /** The repository checkout. */
  src: string;
  /** HOME for the build. */
  home: string;
  remove(): Promise<void>;
}

export const OUTPUT_DIR_CANDIDATES = ['dist', 'build', 'out', 'public'] as const;

export async function createWorkspace(workDir: string | undefined, id: string): Promise<Workspace> {
  const root = await mkdtemp(path.join(workDir ?? tmpdir(), `slipway-build-${id}-`));
  // The root stays the worker's (passable, not writable), so a build cannot swap src/ for a link.
  await chmod(root, 0o711);
  const src = path.join(root, 'src');
  const home = path.join(root, 'home');
  await mkdir(src);
  await mkdir(path.join(home, 'tmp'), { recursive: true });
  return { root, src, home, remove: () => rm(root, { recursive: true, force: true }) };
}

/** Hands the source and home folders to the build's own uid; the root folder stays the worker's. */
export async function handOver(ws: Workspace, uid: number | null): Promise<void> {
  if (uid === null) return;
  await promisify(execFile)('chown', ['-R', `${uid}:${uid}`, ws.src, ws.home]);
}

/** Downloads every object under `prefix/` into `dir`; a key that would land outside `dir` is refused. */
export async function downloadPrefix(storage: Storage, prefix: string, dir: string, concurrency: number): Promise<{ files: number; bytes: number }> {
  const result = { files: 0, bytes: 0 };
  await forEachBounded(storage.list(`${prefix}/`), concurrency, async ({ key }) => {
    const dest = pathInside(dir, key.slice(prefix.length + 1));
    const object = await storage.get(key);
    if (!object) return; // deleted since the listing; nothing to write
    await mkdir(path.dirname(dest), { recursive: true });
    // Execute bits survive the trip (a repository's ./build.sh must still run); nothing more than 0o755.
    await pipeline(object.body, createWriteStream(dest, { flags: 'wx', mode: object.mode !== undefined && object.mode & 0o111 ? 0o755 : 0o644 }));
    result.files += 1;
    result.bytes += object.contentLength ?? 0;
  });
  return result;
}

/**
 * A folder inside `root`, or null. Resolved through any links on the way (a build may have made
 * `a` a link to `/` and asked for `a/etc`): the real path must still be inside the real `root`.
 */
export async function existingDir(root: string, rel: string): Promise<string | null> {
  const abs = pathInside(root, rel);
  const stat = await lstat(abs).catch(() => null);
  if (!stat?.isDirectory()) return null;
  const [real, realRoot] = await Promise.all([realpath(abs), realpath(root)]);
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return null;
  return real;
}

export async function existingFile(root: string, rel: string): Promise<boolean> {
  const stat = await lstat(pathInside(root, rel)).catch(() => null);
  return stat?.isFile() ?? false;
}

/**
 * The requested output folder, else the first of `preferred` (a framework's own) and then dist,
 * build, out, public that the build wrote.
 */
export async function findOutputDir(appDir: string, requested: string | undefined, preferred: readonly string[] = []): Promise<string | null> {
  if (requested !== undefined) {
    const dir = await existingDir(appDir, requested);
    if (!dir) throw new BuildFailedError(`the output folder "${requested}" (outputDir) does not exist after the build`);
    return dir;
  }
  for (const name of [...preferred, ...OUTPUT_DIR_CANDIDATES]) {
    // A preset's folder can come from the repository's own config (angular.json): never outside the app.
    const dir = await existingDir(appDir, name).catch(() => null);
    if (dir) return dir;
  }
  return null;
}

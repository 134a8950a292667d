// The build's folders: a fresh work folder per deployment, only the worker's, holding the build's
// disk (disk.ts: src/, home/ and tmp/, capped), what the sandbox is shown read-only (the identity
// files, the egress socket) and where what comes out of the build is received (output/). The source
// is downloaded into src/ from S3 (paged listing, bounded concurrency, streamed bodies).
import { createWriteStream } from 'node:fs';
import { execFile } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, realpath, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { BuildFailedError, RepoTooLargeError, forEachBounded, formatBytes, pathInside, type Storage, type StoredObject } from '@slipway/shared';
import { receiveTree } from '../sandbox/handoff';
import { BuildDisk, type DiskKind, type DiskLimits } from '../sandbox/disk';

export interface Workspace {
  /** The work folder: the worker's own (0711), never the build's to write. */
  root: string;
  disk: BuildDisk;
  /** The repository checkout: /build/src in the sandbox. */
  src: string;
  /** HOME for the build: /build/home. */
  home: string;
  /** The build's /tmp. */
  tmp: string;
  /** Where the output is received from the sandbox (the worker's only). */
  output: string;
  remove(): Promise<void>;
}

export const OUTPUT_DIR_CANDIDATES = ['dist', 'build', 'out', 'public'] as const;

/** The prefix of every work folder, with the worker's pid: a later worker removes those whose worker is gone. */
export const workFolderPrefix = (id: string) => `slipway-build-${id}-${process.pid}-`;

export async function createWorkspace(workDir: string | undefined, id: string, disk: { kind: DiskKind; limits: DiskLimits; imageDir?: string; reuse?: string }): Promise<Workspace> {
  const root = await mkdtemp(path.join(workDir ?? tmpdir(), workFolderPrefix(id)));
  // The root stays the worker's (passable, not writable), so a build cannot swap src/ for a link.
  await chmod(root, 0o711);
  let made: BuildDisk;
  try {
    made = await BuildDisk.create(disk.kind, root, disk.limits, disk.imageDir ?? root, disk.reuse);
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  const ws: Workspace = {
    root,
    disk: made,
    src: path.join(made.root, 'src'),
    home: path.join(made.root, 'home'),
    tmp: path.join(made.root, 'tmp'),
    output: path.join(root, 'output'),
    remove: async () => {
      await made.remove();
      await rm(root, { recursive: true, force: true });
    },
  };
  try {
    for (const dir of [ws.src, ws.home, ws.tmp]) await mkdir(dir, { recursive: true });
  } catch (err) {
    await ws.remove();
    throw err;
  }
  return ws;
}

const HAND_OVER_TIMEOUT_MS = 5 * 60_000;

/** Hands the build's folders to its own uid; the work folder and the disk's root stay the worker's. */
export async function handOver(ws: Workspace, uid: number | null): Promise<void> {
  if (uid === null) return;
  // -h: a link is changed itself, never what it points at (kept node_modules may hold links).
  // Bounded like every child process: a kept tree of a million files takes seconds, not minutes.
  await promisify(execFile)('chown', ['-R', '-h', `${uid}:${uid}`, ws.src, ws.home, ws.tmp], { timeout: HAND_OVER_TIMEOUT_MS });
}

/** Downloads every object under `prefix/` into `dir`; a key that would land outside `dir` is refused. */
export async function downloadPrefix(storage: Storage, prefix: string, dir: string, concurrency: number, signal?: AbortSignal): Promise<{ files: number; bytes: number }> {
  const result = { files: 0, bytes: 0 };
  await forEachBounded(storage.list(`${prefix}/`), concurrency, async ({ key }) => {
    signal?.throwIfAborted();
    const dest = pathInside(dir, key.slice(prefix.length + 1));
    const object = await storage.get(key, undefined, signal);
    if (!object) return; // deleted since the listing; nothing to write
    await mkdir(path.dirname(dest), { recursive: true });
    // Execute bits survive the trip (a repository's ./build.sh must still run); nothing more than 0o755.
    await pipeline(object.body, createWriteStream(dest, { flags: 'wx', mode: object.mode !== undefined && object.mode & 0o111 ? 0o755 : 0o644 }), { signal });
    result.files += 1;
    result.bytes += object.contentLength ?? 0;
  });
  return result;
}

/**
 * Downloads a source archive (`sourceFormat` tar.gz) with one GET and unpacks it into `dir` as it
 * arrives, with the checks of what leaves a sandbox (handoff.ts: regular files and folders only, names
 * checked, never a file written twice) and the repository caps; the unpacked stream is capped too
 * (the caps plus tar's framing), so a crafted archive cannot inflate without end.
 */
export async function downloadArchive(
  opened: Promise<StoredObject | null>,
  key: string,
  dir: string,
  limits: { maxFiles: number; maxBytes: number },
  signal?: AbortSignal,
): Promise<{ files: number; bytes: number }> {
  const object = await opened;
  if (!object) throw new Error(`the deployment's source archive ${key} is not in S3`);
  const cap = limits.maxBytes + TAR_OVERHEAD_PER_MEMBER * 2 * (limits.maxFiles + 1);
  let unpacked = 0;
  const gunzip = createGunzip();
  const inflated = object.body.pipe(gunzip).pipe(
    new Transform({
      transform(chunk: Buffer, _encoding, done) {
        unpacked += chunk.length;
        done(unpacked > cap ? new RepoTooLargeError(`the source archive unpacks to more than ${formatBytes(cap)}`) : null, chunk);
      },
    }),
  );
  // pipe() forwards no errors: each stage's failure (a truncated or corrupt gzip too) ends the tree's input.
  object.body.on('error', (err) => inflated.destroy(err));
  gunzip.on('error', (err) => inflated.destroy(new Error(`the source archive is damaged or cut short (${err.message})`)));
  // receiveTree reads the failure from its iteration; one that comes after it stopped (a cancel cut the
  // body, and gunzip then found its end missing) has no one left to tell.
  inflated.on('error', () => undefined);
  const stop = () => object.body.destroy(signal?.reason as Error);
  signal?.addEventListener('abort', stop, { once: true });
  try {
    const tree = await receiveTree(inflated, dir, { ...limits, what: 'the source', limitNames: { files: 'MAX_REPO_FILES', bytes: 'MAX_REPO_MB' } });
    signal?.throwIfAborted();
    return { files: tree.files, bytes: tree.bytes };
  } catch (err) {
    // The upload-service held the repository to the same caps: past them, the build cannot run, and a retry would not help.
    if (err instanceof RepoTooLargeError) throw new BuildFailedError(err.message);
    throw err;
  } finally {
    signal?.removeEventListener('abort', stop);
  }
}

/** What tar adds per member at most (a header, a long name's extra header, padding). */
const TAR_OVERHEAD_PER_MEMBER = 1536;

/**
 * A folder inside `root`, or null, for the source as the worker wrote it (before any build ran):
 * resolved through links on the way, the real path must still be inside the real `root`.
 */
export async function existingDir(root: string, rel: string): Promise<string | null> {
  const abs = pathInside(root, rel);
  const stat = await lstat(abs).catch(() => null);
  if (!stat?.isDirectory()) return null;
  const [real, realRoot] = await Promise.all([realpath(abs), realpath(root)]);
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return null;
  return real;
}

/** Whether `root/rel` is a regular file (not a link), for folders the worker wrote itself. */
export async function existingFile(root: string, rel: string): Promise<boolean> {
  const stat = await lstat(pathInside(root, rel)).catch(() => null);
  return stat?.isFile() ?? false;
}

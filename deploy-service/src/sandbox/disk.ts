// A build's disk: where its source, home and /tmp live, capped at BUILD_DISK_MB and BUILD_DISK_INODES.
//   loop  — a sparse file holding an ext4 filesystem of exactly that size and inode count, mounted
//           for the build (a root worker with loop devices): the kernel refuses the write past the
//           cap (ENOSPC), nothing outside it is touched, and removing it is one unmount and one unlink
//           however many files the build made. Costs about 25 ms.
//   watch — a plain folder, measured while commands run (every 2 s at least) and after each: a build
//           past the cap is stopped, so it can overshoot by what it writes between two looks.
// The worker never reads what is inside: it makes the folders, measures, and removes.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, readdir, rm, rmdir, statfs, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { leftoverFolders } from '@slipway/shared';

const run = promisify(execFile);

export type DiskKind = 'loop' | 'watch';

export interface DiskLimits {
  bytes: number;
  inodes: number;
}

/** Which cap a build's disk is past, if any. */
export type DiskHit = 'disk' | 'inodes' | null;

/** What mkfs may take and mount may take: bounded like every other child process. */
const TOOL_TIMEOUT_MS = 30_000;
/** Space below which a loop disk counts as full (ext4 keeps a little for its own metadata). */
const FULL_BYTES = 1024 * 1024;
const FULL_INODES = 16;

/**
 * 'loop' where this worker can make and mount a filesystem image (root, loop devices, mkfs.ext4);
 * else 'watch', with the reason.
 */
export async function detectDisk(workDir: string): Promise<{ kind: DiskKind; reason?: string }> {
  if (process.getuid?.() !== 0) return { kind: 'watch', reason: 'the worker is not root' };
  const probe = path.join(workDir, `slipway-disk-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(probe, { recursive: true });
    const image = path.join(probe, 'disk.img');
    await makeImage(image, { bytes: 16 * 1024 * 1024, inodes: 1024 });
    await mount(image, path.join(probe, 'mnt'));
    await unmount(path.join(probe, 'mnt'));
    return { kind: 'loop' };
  } catch (err) {
    const detail = String((err as { stderr?: string }).stderr || (err as Error).message).trim().split('\n')[0];
    return { kind: 'watch', reason: `a loop-mounted filesystem cannot be made here (${detail})` };
  } finally {
    await unmount(path.join(probe, 'mnt')).catch(() => undefined);
    await rm(probe, { recursive: true, force: true });
  }
}

export class BuildDisk {
  private constructor(
    readonly kind: DiskKind,
    /** The folder that holds src/, home/ and tmp/ (the mount point for a loop disk). */
    readonly root: string,
    readonly limits: DiskLimits,
    /** The image file of a loop disk. */
    private readonly image: string | null,
  ) {}

  /**
   * A disk mounted (or made) at `dir`/disk; `dir` is a folder only the worker writes. A loop disk's
   * image is made in `imageDir` (beside the kept disks, so keeping one is a rename), or, with `reuse`,
   * is an image kept from an earlier build (see cache-trees.ts).
   */
  static async create(kind: DiskKind, dir: string, limits: DiskLimits, imageDir: string, reuse?: string): Promise<BuildDisk> {
    const root = path.join(dir, 'disk');
    if (kind === 'watch') {
      await mkdir(root, { mode: 0o711 });
      return new BuildDisk(kind, root, limits, null);
    }
    const image = reuse ?? path.join(imageDir, `${process.pid}-${randomBytes(6).toString('hex')}.img`);
    try {
      if (!reuse) await makeImage(image, limits);
      await mount(image, root);
      // The filesystem's root stays the worker's (passable, not writable), as the work folder's does.
      await chmod(root, 0o711);
    } catch (err) {
      await unmount(root).catch(() => undefined);
      await unlink(image).catch(() => undefined);
      throw err;
    }
    return new BuildDisk(kind, root, limits, image);
  }

  /** Which cap the disk is at (loop: the filesystem is full; watch: measured past the limit). */
  async exceeded(): Promise<DiskHit> {
    if (this.kind === 'loop') {
      const s = await statfs(this.root);
      if (s.bavail * s.bsize < FULL_BYTES) return 'disk';
      if (s.ffree < FULL_INODES) return 'inodes';
      return null;
    }
    const used = await measure(this.root);
    if (used.bytes > this.limits.bytes) return 'disk';
    if (used.inodes > this.limits.inodes) return 'inodes';
    return null;
  }

  /** Bytes the disk holds now. */
  async usedBytes(): Promise<number> {
    if (this.kind === 'loop') {
      const s = await statfs(this.root);
      return (s.blocks - s.bfree) * s.bsize;
    }
    return (await measure(this.root)).bytes;
  }

  /** Unmounts a loop disk and hands over its image file (to be kept); null for a watched folder. */
  async detach(): Promise<string | null> {
    if (!this.image) return null;
    await unmount(this.root);
    return this.image;
  }

  /**
   * Removes everything: the mount and its image, or the folder. A loop disk is unmounted lazily:
   * flushing what a build wrote (gigabytes, perhaps) into an image about to be deleted is not worth
   * waiting for; the loop device lets go of the image once the kernel is done with it.
   */
  async remove(): Promise<void> {
    if (this.image) {
      await run('umount', ['-l', this.root], { timeout: TOOL_TIMEOUT_MS }).catch((err: { stderr?: string }) => {
        // Not mounted (detached to be kept, or never mounted) is fine; anything else keeps the folder.
        if (!/not mounted|no mount point/i.test(err.stderr ?? '')) throw err;
      });
      await unlink(this.image).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      await rmdir(this.root).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      return;
    }
    await removeTree(this.root);
  }
}

/** A sparse file holding an empty ext4 filesystem of `limits.bytes` with room for `limits.inodes` files. */
async function makeImage(image: string, limits: DiskLimits): Promise<void> {
  // A sparse file: it takes on the host only what the build writes.
  await writeFile(image, '', { mode: 0o600, flag: 'wx' });
  await truncate(image, limits.bytes);
  // No journal (a crashed build's disk is thrown away), no reserved blocks, no inode tables written up front.
  await run('mkfs.ext4', ['-q', '-F', '-b', '4096', '-m', '0', '-N', String(limits.inodes), '-O', '^has_journal', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', image], { timeout: TOOL_TIMEOUT_MS });
}

async function mount(image: string, at: string): Promise<void> {
  await mkdir(at, { recursive: true, mode: 0o711 });
  // discard: space freed inside goes back to the host; noinit_itable: no background zeroing of the inode tables.
  await run('mount', ['-o', 'loop,nosuid,nodev,noatime,discard,noinit_itable', image, at], { timeout: TOOL_TIMEOUT_MS });
}

/** A full unmount: what the build wrote reaches the image (a kept disk is mounted again later). */
async function unmount(at: string): Promise<void> {
  await run('umount', [at], { timeout: 5 * 60_000 });
}

/**
 * Bytes allocated and entries under `dir`, without following links (du works on the tree itself,
 * never through a link; it stays on one filesystem).
 */
async function measure(dir: string): Promise<{ bytes: number; inodes: number }> {
  const [bytes, inodes] = await Promise.all([duTotal(['-B1', dir]), duTotal(['--inodes', dir])]);
  return { bytes, inodes };
}

async function duTotal(args: string[]): Promise<number> {
  const out = await run('du', ['-s', '-x', ...args], { timeout: TOOL_TIMEOUT_MS, maxBuffer: 1 << 20 }).then(
    (r) => r.stdout,
    // du reports what it could not read (a folder a build made unreadable) and still prints its total.
    (err: { stdout?: string }) => err.stdout ?? '',
  );
  const total = Number.parseInt(out, 10);
  if (!Number.isFinite(total)) throw new Error(`du could not measure ${args.at(-1)}`);
  return total;
}

/**
 * The build folders of workers that are gone (a work folder's name holds its worker's pid, see
 * workspace.ts; older ones, without it, once a day old), with their mounted disks and those disks'
 * images: each worker removes them at start. Returns how many folders it removed.
 */
export async function collectLeftovers(workDir: string): Promise<number> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8').catch(() => ''))
    .split('\n')
    .map((line) => line.split(' ').map((field) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)))))
    .filter((fields) => fields.length > 1);
  let removed = 0;
  for (const dir of await leftoverFolders(workDir, 'slipway-build-')) {
    for (const [source, at] of mounts) {
      if (!at?.startsWith(`${dir}/`)) continue;
      const image = /^\/dev\/loop\d+$/.test(source ?? '') ? (await readFile(`/sys/block/${path.basename(source!)}/loop/backing_file`, 'utf8').catch(() => '')).trim() : '';
      await run('umount', ['-l', at], { timeout: TOOL_TIMEOUT_MS }).catch(() => undefined);
      if (image.endsWith('.img')) await unlink(image).catch(() => undefined);
    }
    await removeTree(dir).catch(() => undefined);
    removed += 1;
  }
  return removed;
}

/**
 * Removes a tree a build wrote: GNU rm never follows a link and stays on one filesystem, and as root
 * it removes what the build made unwritable. Node's rm is path-based and would walk into a folder
 * swapped for a link while it runs.
 */
export async function removeTree(dir: string): Promise<void> {
  await run('rm', ['-rf', '--one-file-system', '--', dir], { timeout: 10 * 60_000 });
}

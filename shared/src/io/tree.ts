// Folder trees: walk one without following links (the output, deploy-service/src/deployment/publish.ts),
// content types, sizes.
import { opendir, lstat } from 'node:fs/promises';
import path from 'node:path';
import mime from 'mime-types';
import { RepoTooLargeError } from '../errors';

export interface WalkedFile {
  /** POSIX path relative to the root. */
  rel: string;
  abs: string;
  size: number;
  mode: number;
}

export interface WalkLimits {
  maxFiles?: number;
  maxBytes?: number;
  /** Names of folders never entered, at any depth (e.g. `.git`). */
  skipDirs?: ReadonlySet<string>;
  /** What the limits are about, for the error message ("repository", "the output"). */
  what?: string;
  /** The settings behind the limits, named in the error message. */
  limitNames?: { files: string; bytes: string };
}

/**
 * Regular files under `root`, depth first. Symbolic links and special files (sockets, FIFOs,
 * devices) are skipped, never followed, so a tree cannot reach outside itself. Throws
 * RepoTooLargeError as soon as a limit is passed, before reading the rest.
 */
export async function* walkFiles(root: string, limits: WalkLimits = {}): AsyncGenerator<WalkedFile> {
  const { maxFiles = Infinity, maxBytes = Infinity, skipDirs = new Set<string>(), what = 'tree', limitNames } = limits;
  const named = (which: 'files' | 'bytes') => (limitNames ? ` (${limitNames[which]})` : '');
  let files = 0;
  let bytes = 0;
  const stack: string[] = [''];
  while (stack.length > 0) {
    const relDir = stack.pop()!;
    const dir = await opendir(path.join(root, relDir));
    for await (const entry of dir) {
      const rel = relDir === '' ? entry.name : `${relDir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!skipDirs.has(entry.name)) stack.push(rel);
      } else if (entry.isFile()) {
        const abs = path.join(root, rel);
        const { size, mode } = await lstat(abs);
        files += 1;
        bytes += size;
        if (files > maxFiles) throw new RepoTooLargeError(`${what} has more than ${maxFiles.toLocaleString('en-US')} files; the limit is ${maxFiles.toLocaleString('en-US')}${named('files')}`);
        if (bytes > maxBytes) throw new RepoTooLargeError(`${what} is larger than ${formatBytes(maxBytes)}; the limit is ${formatBytes(maxBytes)}${named('bytes')}`);
        yield { rel, abs, size, mode: mode & 0o777 };
      }
    }
  }
}

export interface UploadResult {
  files: number;
  bytes: number;
}

export function contentTypeFor(name: string): string {
  return mime.contentType(path.posix.extname(name) || 'bin') || 'application/octet-stream';
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(n % (1024 * 1024) === 0 ? 0 : 1)} MB`;
  if (n >= 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${n} bytes`;
}

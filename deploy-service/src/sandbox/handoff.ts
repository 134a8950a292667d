// What crosses out of a build's sandbox, checked on the way: the worker never opens a path inside a
// build's folders once the build has run; Slipway's own steps, run in the sandbox as the build, send
// what the worker needs as a stream, and the worker takes it into folders only it writes.
//   receiveFacts — the first line of a step's output: one JSON object, at most 64 KB;
//   receiveTree  — a tar stream of a folder: regular files and folders only (links and special files
//                  are skipped and counted), names checked, file count and bytes capped as they arrive;
//   receiveFile  — a stream (a cache archive) into one file, capped.
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Parser, type ReadEntry } from 'tar';
import { BuildFailedError, RepoTooLargeError, UnsafePathError, formatBytes, pathInside, safeRelativePath } from '@slipway/shared';

export const MAX_FACTS_BYTES = 64 * 1024;
/** S3 keys are at most 1,024 bytes; what comes before a file's name takes less than 100. */
const MAX_NAME_BYTES = 900;

/**
 * Reads the first line of `stream` (one JSON value) and gives the rest as a stream of its own. Read
 * through the stream's iterator: putting bytes back (unshift) is lost when the stream has just ended.
 */
export async function receiveFacts(stream: Readable): Promise<{ facts: unknown; rest: Readable }> {
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let size = 0;
  let after: Buffer | null = null;
  for (;;) {
    const next = await chunks.next();
    if (next.done) break;
    const newline = next.value.indexOf(0x0a);
    if (newline >= 0) {
      head.push(next.value.subarray(0, newline));
      after = next.value.subarray(newline + 1);
      break;
    }
    head.push(next.value);
    size += next.value.length;
    if (size > MAX_FACTS_BYTES) throw new Error(`a sandbox step's first line passed ${MAX_FACTS_BYTES} bytes`);
  }
  const text = Buffer.concat(head).toString('utf8');
  let facts: unknown;
  try {
    facts = JSON.parse(text) as unknown;
  } catch {
    throw new Error(`a sandbox step did not start with its facts line (got ${JSON.stringify(text.slice(0, 200))})`);
  }
  const remaining = async function* () {
    if (after && after.length > 0) yield after;
    for (;;) {
      const next = await chunks.next();
      if (next.done) return;
      yield next.value;
    }
  };
  return { facts, rest: Readable.from(remaining(), { objectMode: false }) };
}

export interface TreeLimits {
  maxFiles: number;
  maxBytes: number;
  /** What is received, for messages ("the output"), and the settings behind the caps. */
  what: string;
  limitNames: { files: string; bytes: string };
}

export interface ReceivedTree {
  files: number;
  bytes: number;
  /** Links, FIFOs, sockets and devices left out. */
  skipped: number;
}

/**
 * Unpacks the tar stream `stream` into `dest` (a fresh folder only the worker writes). A name that
 * could leave `dest` or cannot be published fails the build; so does passing a cap (checked on each
 * entry's header, before its bytes are read).
 */
export async function receiveTree(stream: Readable, dest: string, limits: TreeLimits): Promise<ReceivedTree> {
  await mkdir(dest, { recursive: true, mode: 0o700 });
  const result: ReceivedTree = { files: 0, bytes: 0, skipped: 0 };
  let folders = 0;
  let failure: unknown = null;
  const parser = new Parser({ strict: true });
  const writes: Promise<void>[] = [];
  parser.on('entry', (entry: ReadEntry) => {
    if (failure) return void entry.resume();
    const done = take(entry).catch((err: unknown) => {
      failure ??= err;
      entry.resume();
      stream.destroy(err instanceof Error ? err : new Error(String(err)));
    });
    writes.push(done);
  });

  async function take(entry: ReadEntry): Promise<void> {
    const rel = entryName(entry.path, limits.what);
    if (rel === '') return void entry.resume(); // the folder itself
    if (entry.type === 'Directory') {
      entry.resume();
      // Folders cost the worker's disk inodes too: as many as files may be, at most.
      if (++folders > limits.maxFiles) throw new RepoTooLargeError(`${limits.what} has more than ${limits.maxFiles.toLocaleString('en-US')} folders; the limit is ${limits.maxFiles.toLocaleString('en-US')} (${limits.limitNames.files})`);
      await mkdir(pathInside(dest, rel), { recursive: true, mode: 0o755 });
      return;
    }
    if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'ContiguousFile') {
      result.skipped += 1;
      return void entry.resume();
    }
    result.files += 1;
    result.bytes += entry.size;
    const count = (n: number) => n.toLocaleString('en-US');
    if (result.files > limits.maxFiles) throw new RepoTooLargeError(`${limits.what} has more than ${count(limits.maxFiles)} files; the limit is ${count(limits.maxFiles)} (${limits.limitNames.files})`);
    if (result.bytes > limits.maxBytes) throw new RepoTooLargeError(`${limits.what} is larger than ${formatBytes(limits.maxBytes)}; the limit is ${formatBytes(limits.maxBytes)} (${limits.limitNames.bytes})`);
    const file = pathInside(dest, rel);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
    // 'wx': a name given twice is refused, never written over. Execute bits kept, nothing more.
    await pipeline(entry, createWriteStream(file, { flags: 'wx', mode: (entry.mode ?? 0) & 0o111 ? 0o755 : 0o644 }));
  }

  try {
    await pipeline(stream, parser);
  } catch (err) {
    failure ??= err;
  }
  await Promise.all(writes);
  if (failure) {
    await rm(dest, { recursive: true, force: true });
    throw failure;
  }
  return result;
}

/** A tar member's name as a checked relative path; BuildFailedError for one that cannot be published. */
function entryName(raw: string, what: string): string {
  const name = raw.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  if (name === '' || name === '.') return '';
  try {
    const rel = safeRelativePath(name);
    if (rel !== name || Buffer.byteLength(rel) > MAX_NAME_BYTES || /[\x00-\x1f\x7f]/.test(rel)) throw new UnsafePathError(name);
    return rel;
  } catch (err) {
    if (!(err instanceof UnsafePathError)) throw err;
    throw new BuildFailedError(`${what} holds a file whose name cannot be published: ${JSON.stringify(name.slice(0, 200))}`);
  }
}

/** Writes `stream` to `file` (a fresh name only the worker uses); past `maxBytes` it stops and throws. */
export async function receiveFile(stream: Readable, file: string, maxBytes: number): Promise<number> {
  let bytes = 0;
  const out = createWriteStream(file, { flags: 'wx', mode: 0o644 });
  try {
    await pipeline(
      stream,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          bytes += chunk.length;
          if (bytes > maxBytes) throw new ArchiveTooLargeError(maxBytes);
          yield chunk;
        }
      },
      out,
    );
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
  return bytes;
}

export class ArchiveTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`passed ${Math.round(maxBytes / 1024 / 1024)} MB`);
  }
}

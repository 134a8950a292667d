// A deployment's source as one archive, made from git's objects with nothing checked out: the selected
// files (selection.ts: regular files only, never a link or a submodule, never .git) are put in an
// index of their own, written as a tree, and `git archive` streams that tree as tar, gzip'd here on
// the way to S3. The caps hold on the stream too, and a git that fails fails the stream, so a
// truncated archive is never stored as a whole one.
import { execFile, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import { constants, createGzip } from 'node:zlib';
import { MAX_MANIFEST_BYTES, RepoTooLargeError, formatBytes } from '@slipway/shared';
import { isFile, type TreeEntry, type TreeReader } from './selection';

const run = promisify(execFile);
/** What tar adds per member at most (a header, a long name's extra header, padding), besides the archive's end. */
const TAR_OVERHEAD_PER_FILE = 1536;

/** git run in the clone, reading and writing nothing of the user's or the system's configuration. */
function gitEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, GIT_CONFIG_NOSYSTEM: '1', ...extra };
}

/** Reads the commit's small files from git's objects (the manifests selection.ts needs). */
export function treeReader(dir: string, entries: readonly TreeEntry[], timeoutMs: number): TreeReader {
  const byPath = new Map(entries.map((e) => [e.path, e]));
  return {
    async read(rel) {
      const entry = byPath.get(rel);
      if (!entry || !isFile(entry) || entry.size > MAX_MANIFEST_BYTES) return null;
      const { stdout } = await run('git', ['cat-file', 'blob', entry.oid], { cwd: dir, env: gitEnv(), timeout: timeoutMs, maxBuffer: MAX_MANIFEST_BYTES + 1024 });
      return stdout;
    },
  };
}

export interface SourceArchive {
  /** The tar.gz stream; it errors (and ends no archive) if git fails or a cap is passed. */
  stream: Readable;
  files: number;
  bytes: number;
}

/**
 * The archive of `files` (regular files of the commit in the clone at `dir`), as a stream. The clone's
 * own attributes are overridden, so a repository's `export-ignore` or `export-subst` cannot change
 * what is published from what the commit holds.
 */
export async function archiveSource(dir: string, files: readonly TreeEntry[], limits: { timeoutMs: number }): Promise<SourceArchive> {
  const bytes = files.reduce((sum, f) => sum + f.size, 0);
  const info = path.join(dir, '.git', 'info');
  await mkdir(info, { recursive: true });
  await writeFile(path.join(info, 'attributes'), '* -export-ignore -export-subst\n');
  // An index of the selection only, beside the clone (never inside the tree), then its tree.
  const index = `${dir}.index`;
  const env = gitEnv({ GIT_INDEX_FILE: index });
  await feed(['update-index', '-z', '--index-info'], dir, env, files.map((f) => `${f.mode} ${f.oid}\t${f.path}\0`).join(''), limits.timeoutMs);
  const tree = (await run('git', ['write-tree'], { cwd: dir, env, timeout: limits.timeoutMs })).stdout.trim();

  const git = spawn('git', ['archive', '--format=tar', tree], { cwd: dir, env: gitEnv(), stdio: ['ignore', 'pipe', 'pipe'], timeout: limits.timeoutMs });
  let stderr = '';
  git.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-2000)));
  const exited = new Promise<number | null>((resolve) => git.on('close', (code) => resolve(code)));
  git.on('error', () => undefined); // 'close' follows with a null code
  // The tar can only be as large as the files plus tar's own framing (a member per file and folder);
  // past that, something is wrong.
  const folders = new Set(files.flatMap((f) => f.path.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))));
  const cap = bytes + TAR_OVERHEAD_PER_FILE * (files.length + folders.size + 2) + 1024 * 1024;
  let seen = 0;
  const checked = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > cap) {
        git.kill('SIGKILL');
        return done(new RepoTooLargeError(`the source archive passed ${formatBytes(cap)}, more than its files add up to`));
      }
      done(null, chunk);
    },
    // The archive ends only once git says it wrote all of it.
    flush(done) {
      void exited.then((code) => done(code === 0 ? null : new Error(`git archive failed (${code ?? 'killed'}): ${stderr.trim()}`)));
    },
  });
  const gzip = createGzip({ level: constants.Z_BEST_SPEED });
  git.stdout.on('error', (err) => checked.destroy(err));
  checked.on('error', (err) => {
    git.kill('SIGKILL');
    gzip.destroy(err);
  });
  git.stdout.pipe(checked).pipe(gzip);
  return { stream: gzip, files: files.length, bytes };
}

/** Runs git with `input` on its stdin; rejects with its stderr when it fails. */
function feed(args: string[], cwd: string, env: NodeJS.ProcessEnv, input: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd, env, stdio: ['pipe', 'ignore', 'pipe'], timeout: timeoutMs });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-2000)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`git ${args[0]} failed (${code}): ${stderr.trim()}`))));
    child.stdin.on('error', () => undefined); // a git that died early: its exit says why
    child.stdin.end(input);
  });
}

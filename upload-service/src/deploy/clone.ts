// Cloning: a shallow, single-branch clone of a checked repository URL into a folder, with a time
// limit, no prompts, and git pinned to the address the URL policy checked (git-access.ts: how git
// reaches the server, with a project's credential).
import { spawn } from 'node:child_process';
import { simpleGit } from 'simple-git';
import { CloneFailedError, RepoTooLargeError, defaultWatchPaths, formatBytes } from '@slipway/shared';
import { cloneError, remoteGit, writeCredential, type GitCredential } from './git-access';
import { treeReader } from './archive';
import { parseTree, requireRootDir, selectRootDir, selectedFiles, workspaceDependencies, type TreeEntry } from './selection';
import type { RepoTarget } from './url-policy';

export interface CloneResult {
  commit: string;
  /** The branch cloned: the requested one, or the repository's default. */
  branch: string | undefined;
  /** With a narrow selection (sourceScope rootDir): the workspace packages selected with the app. */
  packages: string[];
  /** The regular files of the commit that are the deployment's source (selection.ts); nothing is checked out. */
  files: TreeEntry[];
  /** With `watch`: the watched paths and what each holds at the commit (projects/watch.ts). */
  watched?: { paths: string[]; ids: Record<string, string | null> };
}

export interface CloneLimits {
  timeoutMs: number;
  maxBytes: number;
  maxFiles: number;
}

const UNITS: Record<string, number> = { bytes: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/**
 * Clones `target` into `dir` without a checkout, checks the commit's size, and selects its files: all
 * of them, or with `narrow` only what `rootDir` needs (see selection.ts). archive.ts streams them.
 */
export async function cloneRepo(
  target: RepoTarget,
  branch: string | undefined,
  dir: string,
  limits: CloneLimits,
  options: { rootDir?: string; narrow?: boolean; commit?: string; credential?: GitCredential | null; knownHosts?: string; watch?: readonly string[] | 'default' } = {},
): Promise<CloneResult> {
  const { rootDir, narrow = false, commit: wanted, credential = null, knownHosts, watch } = options;
  const { timeoutMs } = limits;
  // The download is watched from git's own progress lines, so an oversized pack is stopped early
  // instead of filling the disk first; the checked-out size is checked from the tree (below).
  const tooLarge = new AbortController();
  let limitError: RepoTooLargeError | null = null;
  const watchProgress = (text: string) => {
    if (limitError) return;
    const received = /Receiving objects:.*?([\d.]+) (bytes|KiB|MiB|GiB)/.exec(text.split('\r').at(-1) ?? text) ?? /Receiving objects:.*?([\d.]+) (bytes|KiB|MiB|GiB)/.exec(text);
    const bytes = received ? Number(received[1]) * (UNITS[received[2]!] ?? 1) : 0;
    if (bytes > limits.maxBytes) {
      limitError = new RepoTooLargeError(`repository download passed ${formatBytes(limits.maxBytes)}; the limit is ${formatBytes(limits.maxBytes)} (MAX_REPO_MB)`);
      tooLarge.abort(limitError);
    }
  };
  // Whether the time limit struck is read from the signal, not from git's words ("aborting" is also git's own for a broken remote).
  const deadline = AbortSignal.timeout(timeoutMs);
  const written = await writeCredential(dir, credential);
  const git = remoteGit(target, dir, AbortSignal.any([deadline, tooLarge.signal]), written, knownHosts).outputHandler((_command, _stdout, stderr) =>
    stderr.on('data', (chunk: Buffer) => watchProgress(chunk.toString())),
  );

  // Without a checkout first: the tree's size is read from git's index of it and checked before a
  // byte of it is written, so a small, well-compressed repository cannot expand into a huge file.
  const args = ['--depth', '1', '--single-branch', '--no-tags', '--progress', '--no-checkout'];
  if (branch) args.push('--branch', branch);
  try {
    await git.clone(target.url, dir, args);
  } catch (err) {
    await written?.release();
    if (limitError) throw limitError;
    throw await cloneError(err, target, branch, deadline.aborted ? timeoutMs : null, credential, knownHosts);
  }
  const cloned = branch ?? ((await git.raw(['symbolic-ref', '--short', '-q', 'HEAD']).catch(() => '')).trim() || undefined);
  // A given commit: the branch's tip is usually it; otherwise that one commit is fetched by id (as
  // GitHub, GitLab and git's own protocol v2 servers allow) and HEAD detached onto it.
  try {
    if (wanted && (await git.revparse(['HEAD'])).trim() !== wanted) {
      try {
        await git.raw(['fetch', '--depth', '1', '--no-tags', '--progress', 'origin', wanted]);
      } catch (err) {
        if (limitError) throw limitError;
        if (deadline.aborted) throw await cloneError(err, target, branch, timeoutMs, credential, knownHosts);
        throw new CloneFailedError(`commit ${wanted} could not be fetched from ${target.url}: it is not there (or the server does not serve commits by id)`);
      }
      await git.raw(['update-ref', '--no-deref', 'HEAD', wanted]);
    }
  } finally {
    // Nothing after this talks to the server.
    await written?.release();
  }
  const local = simpleGit({ baseDir: dir, abort: AbortSignal.timeout(timeoutMs) }).env({ PATH: process.env.PATH, HOME: process.env.HOME });
  const entries = parseTree(await local.raw(['ls-tree', '-r', '-l', '-z', 'HEAD']));
  const blobs = entries.filter((e) => e.mode !== '160000'); // a submodule is a commit, with no files here
  const bytes = blobs.reduce((sum, e) => sum + e.size, 0);
  if (bytes > limits.maxBytes) {
    throw new RepoTooLargeError(`repository files add up to ${formatBytes(bytes)}; the limit is ${formatBytes(limits.maxBytes)} (MAX_REPO_MB)`);
  }
  if (blobs.length > limits.maxFiles) {
    throw new RepoTooLargeError(`repository has ${blobs.length.toLocaleString('en-US')} files; the limit is ${limits.maxFiles.toLocaleString('en-US')} (MAX_REPO_FILES)`);
  }
  const tree = treeReader(dir, entries, timeoutMs);
  let packages: string[] = [];
  let paths: string[] | null = null;
  if (rootDir && narrow) ({ packages, paths } = await selectRootDir(entries, rootDir, tree));
  else if (rootDir) requireRootDir(entries, rootDir);
  const files = selectedFiles(entries, paths);
  const commit = (await local.revparse(['HEAD'])).trim();
  if (!watch) return { commit, branch: cloned, packages, files };
  // What the watched paths hold (projects/watch.ts): by default what the build reads.
  const topLevel = [...new Set(entries.map((e) => e.path.split('/')[0]!))];
  const depends = rootDir ? (narrow ? packages : await workspaceDependencies(entries, rootDir, tree)) : [];
  const watchPaths = watch === 'default' ? defaultWatchPaths(rootDir, depends, topLevel) : [...watch];
  return { commit, branch: cloned, packages, files, watched: { paths: watchPaths, ids: await objectIds(dir, watchPaths, timeoutMs) } };
}

/** Each path's git object id at HEAD (a tree's or a blob's; null when the commit has nothing there), in one `git cat-file`. */
export function objectIds(dir: string, paths: readonly string[], timeoutMs: number): Promise<Record<string, string | null>> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['cat-file', '--batch-check=%(objectname)'], { cwd: dir, env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c.slice(0, 2000)));
    child.on('error', reject);
    child.on('close', (code) => {
      const lines = out.split('\n');
      if (code !== 0 || lines.length < paths.length) return reject(new Error(`git cat-file failed (${code}): ${err.trim()}`));
      resolve(Object.fromEntries(paths.map((p, i) => [p, /^[0-9a-f]{40,64}$/.test(lines[i]!) ? lines[i]! : null])));
    });
    // `HEAD:` is the root tree; paths were checked to hold no line breaks (WatchPathSchema).
    child.stdin.end(paths.map((p) => `HEAD:${p === '.' ? '' : p}\n`).join(''));
  });
}

/**
 * Whether the repository can be read with `credential` (checked before a token is stored, or when a
 * deploy key is tried): `git ls-remote` within the clone time limit; CloneFailedError saying why not,
 * naming no secret. `scratch` is a folder of the caller's own, empty, removed by the caller.
 */
export async function checkAccess(target: RepoTarget, credential: GitCredential | null, scratch: string, timeoutMs: number, knownHosts?: string): Promise<void> {
  const deadline = AbortSignal.timeout(timeoutMs);
  const written = await writeCredential(scratch, credential);
  try {
    await remoteGit(target, scratch, deadline, written, knownHosts).listRemote(['--heads', target.url]);
  } catch (err) {
    throw await cloneError(err, target, undefined, deadline.aborted ? timeoutMs : null, credential, knownHosts);
  } finally {
    await written?.release();
  }
}

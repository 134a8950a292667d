// Cloning: a shallow, single-branch clone of a checked repository URL into a folder, with a time
// limit, no prompts, and git pinned to the address the URL policy checked.
import { unlink, writeFile } from 'node:fs/promises';
import { simpleGit, type SimpleGit } from 'simple-git';
import { CloneFailedError, RepoTooLargeError, formatBytes } from '@slipway/shared';
import { checkoutRootDir, parseTree, requireRootDir } from './selection';
import type { RepoTarget } from './url-policy';

export interface CloneResult {
  commit: string;
  /** The branch cloned: the requested one, or the repository's default. */
  branch: string | undefined;
  /** With a narrow selection (sourceScope rootDir): the workspace packages checked out with the app. */
  packages: string[];
}

export interface CloneLimits {
  timeoutMs: number;
  maxBytes: number;
  maxFiles: number;
}

const UNITS: Record<string, number> = { bytes: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/**
 * Clones `target` into `dir` and checks out the commit: all of it, or with `narrow` only what
 * `rootDir` needs (see selection.ts). Size limits are checked before anything is checked out.
 */
export async function cloneRepo(
  target: RepoTarget,
  branch: string | undefined,
  dir: string,
  limits: CloneLimits,
  options: { rootDir?: string; narrow?: boolean; commit?: string } = {},
): Promise<CloneResult> {
  const { rootDir, narrow = false, commit: wanted } = options;
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
  const config = [
    // Only the transports the policy allowed; no redirects to hosts the policy never saw.
    'protocol.allow=never',
    'protocol.https.allow=always',
    'protocol.http.allow=always',
    'http.followRedirects=false',
    'core.symlinks=true',
    'advice.detachedHead=false',
  ];
  if (target.address) {
    const addr = target.address.includes(':') ? `[${target.address}]` : target.address;
    config.push(`http.curloptResolve=${target.host}:${target.port}:${addr}`);
  }
  // Whether the time limit struck is read from the signal, not from git's words ("aborting" is also git's own for a broken remote).
  const deadline = AbortSignal.timeout(timeoutMs);
  const git = simpleGit({
    baseDir: dir,
    config,
    abort: AbortSignal.any([deadline, tooLarge.signal]),
    allowEnvironment: ['GIT_TERMINAL_PROMPT'],
    // simple-git guards protocol.allow because it can enable ext:: transports; here it only narrows them.
    unsafe: { allowUnsafeProtocolOverride: true },
  })
    .env({ PATH: process.env.PATH, HOME: dir, GIT_TERMINAL_PROMPT: '0' })
    .outputHandler((_command, _stdout, stderr) => stderr.on('data', (chunk: Buffer) => watchProgress(chunk.toString())));

  // Without a checkout first: the tree's size is read from git's index of it and checked before a
  // byte of it is written, so a small, well-compressed repository cannot expand into a huge file.
  const args = ['--depth', '1', '--single-branch', '--no-tags', '--progress', '--no-checkout'];
  if (branch) args.push('--branch', branch);
  try {
    await git.clone(target.url, dir, args);
  } catch (err) {
    if (limitError) throw limitError;
    throw cloneError(err, target.url, branch, deadline.aborted ? timeoutMs : null);
  }
  const cloned = branch ?? ((await git.raw(['symbolic-ref', '--short', '-q', 'HEAD']).catch(() => '')).trim() || undefined);
  // A given commit: the branch's tip is usually it; otherwise that one commit is fetched by id (as
  // GitHub, GitLab and git's own protocol v2 servers allow) and HEAD detached onto it.
  if (wanted && (await git.revparse(['HEAD'])).trim() !== wanted) {
    try {
      await git.raw(['fetch', '--depth', '1', '--no-tags', '--progress', 'origin', wanted]);
    } catch (err) {
      if (limitError) throw limitError;
      if (deadline.aborted) throw cloneError(err, target.url, branch, timeoutMs);
      throw new CloneFailedError(`commit ${wanted} could not be fetched from ${target.url}: it is not there (or the server does not serve commits by id)`);
    }
    await git.raw(['update-ref', '--no-deref', 'HEAD', wanted]);
  }
  // Paths from a request or a repository are taken literally by checkout (no globs); HOME stays the service's, not the tree.
  const local = simpleGit({ baseDir: dir, abort: AbortSignal.timeout(timeoutMs), allowEnvironment: ['GIT_LITERAL_PATHSPECS'] }).env({
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GIT_LITERAL_PATHSPECS: '1',
  });
  const entries = parseTree(await local.raw(['ls-tree', '-r', '-l', '-z', 'HEAD']));
  const blobs = entries.filter((e) => e.mode !== '160000'); // a submodule is a commit, with no files here
  const bytes = blobs.reduce((sum, e) => sum + e.size, 0);
  if (bytes > limits.maxBytes) {
    throw new RepoTooLargeError(`repository files add up to ${formatBytes(bytes)}; the limit is ${formatBytes(limits.maxBytes)} (MAX_REPO_MB)`);
  }
  if (blobs.length > limits.maxFiles) {
    throw new RepoTooLargeError(`repository has ${blobs.length.toLocaleString('en-US')} files; the limit is ${limits.maxFiles.toLocaleString('en-US')} (MAX_REPO_FILES)`);
  }
  let packages: string[] = [];
  if (rootDir && narrow) packages = (await checkoutRootDir(entries, rootDir, { dir, checkout: (paths) => checkoutPaths(local, dir, paths) })).packages;
  else {
    if (rootDir) requireRootDir(entries, rootDir);
    await checkoutPaths(local, dir, ['.']);
  }
  const commit = (await local.revparse(['HEAD'])).trim();
  return { commit, branch: cloned, packages };
}

/** `git checkout HEAD -- <paths>`, the paths passed through a file, not argv (there may be thousands). */
async function checkoutPaths(git: SimpleGit, dir: string, paths: readonly string[]): Promise<void> {
  if (paths.length === 0) return;
  // Beside the clone (its parent is the request's own temp folder's parent), never inside the tree.
  const list = `${dir}.pathspec`;
  await writeFile(list, paths.join('\0'));
  try {
    await git.raw(['checkout', '--quiet', `--pathspec-from-file=${list}`, '--pathspec-file-nul', 'HEAD']);
  } finally {
    await unlink(list).catch(() => undefined);
  }
}

/** `timedOutAfterMs`: the time limit when it is what stopped git, else null. */
function cloneError(err: unknown, url: string, branch: string | undefined, timedOutAfterMs: number | null): Error {
  const text = err instanceof Error ? err.message : String(err);
  if (timedOutAfterMs !== null) return new CloneFailedError(`cloning ${url} took longer than ${timedOutAfterMs / 1000} s; the limit is ${timedOutAfterMs / 1000} s`);
  if (branch && /Remote branch .* not found/i.test(text)) return new CloneFailedError(`branch ${JSON.stringify(branch)} does not exist in ${url}`);
  if (/could not read Username|Authentication failed|terminal prompts disabled|returned error: 40[13]\b/i.test(text)) {
    return new CloneFailedError(`${url} asks for credentials; only public repositories can be deployed`);
  }
  if (/not found|does not appear to be a git repository|returned error: 404\b/i.test(text)) return new CloneFailedError(`${url} is not a git repository that can be cloned (not found)`);
  // The server's own words when it gave up (upload-pack: …), else git's last error line; the rest is progress noise.
  const errors = text.split('\n').map((l) => l.trim()).filter((l) => /^(fatal|error):/.test(l));
  const reason = errors.find((l) => /upload-pack: /.test(l)) ?? errors.pop() ?? text.trim().split('\n').pop();
  return new CloneFailedError(`cloning ${url} failed: ${reason}`);
}

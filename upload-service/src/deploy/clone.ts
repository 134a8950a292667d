// Cloning: a shallow, single-branch clone of a checked repository URL into a folder, with a time
// limit, no prompts, and git pinned to the address the URL policy checked.
//
// A project's access token reaches git through a credential helper of Slipway's own: a shell
// function that prints a file written beside the clone (0600, in the clone's own folder, removed
// when the clone ends; a crashed process's folder is removed by the next one). The token is never
// on a command line, in a URL, in .git/config or in an environment; every other helper (the
// system's, the user's) is cleared first, so none stores it.
import { unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { CloneFailedError, RepoTooLargeError, formatBytes, type GitAuth } from '@slipway/shared';
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
  options: { rootDir?: string; narrow?: boolean; commit?: string; auth?: GitAuth | null } = {},
): Promise<CloneResult> {
  const { rootDir, narrow = false, commit: wanted, auth = null } = options;
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
  const credential = await writeCredential(dir, auth);
  const git = remoteGit(target, dir, AbortSignal.any([deadline, tooLarge.signal]), credential).outputHandler((_command, _stdout, stderr) =>
    stderr.on('data', (chunk: Buffer) => watchProgress(chunk.toString())),
  );

  // Without a checkout first: the tree's size is read from git's index of it and checked before a
  // byte of it is written, so a small, well-compressed repository cannot expand into a huge file.
  const args = ['--depth', '1', '--single-branch', '--no-tags', '--progress', '--no-checkout'];
  if (branch) args.push('--branch', branch);
  try {
    await git.clone(target.url, dir, args);
  } catch (err) {
    await removeCredential(credential);
    if (limitError) throw limitError;
    throw cloneError(err, target, branch, deadline.aborted ? timeoutMs : null, auth);
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
        if (deadline.aborted) throw cloneError(err, target, branch, timeoutMs, auth);
        throw new CloneFailedError(`commit ${wanted} could not be fetched from ${target.url}: it is not there (or the server does not serve commits by id)`);
      }
      await git.raw(['update-ref', '--no-deref', 'HEAD', wanted]);
    }
  } finally {
    // Nothing after this talks to the server.
    await removeCredential(credential);
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

/**
 * Whether the repository can be read with `auth` (a project's token, checked before it is stored):
 * `git ls-remote` within the clone time limit; CloneFailedError saying why not, naming no secret.
 * `scratch` is a folder of the caller's own, empty, removed by the caller.
 */
export async function checkAccess(target: RepoTarget, auth: GitAuth | null, scratch: string, timeoutMs: number): Promise<void> {
  const deadline = AbortSignal.timeout(timeoutMs);
  const credential = await writeCredential(scratch, auth);
  try {
    await remoteGit(target, scratch, deadline, credential).listRemote(['--heads', target.url]);
  } catch (err) {
    throw cloneError(err, target, undefined, deadline.aborted ? timeoutMs : null, auth);
  } finally {
    await removeCredential(credential);
  }
}

/** The credential helper: prints the file named by SLIPWAY_GIT_CREDENTIAL when git asks (`get`), ignores store and erase. */
const HELPER = '!f() { test "$1" = get && cat "$SLIPWAY_GIT_CREDENTIAL"; }; f';

/** git for the remote: the policy's transports and address, no prompts, and only Slipway's credential helper (when there is a credential). */
function remoteGit(target: RepoTarget, dir: string, abort: AbortSignal, credential: string | null): SimpleGit {
  const config = [
    // Only the transports the policy allowed; no redirects to hosts the policy never saw.
    'protocol.allow=never',
    'protocol.https.allow=always',
    'protocol.http.allow=always',
    'http.followRedirects=false',
    'core.symlinks=true',
    'advice.detachedHead=false',
    // The empty value clears every helper configured before (the system's store, say); then only ours.
    'credential.helper=',
    ...(credential ? [`credential.helper=${HELPER}`] : []),
  ];
  if (target.address) {
    const addr = target.address.includes(':') ? `[${target.address}]` : target.address;
    config.push(`http.curloptResolve=${target.host}:${target.port}:${addr}`);
  }
  return simpleGit({
    baseDir: dir,
    config,
    abort,
    allowEnvironment: ['GIT_TERMINAL_PROMPT'],
    // simple-git guards protocol.allow because it can enable ext:: transports; here it only narrows
    // them. It guards credential.helper because a helper runs a command: this one is Slipway's own.
    unsafe: { allowUnsafeProtocolOverride: true, allowUnsafeCredentialHelper: true },
  }).env({ PATH: process.env.PATH, HOME: dir, GIT_TERMINAL_PROMPT: '0', ...(credential ? { SLIPWAY_GIT_CREDENTIAL: credential } : {}) });
}

/** Writes the helper's answer beside `dir` (in the folder that holds it, which its caller removes), readable by this user only. */
async function writeCredential(dir: string, auth: GitAuth | null): Promise<string | null> {
  if (!auth) return null;
  const file = path.join(path.dirname(dir), `${path.basename(dir)}.credential`);
  await writeFile(file, `username=${auth.username}\npassword=${auth.token}\n`, { mode: 0o600, flag: 'wx' });
  return file;
}

async function removeCredential(file: string | null): Promise<void> {
  if (file) await unlink(file).catch(() => undefined);
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

/** `timedOutAfterMs`: the time limit when it is what stopped git, else null. The message never holds a credential. */
function cloneError(err: unknown, target: RepoTarget, branch: string | undefined, timedOutAfterMs: number | null, auth: GitAuth | null): Error {
  const { url, host } = target;
  const text = err instanceof Error ? err.message : String(err);
  if (timedOutAfterMs !== null) return new CloneFailedError(`cloning ${url} took longer than ${timedOutAfterMs / 1000} s; the limit is ${timedOutAfterMs / 1000} s`);
  if (branch && /Remote branch .* not found/i.test(text)) return new CloneFailedError(`branch ${JSON.stringify(branch)} does not exist in ${url}`);
  if (/could not read Username|Authentication failed|terminal prompts disabled|returned error: 40[13]\b/i.test(text)) {
    if (auth) return new CloneFailedError(`authentication failed for ${host} with the project's access token (user ${auth.username}): check the token, that it has not expired, and that it may read ${url}`);
    return new CloneFailedError(`${url} asks for credentials: give the project gitAuth (a user name and an access token) to deploy a repository that is not public`);
  }
  if (/not found|does not appear to be a git repository|returned error: 404\b/i.test(text)) {
    // Forges answer 404 for a private repository the token may not read.
    if (auth) return new CloneFailedError(`${url} was not found on ${host}, or the project's access token (user ${auth.username}) has no access to it`);
    return new CloneFailedError(`${url} is not a git repository that can be cloned (not found)`);
  }
  // The server's own words when it gave up (upload-pack: …), else git's last error line; the rest is progress noise.
  const errors = text.split('\n').map((l) => l.trim()).filter((l) => /^(fatal|error):/.test(l));
  const reason = errors.find((l) => /upload-pack: /.test(l)) ?? errors.pop() ?? text.trim().split('\n').pop();
  return new CloneFailedError(`cloning ${url} failed: ${reason}`);
}

// Cloning: a shallow, single-branch clone of a checked repository URL into a folder, with a time
// limit, no prompts, and git pinned to the address the URL policy checked.
import { simpleGit } from 'simple-git';
import { CloneFailedError, RepoTooLargeError, formatBytes } from '@slipway/shared';
import type { RepoTarget } from './url-policy';

export interface CloneResult {
  commit: string;
}

export interface CloneLimits {
  timeoutMs: number;
  maxBytes: number;
  maxFiles: number;
}

const UNITS: Record<string, number> = { bytes: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

export async function cloneRepo(target: RepoTarget, branch: string | undefined, dir: string, limits: CloneLimits): Promise<CloneResult> {
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
  const git = simpleGit({
    baseDir: dir,
    config,
    abort: AbortSignal.any([AbortSignal.timeout(timeoutMs), tooLarge.signal]),
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
    throw cloneError(err, target.url, branch, timeoutMs);
  }
  const local = simpleGit({ baseDir: dir, abort: AbortSignal.timeout(timeoutMs) });
  const tree = treeSize(await local.raw(['ls-tree', '-r', '-l', '-z', 'HEAD']));
  if (tree.bytes > limits.maxBytes) {
    throw new RepoTooLargeError(`repository files add up to ${formatBytes(tree.bytes)}; the limit is ${formatBytes(limits.maxBytes)} (MAX_REPO_MB)`);
  }
  if (tree.files > limits.maxFiles) {
    throw new RepoTooLargeError(`repository has ${tree.files.toLocaleString('en-US')} files; the limit is ${limits.maxFiles.toLocaleString('en-US')} (MAX_REPO_FILES)`);
  }
  await local.raw(['checkout', '--quiet', 'HEAD', '--', '.']);
  const commit = (await local.revparse(['HEAD'])).trim();
  return { commit };
}

/** Files and bytes in `git ls-tree -r -l -z` output: blobs only (a submodule is a commit, with no size here). */
export function treeSize(listing: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const entry of listing.split('\0')) {
    // <mode> SP <type> SP <object> SP+ <size> TAB <path>
    const match = /^\d+ blob [0-9a-f]+ +(\d+)\t/.exec(entry);
    if (!match) continue;
    files += 1;
    bytes += Number(match[1]);
  }
  return { files, bytes };
}

function cloneError(err: unknown, url: string, branch: string | undefined, timeoutMs: number): Error {
  const text = err instanceof Error ? err.message : String(err);
  if (/abort/i.test(text)) return new CloneFailedError(`cloning ${url} took longer than ${timeoutMs / 1000} s; the limit is ${timeoutMs / 1000} s`);
  if (branch && /Remote branch .* not found/i.test(text)) return new CloneFailedError(`branch ${JSON.stringify(branch)} does not exist in ${url}`);
  if (/could not read Username|Authentication failed|terminal prompts disabled|returned error: 40[13]\b/i.test(text)) {
    return new CloneFailedError(`${url} asks for credentials; only public repositories can be deployed`);
  }
  if (/not found|does not appear to be a git repository|returned error: 404\b/i.test(text)) return new CloneFailedError(`${url} is not a git repository that can be cloned (not found)`);
  // git's last error line says what went wrong; the rest is progress noise.
  const reason = text.split('\n').map((l) => l.trim()).filter((l) => /^(fatal|error):/.test(l)).pop() ?? text.trim().split('\n').pop();
  return new CloneFailedError(`cloning ${url} failed: ${reason}`);
}

// What a local checkout says about what to deploy: its origin as a URL the API can clone, the branch
// checked out, the commit (HEAD, or one named), and whether there is work the API cannot see
// (uncommitted, or a commit not pushed).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { UsageError } from './errors';

const run = promisify(execFile);

export interface Checkout {
  repoUrl: string;
  /** null when HEAD is detached. */
  branch: string | null;
  /** The full id of HEAD, or of the revision asked for. */
  commit: string;
  /** Uncommitted changes or untracked files: never deployed. */
  dirty: boolean;
  /** Whether a branch of origin contains the commit, as far as this checkout's remote-tracking refs know. */
  pushed: boolean;
}

export async function readCheckout(dir: string, revision = 'HEAD'): Promise<Checkout> {
  const git = async (...args: string[]): Promise<string> => (await run('git', ['-C', dir, ...args], { encoding: 'utf8' })).stdout.trim();
  try {
    await git('rev-parse', '--git-dir');
  } catch (err) {
    throw new UsageError(`${dir} is not a git checkout (${firstLine(err)}); give a folder inside one, or the repository's URL`);
  }
  const remote = await git('remote', 'get-url', 'origin').catch((err: unknown) => {
    throw new UsageError(`the checkout at ${dir} has no remote "origin" (${firstLine(err)}): push it to a git host Slipway can clone, or give the repository's URL`);
  });
  const commit = await git('rev-parse', '--verify', '--end-of-options', `${revision}^{commit}`).catch((err: unknown) => {
    const what = revision === 'HEAD' ? 'no commit yet: commit and push first' : `no commit ${JSON.stringify(revision)}`;
    throw new UsageError(`the checkout at ${dir} has ${what} (${firstLine(err)})`);
  });
  // symbolic-ref fails on a detached HEAD: that is the null branch, not an error.
  const branch = await git('symbolic-ref', '--short', '-q', 'HEAD').catch(() => null);
  const dirty = (await git('status', '--porcelain')) !== '';
  const containing = await git('branch', '--remotes', '--contains', commit, '--format=%(refname:short)');
  const pushed = containing.split('\n').some((ref) => ref.startsWith('origin/'));
  return { repoUrl: cloneUrl(remote), branch: branch || null, commit, dirty, pushed };
}

/** The https:// form of an SSH remote (`git@github.com:owner/site.git`): the API clones over HTTP(S) only. */
export function cloneUrl(remote: string): string {
  const scp = /^[\w.-]+@([\w.-]+):(?!\/\/)(.+)$/.exec(remote);
  if (scp) return `https://${scp[1]}/${scp[2]}`;
  if (remote.startsWith('ssh://')) {
    const url = new URL(remote);
    return `https://${url.hostname}${url.pathname}`;
  }
  return remote;
}

function firstLine(err: unknown): string {
  const stderr = (err as { stderr?: unknown }).stderr;
  const text = typeof stderr === 'string' && stderr.trim() ? stderr : err instanceof Error ? err.message : String(err);
  return text.trim().split('\n')[0]!;
}

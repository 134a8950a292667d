// Cloning: a shallow, single-branch clone of a checked repository URL into a folder, with a time
// limit, no prompts, and git pinned to the address the URL policy checked.
import { simpleGit } from 'simple-git';
import { CloneFailedError } from '@slipway/shared';
import type { RepoTarget } from './url-policy';

export interface CloneResult {
  commit: string;
}

export async function cloneRepo(target: RepoTarget, branch: string | undefined, dir: string, timeoutMs: number): Promise<CloneResult> {
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
    abort: AbortSignal.timeout(timeoutMs),
    allowEnvironment: ['GIT_TERMINAL_PROMPT'],
    // simple-git guards protocol.allow because it can enable ext:: transports; here it only narrows them.
    unsafe: { allowUnsafeProtocolOverride: true },
  }).env({ PATH: process.env.PATH, HOME: dir, GIT_TERMINAL_PROMPT: '0' });

  const args = ['--depth', '1', '--single-branch', '--no-tags'];
  if (branch) args.push('--branch', branch);
  try {
    await git.clone(target.url, dir, args);
  } catch (err) {
    throw cloneError(err, target.url, branch, timeoutMs);
  }
  const commit = (await simpleGit({ baseDir: dir }).revparse(['HEAD'])).trim();
  return { commit };
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

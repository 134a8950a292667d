// How git reaches a repository's server: only the transports the URL policy allowed, pinned to the
// address it checked, no prompts, no configuration from the environment, and a project's credential
// handed over without ever being on a command line, in a URL, in .git/config or in an environment:
//  - an access token (HTTPS): Slipway's own credential helper, a shell function that prints a file
//    written beside the clone (0600) when git asks; `credential.helper=` first clears every other
//    helper (the system's or the user's), so none stores it;
//  - a deploy key (SSH): the private key in a file beside the clone (0600), given to an ssh that reads
//    no config file (-F /dev/null), uses no agent, offers only that key, and trusts only the host keys
//    in SSH_KNOWN_HOSTS (StrictHostKeyChecking), reaching the checked address under the host's name.
// The files live in the clone's work folder (never in the checkout, so never uploaded), are removed
// as soon as git is done with the server, and a crashed process's folder is removed by the next one.
// And what went wrong, said without a secret: authentication, access, an unknown host key with its
// fingerprint.
import { execFile } from 'node:child_process';
import { unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { simpleGit, type SimpleGit } from 'simple-git';
import { CloneFailedError, type GitAuth } from '@slipway/shared';
import type { RepoTarget } from './url-policy';

const run = promisify(execFile);

/** A project's way into its repository. */
export type GitCredential = { kind: 'token'; auth: GitAuth } | { kind: 'key'; privateKey: string };

/** A credential as written for git: its file (removed with release()). */
export interface CredentialFile {
  credential: GitCredential;
  file: string;
  release(): Promise<void>;
}

/** Writes the credential beside `dir` (in the folder holding it, which its caller removes), readable by this user only. */
export async function writeCredential(dir: string, credential: GitCredential | null): Promise<CredentialFile | null> {
  if (!credential) return null;
  const file = path.join(path.dirname(dir), `${path.basename(dir)}.${credential.kind === 'token' ? 'credential' : 'key'}`);
  const text = credential.kind === 'token' ? `username=${credential.auth.username}\npassword=${credential.auth.token}\n` : `${credential.privateKey.trimEnd()}\n`;
  await writeFile(file, text, { mode: 0o600, flag: 'wx' });
  return { credential, file, release: () => unlink(file).catch(() => undefined) };
}

/** The credential helper: prints the file named by SLIPWAY_GIT_CREDENTIAL when git asks (`get`), ignores store and erase. */
const HELPER = '!f() { test "$1" = get && cat "$SLIPWAY_GIT_CREDENTIAL"; }; f';

/** git for the remote: the policy's transports and address, no prompts, and only the project's credential. */
export function remoteGit(target: RepoTarget, dir: string, abort: AbortSignal, written: CredentialFile | null, knownHosts: string | undefined): SimpleGit {
  const token = written?.credential.kind === 'token' ? written.file : null;
  const key = written?.credential.kind === 'key' ? written.file : null;
  const config = [
    // Only the transports the policy allowed; no redirects to hosts the policy never saw.
    'protocol.allow=never',
    ...(target.transport === 'ssh' ? ['protocol.ssh.allow=always'] : ['protocol.https.allow=always', 'protocol.http.allow=always']),
    'http.followRedirects=false',
    'core.symlinks=true',
    'advice.detachedHead=false',
    // The empty value clears every helper configured before (the system's store, say); then only ours.
    'credential.helper=',
    ...(token ? [`credential.helper=${HELPER}`] : []),
  ];
  if (target.transport === 'ssh') config.push(`core.sshCommand=${sshCommand(target, key, knownHosts)}`);
  else if (target.address) {
    const addr = target.address.includes(':') ? `[${target.address}]` : target.address;
    config.push(`http.curloptResolve=${target.host}:${target.port}:${addr}`);
  }
  return simpleGit({
    baseDir: dir,
    config,
    abort,
    allowEnvironment: ['GIT_TERMINAL_PROMPT'],
    // simple-git guards protocol.allow because it can enable ext:: transports (here it only narrows
    // them), and credential.helper and core.sshCommand because they run commands: these are Slipway's own.
    unsafe: { allowUnsafeProtocolOverride: true, allowUnsafeCredentialHelper: true, allowUnsafeSshCommand: true },
  }).env({ PATH: process.env.PATH, HOME: dir, GIT_TERMINAL_PROMPT: '0', ...(token ? { SLIPWAY_GIT_CREDENTIAL: token } : {}) });
}

/** How known_hosts names the host: `host`, or `[host]:port` off port 22 (as ssh-keyscan writes it). */
export function hostKeyAlias(target: Pick<RepoTarget, 'host' | 'port'>): string {
  return target.port === 22 ? target.host : `[${target.host}]:${target.port}`;
}

/** The ssh git runs: nothing from the environment or a config file, no agent, only this key and these host keys. */
function sshCommand(target: RepoTarget, key: string | null, knownHosts: string | undefined): string {
  const options = [
    'BatchMode=yes',
    'IdentitiesOnly=yes',
    'IdentityAgent=none',
    `IdentityFile=${key ?? '/dev/null'}`,
    'StrictHostKeyChecking=yes',
    `UserKnownHostsFile=${knownHosts ?? '/dev/null'}`,
    'GlobalKnownHostsFile=/dev/null',
    `HostKeyAlias=${hostKeyAlias(target)}`,
    // The address the policy checked, so a name that resolves elsewhere later cannot lead inside.
    ...(target.address ? [`HostName=${target.address}`] : []),
    'ConnectTimeout=10',
    'ServerAliveInterval=15',
    'PasswordAuthentication=no',
    'KbdInteractiveAuthentication=no',
    'ProxyCommand=none',
    'ProxyJump=none',
    'PermitLocalCommand=no',
    'UpdateHostKeys=no',
    'ControlMaster=no',
    'ControlPath=none',
    'ForwardAgent=no',
    'ClearAllForwardings=yes',
  ];
  // Every value is Slipway's (its own paths, a checked host and address), quoted for the shell git uses.
  return ['ssh', '-F', '/dev/null', ...options.flatMap((o) => ['-o', `'${o}'`])].join(' ');
}

/**
 * Why git failed, as a CloneFailedError naming no secret. `timedOutAfterMs`: the time limit when it is
 * what stopped git, else null.
 */
export async function cloneError(err: unknown, target: RepoTarget, branch: string | undefined, timedOutAfterMs: number | null, credential: GitCredential | null, knownHosts: string | undefined): Promise<Error> {
  const { url, host } = target;
  const text = err instanceof Error ? err.message : String(err);
  if (timedOutAfterMs !== null) return new CloneFailedError(`cloning ${url} took longer than ${timedOutAfterMs / 1000} s; the limit is ${timedOutAfterMs / 1000} s`);
  if (branch && /Remote branch .* not found/i.test(text)) return new CloneFailedError(`branch ${JSON.stringify(branch)} does not exist in ${url}`);
  if (target.transport === 'ssh') {
    if (/Host key verification failed|host key is known|HOST IDENTIFICATION HAS CHANGED/i.test(text)) return new CloneFailedError(await unknownHostKey(target, knownHosts));
    if (/Permission denied \(publickey/i.test(text)) return new CloneFailedError(`${host} refused the project's deploy key: add its public key (GET /projects/:name shows deployKey.publicKey) to the repository as a deploy key, read access is enough`);
  }
  if (/could not read Username|Authentication failed|terminal prompts disabled|returned error: 40[13]\b/i.test(text)) {
    if (credential?.kind === 'token') return new CloneFailedError(`authentication failed for ${host} with the project's access token (user ${credential.auth.username}): check the token, that it has not expired, and that it may read ${url}`);
    return new CloneFailedError(`${url} asks for credentials: give the project gitAuth (a user name and an access token), or a deploy key and an SSH URL, to deploy a repository that is not public`);
  }
  if (/not found|does not appear to be a git repository|returned error: 404\b/i.test(text)) {
    // Forges answer 404 for a private repository the token may not read.
    if (credential?.kind === 'token') return new CloneFailedError(`${url} was not found on ${host}, or the project's access token (user ${credential.auth.username}) has no access to it`);
    return new CloneFailedError(`${url} is not a git repository that can be cloned (not found)`);
  }
  // The server's own words when it gave up (upload-pack: …), else git's last error line; the rest is progress noise.
  const errors = text.split('\n').map((l) => l.trim()).filter((l) => /^(fatal|error):/.test(l));
  const reason = errors.find((l) => /upload-pack: /.test(l)) ?? errors.pop() ?? text.trim().split('\n').pop();
  return new CloneFailedError(`cloning ${url} failed: ${reason}`);
}

/** The message for a host key SSH_KNOWN_HOSTS does not hold: the host, and the fingerprints it offers (read with ssh-keyscan). */
async function unknownHostKey(target: RepoTarget, knownHosts: string | undefined): Promise<string> {
  const alias = hostKeyAlias(target);
  const where = knownHosts ? `is not one SSH_KNOWN_HOSTS (${knownHosts}) trusts` : 'cannot be checked: SSH_KNOWN_HOSTS is not set, so no SSH host is trusted';
  let offered = 'its keys could not be read';
  try {
    const { stdout: keys } = await run('ssh-keyscan', ['-T', '5', '-p', String(target.port), target.address ?? target.host], { timeout: 10_000 });
    const fingerprints = await fingerprintsOf(keys);
    if (fingerprints.length > 0) offered = `it offers ${fingerprints.join(', ')}`;
  } catch {
    // The message says the keys could not be read.
  }
  return `the SSH host key of ${alias} ${where}; ${offered}. Check the fingerprint with the forge, then add its line (ssh-keyscan -p ${target.port} ${target.host}) to SSH_KNOWN_HOSTS`;
}

async function fingerprintsOf(keys: string): Promise<string[]> {
  if (!keys.trim()) return [];
  return new Promise((resolve) => {
    const child = execFile('ssh-keygen', ['-l', '-f', '-'], { timeout: 5000 }, (err, stdout) => {
      if (err) return resolve([]);
      // "256 SHA256:abc… 127.0.0.1 (ED25519)" → "ED25519 SHA256:abc…"
      resolve(stdout.trim().split('\n').map((l) => l.split(' ')).filter((f) => f.length >= 4).map((f) => `${f.at(-1)!.replace(/[()]/g, '')} ${f[1]}`));
    });
    child.stdin?.end(keys);
  });
}

// A real sshd for the deploy-key tests: Debian's openssh-server on a free loopback port, with a host
// key of its own, the authorized keys a test writes, and git-shell as the only command it runs (as a
// forge's ssh does). Needs root (sshd's privilege separation), as the suite runs in CI.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import getPort from 'get-port';

const run = promisify(execFile);

export interface SshServer {
  port: number;
  /** A known_hosts file that trusts this server's host key (as SSH_KNOWN_HOSTS). */
  knownHosts: string;
  /** Its host key's fingerprint, as ssh-keygen -l prints it (SHA256:…). */
  fingerprint: string;
  /** The ssh:// URL of a bare repository under `root` (an absolute path on this machine). */
  url(repoPath: string): string;
  /** Lets these public keys log in (replacing the ones before); none revokes every key. */
  authorize(...publicKeys: string[]): Promise<void>;
  close(): Promise<void>;
}

export async function startSshServer(dir: string): Promise<SshServer> {
  await mkdir(dir, { recursive: true });
  // sshd's privilege separation folder.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const hostKey = path.join(dir, 'host_ed25519');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  const authorized = path.join(dir, 'authorized_keys');
  await writeFile(authorized, '', { mode: 0o600 });
  const port = await getPort({ host: '127.0.0.1' });
  const config = path.join(dir, 'sshd_config');
  await writeFile(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      'PidFile none',
      `AuthorizedKeysFile ${authorized}`,
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'AllowUsers root',
      'ForceCommand /usr/bin/git-shell -c "$SSH_ORIGINAL_COMMAND"',
      'AllowTcpForwarding no',
      'X11Forwarding no',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  await waitForPort(port, child, () => stderr);
  const publicHostKey = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(' ').slice(0, 2).join(' ');
  const knownHosts = path.join(dir, 'known_hosts');
  await writeFile(knownHosts, `[127.0.0.1]:${port} ${publicHostKey}\n`);
  const { stdout } = await run('ssh-keygen', ['-l', '-f', `${hostKey}.pub`]);
  return {
    port,
    knownHosts,
    fingerprint: stdout.split(' ')[1]!,
    url: (repoPath) => `ssh://root@127.0.0.1:${port}${repoPath}`,
    authorize: (...keys) => writeFile(authorized, keys.map((k) => `${k.trim()}\n`).join(''), { mode: 0o600 }),
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function waitForPort(port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`sshd exited (${child.exitCode}): ${stderr()}`);
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd did not listen on ${port}: ${stderr()}`);
}

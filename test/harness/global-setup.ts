// Vitest global setup: the servers every test file shares, started once per run on free loopback
// ports — s3rver in a child process and a git smart-HTTP server over a folder of fixture repos.
// Each test file starts its own redis-server (see stack.ts), so files never share a queue.
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { spawnS3rver } from '../../dev/s3-server';
import { startGitServer } from './git-server';

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
    gitUrl: string;
    gitRoot: string;
    tmpRoot: string;
  }
}

export default async function setup(project: TestProject) {
  const tmpRoot = await mkdtemp(path.join(tmpdir(), 'slipway-test-'));
  await chmod(tmpRoot, 0o711); // passable for the unprivileged build user
  const s3 = await spawnS3rver({ directory: path.join(tmpRoot, 's3') });
  const git = await startGitServer(path.join(tmpRoot, 'git'));
  project.provide('s3Endpoint', s3.endpoint);
  project.provide('gitUrl', git.url);
  project.provide('gitRoot', git.root);
  project.provide('tmpRoot', tmpRoot);
  return async () => {
    await git.close();
    await s3.close();
    // A worker process a test killed leaves its build's disk mounted under the run's folder.
    const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').map((line) => line.split(' ')[1] ?? '');
    for (const at of mounts.filter((m) => m.startsWith(`${tmpRoot}/`)).reverse()) execFileSync('umount', ['-l', at]);
    await rm(tmpRoot, { recursive: true, force: true });
  };
}

// A build's disk: a loop-mounted filesystem of its own where the worker can make one, a watched
// folder elsewhere, and the leftovers of a worker that died (folder, mounted disk, image) collected
// by the next one. Real mounts: these run as root, as CI does.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Queue } from '@slipway/shared';
import { runCommand } from '../src/sandbox/run-command';
import { BuildLog } from '../src/deployment/build-log';
import { BuildDisk, collectLeftovers, detectDisk } from '../src/sandbox/disk';
import type { SandboxSupport } from '../src/sandbox/sandbox';
import { createWorkspace } from '../src/deployment/workspace';

const asRoot = process.getuid?.() === 0;
const MB = 1024 * 1024;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'slipway-disk-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const mounted = async () => (await readFile('/proc/self/mounts', 'utf8')).split('\n').filter((l) => l.includes(dir));

describe.runIf(asRoot)('build disks', () => {
  it('finds loop disks usable here', async () => {
    expect(await detectDisk(dir)).toEqual({ kind: 'loop' });
  });

  it('a loop disk refuses the write past its size, says so, and leaves nothing once removed', async () => {
    const ws = await createWorkspace(dir, 'loopdisk', { kind: 'loop', limits: { bytes: 32 * MB, inodes: 2000 } });
    expect(await mounted()).toHaveLength(1);
    expect(() => execFileSync('dd', ['if=/dev/zero', `of=${ws.tmp}/fill`, 'bs=1M', 'count=64'], { stdio: 'ignore' })).toThrow();
    expect(await ws.disk.exceeded()).toBe('disk');
    await ws.remove();
    expect(await mounted()).toEqual([]);
    expect((await readdir(dir)).filter((n) => n.includes('loopdisk'))).toEqual([]);
  });

  it('a watched disk stops the command that passes its cap', async () => {
    const ws = await createWorkspace(dir, 'watchdisk', { kind: 'watch', limits: { bytes: 16 * MB, inodes: 1000 } });
    try {
      const log = new BuildLog({ appendLog: async () => undefined } as unknown as Queue, 'x', 1_000_000);
      const support: SandboxSupport = { kind: 'off', caps: 'rlimit', cgroupRoots: [], relay: false };
      const script = `const fs = require('fs'); const b = Buffer.alloc(1 << 20); for (let i = 0; ; i++) { fs.writeFileSync('${ws.tmp}/f' + (i % 400), b); }`;
      const result = await runCommand(['node', '-e', script], log, {
        cwd: ws.src, ws, uid: null, support, caps: { memoryBytes: 2048 * MB, maxProcs: 512, maxFileBytes: 64 * MB }, egressSocket: '', etc: { passwd: '', group: '', hosts: '', resolv: '' },
        env: {}, tools: { root: dir, path: [] }, name: 'watch', timeoutMs: 30_000,
      });
      expect(result.capHit).toBe('disk');
      expect(result.timedOut).toBe(false);
    } finally {
      await ws.remove();
    }
  });

  it("collects what a dead worker left: its build folder, the disk mounted in it and that disk's image", async () => {
    const images = path.join(dir, 'images');
    await mkdir(images);
    // A pid no process has (pids stay far below this).
    const folder = path.join(dir, 'slipway-build-abcdefghijkl-99999999-Xy12Zw');
    await mkdir(folder);
    const disk = await BuildDisk.create('loop', folder, { bytes: 16 * MB, inodes: 1000 }, images);
    await writeFile(path.join(disk.root, 'left'), 'x');
    // A live worker's (the test runner's parent stands for it; a folder with our own pid is a predecessor's).
    const live = await mkdtemp(path.join(dir, `slipway-build-livelivelive-${process.ppid}-`));
    expect(await collectLeftovers(dir)).toBe(1);
    expect(await mounted()).toEqual([]);
    expect(await readdir(images)).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual(['images', path.basename(live)]);
  });
});

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leftoverFolders } from '../src/io/leftovers';

describe('leftoverFolders', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'leftovers-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("finds a dead process's folders and a predecessor's with our pid, never a live process's or our own", async () => {
    const dead = spawn('true');
    await new Promise((resolve) => dead.on('exit', resolve));
    const made = async (name: string, ageMs = 0) => {
      await mkdir(path.join(dir, name));
      if (ageMs > 0) await utimes(path.join(dir, name), new Date(Date.now() - ageMs), new Date(Date.now() - ageMs));
      return path.join(dir, name);
    };
    const deadOne = await made(`slipway-x-abc-${dead.pid}-Ab12Cd`);
    await made(`slipway-x-abc-${process.ppid}-Ab12Cd`); // a live process's
    await made(`slipway-x-${process.pid}-Ef34Gh`); // ours, made now
    const predecessor = await made(`slipway-x-${process.pid}-Ij56Kl`, process.uptime() * 1000 + 60_000);
    await made('slipway-x-Mn78Op', 3600_000); // unnamed, an hour old: kept
    const unnamedOld = await made('slipway-x-Qr90St', 25 * 3600_000);
    await made(`other-${dead.pid}-Ab12Cd`);
    expect((await leftoverFolders(dir, 'slipway-x-')).sort()).toEqual([deadOne, predecessor, unnamedOld].sort());
  });
});

// The queue's order and exclusivity: first in, first out with one worker; with three workers on
// one list, every id is taken exactly once.
import { afterEach, describe, expect, it } from 'vitest';
import { Queue } from '@slipway/shared';
import { startStack, type Stack } from './harness/stack';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

describe('build-queue', () => {
  it('hands ids to a single worker in the order they were queued (FIFO)', async () => {
    stack = await startStack({ workers: 0 });
    const repoUrl = await stack.repo('fifo', { 'index.html': 'x' });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await stack.deploy({ repoUrl }));
    expect(await stack.redis.lRange('build-queue', 0, -1)).toEqual([...ids].reverse());

    await stack.startWorker();
    const records = await Promise.all(ids.map((id) => stack!.waitFor(id)));
    const byStart = [...records].sort((a, b) => a.startedAt!.localeCompare(b.startedAt!)).map((r) => r.id);
    expect(byStart).toEqual(ids);
  });

  it('gives every id to exactly one of three workers', async () => {
    stack = await startStack({ workers: 0 });
    const repoUrl = await stack.repo('three', { 'index.html': 'x' });
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push(await stack.deploy({ repoUrl }));
    await Promise.all([stack.startWorker(), stack.startWorker(), stack.startWorker()]);
    const records = await Promise.all(ids.map((id) => stack!.waitFor(id)));
    expect(records.map((r) => r.status)).toEqual(ids.map(() => 'deployed'));
    // attempts counts every start: 1 means no id was ever built twice.
    expect(records.map((r) => r.attempts)).toEqual(ids.map(() => 1));
    expect(new Set(records.map((r) => r.worker)).size).toBeGreaterThan(1);
    expect(await stack.queue.stats()).toMatchObject({ waiting: 0, processing: 0, delayed: 0, dead: 0 });
  });

  it('blocks on BLMOVE for its whole timeout without tripping the client command timeout', async () => {
    stack = await startStack({ workers: 0 });
    const conn = stack.redis.duplicate();
    await conn.connect();
    try {
      const started = Date.now();
      expect(await Queue.claim(conn, 'probe', 2)).toBeNull();
      expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
      // While one connection blocks, the shared client still answers.
      const blocked = Queue.claim(conn, 'probe', 2);
      expect(await stack.redis.ping()).toBe('PONG');
      await stack.redis.lPush('build-queue', 'first');
      expect(await blocked).toBe('first');
      expect(await stack.redis.lRange('build-queue:processing:probe', 0, -1)).toEqual(['first']);
    } finally {
      conn.destroy();
    }
  });
});

describe('costs independent of history', () => {
  it('readiness, /queue, /metrics and the reaper scan nothing with 100,000 deployments in Redis', { timeout: 120_000 }, async () => {
    stack = await startStack({ workers: 1 });
    const s = stack;
    for (let batch = 0; batch < 100; batch++) {
      const multi = s.redis.multi();
      for (let i = 0; i < 1000; i++) {
        const id = `hist${String(batch * 1000 + i).padStart(8, '0')}`;
        multi.hSet(`deployment:${id}`, { id, repoUrl: 'https://git.example.com/site.git', status: 'deployed', attempts: '1', createdAt: new Date().toISOString(), url: `http://${id}.localhost/` });
        multi.zAdd('deployments', { score: batch * 1000 + i, value: id });
      }
      await multi.exec();
    }
    await s.redis.configResetStat();
    const timed = async (what: string, call: () => Promise<unknown>) => {
      const started = performance.now();
      await call();
      return `${what} ${(performance.now() - started).toFixed(1)} ms`;
    };
    const figures = [
      await timed('/readyz', () => fetch(`${s.api}/readyz`).then((r) => r.json())),
      await timed('/queue', () => fetch(`${s.api}/queue`).then((r) => r.json())),
      await timed('/metrics', () => fetch(`${s.api}/metrics`).then((r) => r.text())),
      await timed('a reaper pass', () => s.queue.recoverOrphans(5, 1000)),
    ];
    console.log(`with 100,000 deployments in Redis: ${figures.join(', ')}`);
    const stats = await s.redis.info('commandstats');
    expect(stats).not.toMatch(/cmdstat_scan:/);
    expect(stats).not.toMatch(/cmdstat_keys:/);
    expect((await (await fetch(`${s.api}/queue`)).json()) as { workers: unknown[] }).toMatchObject({ waiting: 0, processing: 0, workers: [expect.objectContaining({ current: null })] });
  });
});

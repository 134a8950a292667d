// Platform outages: Redis restarted in the middle of a run, S3 unreachable for a while or for good.
import path from 'node:path';
import getPort from 'get-port';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { spawnS3rver, type S3Server } from '../dev/s3-server';
import { startRedisServer } from '../dev/redis-server';
import { slowBuild, staticSite } from './harness/fixtures';
import { startStack, startStackOn, type Stack } from './harness/stack';
import { waitUntil } from './harness/worker-process';
import { startLossyProxy } from './harness/lossy-proxy';

const FAST = { HEARTBEAT_TTL_SECONDS: '2', REAPER_INTERVAL_SECONDS: '1', RETRY_BASE_MS: '300' };

let stack: Stack | undefined;
let s3: S3Server | undefined;
afterEach(async () => {
  await stack?.close();
  await s3?.close();
  stack = undefined;
  s3 = undefined;
});

/** A stack on an s3rver of its own, which the test can stop and start again on the same port and folder. */
async function stackWithOwnS3(env: Record<string, string>) {
  const directory = path.join(inject('tmpRoot'), `own-s3-${Date.now()}`);
  const port = await getPort();
  s3 = await spawnS3rver({ directory, port });
  stack = await startStackOn({ s3Endpoint: s3.endpoint, gitUrl: inject('gitUrl'), gitRoot: inject('gitRoot'), tmpRoot: inject('tmpRoot') }, { workers: 0, env });
  return {
    stop: () => s3!.close(),
    start: async () => {
      s3 = await spawnS3rver({ directory, port });
    },
  };
}

describe('Redis restarts', () => {
  it('a run survives redis-server being stopped and started again (AOF on)', async () => {
    stack = await startStack({ workers: 0, env: FAST });
    const repoUrl = await stack.repo('restart', slowBuild(1500));
    const ids = [await stack.deploy({ repoUrl }), await stack.deploy({ repoUrl }), await stack.deploy({ repoUrl })];
    // The worker starts once all three are queued, so the first build is surely running when Redis stops
    // (on a loaded machine three POSTs can take longer than a build).
    await stack.startWorker();
    await stack.waitFor(ids[0]!, ['building']);

    const { port } = stack.redisServer;
    await stack.redisServer.stop();
    // The API says so while Redis is away…
    expect((await stack.post('/deploy', { repoUrl })).status).toBe(503);
    // …long enough for the running build to print its last lines and publish meanwhile.
    await new Promise((r) => setTimeout(r, 2500));
    stack.redisServer = await startRedisServer({ port, dir: path.join(stack.config.workDir!, 'redis') });

    // …and everything queued before the restart still deploys, its log whole: the lines printed while
    // Redis was away are in the stream too (on main they were dropped), as in the copy kept in S3.
    for (const id of ids) {
      const record = await stack.waitFor(id, ['deployed', 'failed'], 60_000);
      expect(record.status, record.error).toBe('deployed');
      const stored = (await stack.storage.getText(`logs/${id}.log`, 1 << 20))!.trimEnd().split('\n');
      const streamed = (await stack.queue.readLog(id)).lines;
      expect(streamed, id).toEqual(stored);
    }
    expect(await stack.queue.stats()).toMatchObject({ waiting: 0, processing: 0, delayed: 0, dead: 0 });
  });
});

describe('S3 outages', () => {
  it('a worker retries a platform error with backoff and succeeds once S3 is back', async () => {
    const storage = await stackWithOwnS3({ ...FAST, MAX_ATTEMPTS: '10' });
    const id = await stack!.deploy({ repoUrl: await stack!.repo('s3-retry', staticSite()) });
    await storage.stop();
    await stack!.startWorker();

    await waitUntil('a second attempt after a platform error', async () => {
      const record = await stack!.queue.get(id);
      return record && record.attempts >= 2 ? record : undefined;
    });
    const { lines } = await stack!.queue.readLog(id);
    expect(lines.filter((l) => l.startsWith('[slipway] platform error')).length).toBeGreaterThanOrEqual(1);
    await storage.start();

    const record = await stack!.waitFor(id, ['deployed', 'failed'], 60_000);
    expect(record.status, record.error).toBe('deployed');
    expect(record.attempts).toBeGreaterThanOrEqual(2);
    expect((await stack!.site(id, '/')).body.toString()).toContain('Home');
  });

  it('an outage as long, for its retry settings, as 5 minutes is for the defaults leaves every deployment deployed', { timeout: 90_000 }, async () => {
    // RETRY_BASE_MS 300 is the default 10 s scaled by 0.03, so 9 s here stand for 5 minutes; the
    // attempts are the default (MAX_ATTEMPTS=8). With the old default of 5 attempts the waits added up
    // to 2.25–4.5 s here (75–150 s unscaled), and the deployments failed (seen: "gave up after 5 attempts").
    const storage = await stackWithOwnS3({ HEARTBEAT_TTL_SECONDS: '2', REAPER_INTERVAL_SECONDS: '1', RETRY_BASE_MS: '300' });
    const repoUrl = await stack!.repo('s3-long', staticSite());
    const ids = [await stack!.deploy({ repoUrl }), await stack!.deploy({ repoUrl }), await stack!.deploy({ repoUrl })];
    await storage.stop();
    await stack!.startWorker({ slots: 2 });
    const down = Date.now();
    await waitUntil('every deployment to have failed an attempt', async () => ((await Promise.all(ids.map((id) => stack!.queue.get(id)))).every((r) => (r?.attempts ?? 0) >= 2) ? true : undefined));
    await new Promise((r) => setTimeout(r, Math.max(0, 9_000 - (Date.now() - down))));
    await storage.start();
    for (const id of ids) {
      const record = await stack!.waitFor(id, ['deployed', 'failed'], 60_000);
      expect(record.status, record.error).toBe('deployed');
      expect(record.attempts).toBeGreaterThan(2);
    }
  });

  it('an id whose attempts run out lands in build-queue:dead with the reason', async () => {
    const storage = await stackWithOwnS3({ ...FAST, MAX_ATTEMPTS: '2', RETRY_BASE_MS: '100' });
    const id = await stack!.deploy({ repoUrl: await stack!.repo('s3-dead', staticSite()) });
    await storage.stop();
    await stack!.startWorker();

    const record = await stack!.waitFor(id, ['failed', 'deployed'], 60_000);
    expect(record).toMatchObject({ status: 'failed', attempts: 2 });
    expect(record.error).toMatch(/^gave up after 2 attempts: platform error/);
    expect(await stack!.queue.dead()).toEqual([{ id, reason: record.error, at: record.finishedAt }]);
    expect(await stack!.queue.stats()).toMatchObject({ waiting: 0, processing: 0, delayed: 0, dead: 1 });
    await storage.start();
  });
});

describe('a silent S3 (it takes connections and never answers)', () => {
  it('a build gives up its attempt naming S3, /readyz answers within 2 s naming s3, a site read answers 503', { timeout: 90_000 }, async () => {
    // The proxy forwards every request to the run's s3rver and, once silenced, passes no answer back.
    const proxy = await startLossyProxy(Number(new URL(inject('s3Endpoint')).port));
    const s3Endpoint = `http://127.0.0.1:${new URL(proxy.url).port}`;
    try {
      stack = await startStackOn(
        { s3Endpoint, gitUrl: inject('gitUrl'), gitRoot: inject('gitRoot'), tmpRoot: inject('tmpRoot') },
        { workers: 1, env: { S3_TIMEOUT_SECONDS: '2', RETRY_BASE_MS: '60000', SITE_CACHE_MB: '0' } },
      );
      const served = await stack.deploy({ repoUrl: await stack.repo('silent-served', staticSite()) });
      expect((await stack.waitFor(served)).status).toBe('deployed');
      expect((await stack.site(served, '/')).status).toBe(200); // its manifest is now in memory
      for (const worker of stack.workers.splice(0)) await worker.close();
      const id = await stack.deploy({ repoUrl: await stack.repo('silent-build', staticSite()) });

      proxy.silence();
      let started = Date.now();
      const ready = await fetch(`${stack.api}/readyz`);
      const readyMs = Date.now() - started;
      expect(readyMs).toBeLessThan(2000);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ redis: 'ok', s3: 'unavailable' });

      started = Date.now();
      const file = await stack.site(served, '/css/site.css');
      const siteMs = Date.now() - started;
      expect(siteMs).toBeLessThan(12_000);
      expect(file.status).toBe(503);
      expect(JSON.parse(file.body.toString()).error.message).toMatch(/^object storage \(S3\) is unavailable/);

      started = Date.now();
      await stack.startWorker();
      const record = await waitUntil('the attempt to give up', async () => {
        const r = await stack!.queue.get(id);
        return r?.error ? r : undefined;
      }, 30_000);
      console.log(`silent S3 (S3_TIMEOUT_SECONDS=2): /readyz ${readyMs} ms, a site file ${siteMs} ms, a build's attempt ${Date.now() - started} ms`);
      expect(record).toMatchObject({ status: 'queued', attempts: 1 });
      expect(record.error).toMatch(/^attempt 1 failed: platform error: object storage \(S3\) is unavailable \(no answer in time\); retrying$/);
    } finally {
      await proxy.close();
    }
  });
});

// Ownership end to end: immutable output per build (a redeploy keeps the old site up, a refused
// duplicate leaves no trace), an enqueue whose reply was lost, and a fleet of worker processes
// riding out a Redis outage longer than the heartbeat TTL without building anything twice.
import path from 'node:path';
import pLimit from 'p-limit';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { QUEUE_SCRIPTS, Queue, createRedis, siteKeys, storageKeys, type Logger, type Redis } from '@slipway/shared';
import { startWorker } from '../deploy-service/src/queue/worker';
import { janitorPass } from '../deploy-service/src/retention/janitor';
import { createDeployment } from '../upload-service/src/deploy/deploy';
import { startRedisServer } from '../dev/redis-server';
import { slowBuild, staticSite } from './harness/fixtures';
import { startLossyProxy, type LossyProxy } from './harness/lossy-proxy';
import { BUILD_START_LINE, startStack, type Stack } from './harness/stack';
import { spawnWorkerProcess, waitUntil, type WorkerProcess } from './harness/worker-process';

let stack: Stack | undefined;
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  await stack?.close();
  stack = undefined;
});

/** A build command (argv) that waits `ms`, then writes dist/index.html with `text`. */
const writes = (text: string, ms = 0) => ['node', '-e', `setTimeout(() => { require('fs').mkdirSync('dist'); require('fs').writeFileSync('dist/index.html', ${JSON.stringify(text)}); }, ${ms})`];

/** The builds under dist/<id>/ (each with its variant and manifest folders). */
async function builds(s: Stack, id: string): Promise<string[]> {
  const found = new Set<string>();
  for await (const folder of s.storage.listFolders(`${storageKeys.dist(id)}/`)) found.add(siteKeys.buildOf(folder));
  return [...found];
}

describe('immutable output', () => {
  it('a redeploy keeps the old site up until the new build is complete, then removes the old build (skew protection off)', async () => {
    stack = await startStack({ workers: 1, env: { SKEW_PROTECTION_HOURS: '0' } });
    const s = stack;
    const id = await s.deploy({ repoUrl: await s.repo('redeploy-live', staticSite()), buildCommand: writes('version one') });
    const first = await s.waitFor(id);
    expect(first.status, first.error).toBe('deployed');
    expect((await s.site(id, '/')).body.toString()).toBe('version one');

    await s.redis.hSet(`deployment:${id}`, 'buildCommand', JSON.stringify(writes('version two', 2500)));
    expect((await s.post(`/deployments/${id}/redeploy`)).status).toBe(202);
    await s.waitFor(id, ['building']);
    // Throughout the new build, the old one answers.
    while ((await s.queue.get(id))?.status === 'building') {
      const res = await s.site(id, '/');
      expect(res.status).toBe(200);
      expect(['version one', 'version two']).toContain(res.body.toString());
      await new Promise((r) => setTimeout(r, 100));
    }
    const second = await s.waitFor(id);
    expect(second.status, second.error).toBe('deployed');
    expect(second.liveBuild).not.toBe(first.liveBuild);
    expect((await s.site(id, '/')).body.toString()).toBe('version two');
    await expect.poll(() => builds(s, id), { timeout: 10_000 }).toEqual([second.liveBuild]); // removed just after the switch
  });

  it('with skew protection, a redeploy\'s replaced build stays for the window, and the janitor removes it after', async () => {
    stack = await startStack({ workers: 1 });
    const s = stack;
    const id = await s.deploy({ repoUrl: await s.repo('redeploy-skew', staticSite()), buildCommand: writes('version one') });
    const first = await s.waitFor(id);
    expect((await s.post(`/deployments/${id}/redeploy`)).status).toBe(202);
    await s.waitFor(id, ['building']);
    const second = await s.waitFor(id, ['deployed', 'failed']);
    expect(second.liveBuild).not.toBe(first.liveBuild);
    expect((await builds(s, id)).sort()).toEqual([first.liveBuild, second.liveBuild].sort());
    expect(await s.redis.zRange('builds:retired', 0, -1)).toEqual([`${id}/${first.liveBuild}`]);
    // Within the window the janitor leaves it; past it, it goes, and the live build stays.
    const deps = { config: s.config, redis: s.redis, storage: s.storage, logger: pino({ level: 'silent' }), projects: s.queue.projects };
    await janitorPass(deps);
    expect(await builds(s, id)).toHaveLength(2);
    await janitorPass(deps, Date.now() + s.config.skew.ms + 60_000);
    expect(await builds(s, id)).toEqual([second.liveBuild]);
    expect(await s.redis.zCard('builds:retired')).toBe(0);
  });

  it('a stale duplicate build whose outcome is refused leaves nothing behind, and the live site is the owner\'s', async () => {
    stack = await startStack({ workers: 0 });
    const s = stack;
    const stale = await s.startWorker({ name: 'stale' });
    const id = await s.deploy({ repoUrl: await s.repo('stale-dup', staticSite()), buildCommand: writes('from the stale build', 3000) });
    const building = await s.waitFor(id, ['building']);
    expect(building.worker).toBe('stale-0');

    // What a reaper does to a slot it believes dead: its id goes back on the list (as RECOVER does).
    await s.redis
      .multi()
      .lRem('build-queue:processing:stale-0', 0, id)
      .hSet(`deployment:${id}`, { status: 'queued', buildCommand: JSON.stringify(writes('from the owner')) })
      .hDel(`deployment:${id}`, 'worker')
      .rPush('build-queue', id)
      .exec();
    await s.startWorker({ name: 'owner' });
    const record = await s.waitFor(id, ['deployed']);
    expect(record.worker).toBe('owner-0');
    expect((await s.site(id, '/')).body.toString()).toBe('from the owner');

    // The stale build finishes later; its outcome is refused and its output removed.
    await waitUntil('the stale slot to go idle', async () => (stale.slots[0]!.current === null ? true : undefined), 15_000);
    expect(await s.queue.get(id)).toMatchObject({ status: 'deployed', worker: 'owner-0', liveBuild: record.liveBuild });
    expect((await s.site(id, '/')).body.toString()).toBe('from the owner');
    await expect.poll(() => builds(s, id), { timeout: 10_000 }).toEqual([record.liveBuild]);
    expect(await s.queue.stats()).toMatchObject({ waiting: 0, processing: 0, delayed: 0 });
  });
});

/** A stack without workers, and a Redis client to it through a proxy that can lose replies. */
async function behindLossyProxy(): Promise<{ s: Stack; proxy: LossyProxy; client: Redis; logger: Logger }> {
  stack = await startStack({ workers: 0 });
  const proxy = await startLossyProxy(stack.redisServer.port);
  cleanup.push(() => proxy.close());
  const logger = pino({ level: 'silent' });
  const client: Redis = createRedis(proxy.url, logger);
  await client.connect();
  cleanup.push(async () => client.destroy());
  return { s: stack, proxy, client, logger };
}

describe('enqueue', () => {
  it('an enqueue whose reply was lost is confirmed, not undone: the deployment is queued once and its source kept', async () => {
    const { s, proxy, client, logger } = await behindLossyProxy();
    const queue = new Queue(client);
    await queue.enqueue('warmup000001'); // loads the script, so the real call below runs it (EVALSHA) at once
    const repoUrl = await s.repo('lost-enqueue', staticSite());

    proxy.loseReplyTo('build-queue');
    const record = await createDeployment({ config: s.config, queue, storage: s.storage, logger, redisReady: () => true, clones: pLimit(1) }, { repoUrl });
    expect(record.status).toBe('queued');
    expect(await s.redis.lRange('build-queue', 0, -1)).toEqual([record.id]);
    expect(await s.queue.get(record.id)).toMatchObject({ status: 'queued', sourceFiles: Object.keys(staticSite()).length });
    expect(await s.redis.ttl(`deployment:${record.id}`)).toBe(-1);

    await s.startWorker();
    expect((await s.waitFor(record.id)).status).toBe('deployed');
  });
});

describe('settle', () => {
  it('a settle whose reply was lost is recorded, not undone: the site stays up and its build is kept', async () => {
    const { s, proxy, client, logger } = await behindLossyProxy();
    // Loads the script, so the worker's SETTLE runs as EVALSHA <this sha>, the marker below.
    await new Queue(client).finish('warmup000001', 'nobody', { liveBuild: 'warmup00' });
    const settleSha = createHash('sha1').update(QUEUE_SCRIPTS.LUA_HELPERS! + QUEUE_SCRIPTS.SETTLE_SCRIPT!).digest('hex');
    const worker = await startWorker({ config: s.config, redis: client, storage: s.storage, logger, name: 'lossy' });
    cleanup.push(() => worker.close({ force: true }));

    proxy.loseReplyTo(settleSha);
    const id = await s.deploy({ repoUrl: await s.repo('lost-settle', staticSite()) });
    const record = await s.waitFor(id);
    expect(record.status, record.error).toBe('deployed');
    // The slot is done with it (its repeated settle answered, its clean-up run).
    await waitUntil('the slot to be idle', async () => (worker.slots[0]!.current === null ? true : undefined));
    expect(await builds(s, id)).toEqual([record.liveBuild]);
    expect((await s.site(id, '/')).status).toBe(200);
    expect(await s.queue.stats()).toMatchObject({ waiting: 0, processing: 0 });
  });
});

describe('a Redis outage longer than the heartbeat TTL', () => {
  it('three worker processes ride it out: each deployment ends deployed once, in no list, built once, none reaped', { timeout: 120_000 }, async () => {
    // The outage (8 s) is longer than the TTL (6 s), so every heartbeat lapses; each reaper then waits a
    // whole TTL after reconnecting, long enough for the other processes to beat again.
    const env = { HEARTBEAT_TTL_SECONDS: '6', REAPER_INTERVAL_SECONDS: '1', RETRY_BASE_MS: '200' };
    stack = await startStack({ workers: 0, env });
    const s = stack;
    const workers: WorkerProcess[] = [];
    for (let i = 0; i < 3; i++) workers.push(spawnWorkerProcess(s.env));
    cleanup.push(() => Promise.all(workers.map((w) => w.kill('SIGKILL'))));
    await Promise.all(workers.map((w) => w.ready()));

    const slow = await s.repo('outage-slow', slowBuild(10_000));
    const fast = await s.repo('outage-fast', staticSite());
    const ids = [await s.deploy({ repoUrl: slow }), await s.deploy({ repoUrl: slow }), await s.deploy({ repoUrl: slow })];
    for (let i = 0; i < 3; i++) ids.push(await s.deploy({ repoUrl: fast }));
    await waitUntil('three builds running', async () => ((await s.queue.stats()).workers.filter((w) => w.current).length === 3 ? true : undefined));

    const { port } = s.redisServer;
    await s.redisServer.stop();
    await new Promise((r) => setTimeout(r, 8000));
    s.redisServer = await startRedisServer({ port, dir: path.join(s.config.workDir!, 'redis') });

    for (const id of ids) {
      const record = await s.waitFor(id, ['deployed', 'failed', 'canceled'], 60_000);
      expect(record.status, `${id}: ${record.error}`).toBe('deployed');
      expect(record.attempts, `${id} was built again: ${record.error}`).toBe(1);
      const starts = (await s.queue.readLog(id)).lines.filter((l) => BUILD_START_LINE.test(l));
      expect(starts, id).toHaveLength(1);
      await expect.poll(() => builds(s, id), { timeout: 10_000 }).toEqual([record.liveBuild]);
    }
    expect(await s.queue.stats()).toMatchObject({ waiting: 0, processing: 0, delayed: 0, dead: 0 });
    const reaped = workers.flatMap((w) => w.logs.filter((l) => l.msg === REAPED));
    expect(reaped).toEqual([]);
  });

  it('a reaper judges heartbeats only after it has been connected for a whole TTL', { timeout: 60_000 }, async () => {
    // A worker whose heartbeat lapsed (frozen through an outage) is back 2 s after a new worker
    // connected: the newcomer must not have taken its build by then.
    const env = { HEARTBEAT_TTL_SECONDS: '4', REAPER_INTERVAL_SECONDS: '1' };
    stack = await startStack({ workers: 0, env });
    const s = stack;
    const frozen = spawnWorkerProcess(s.env);
    cleanup.push(() => frozen.kill('SIGKILL'));
    await frozen.ready();
    const id = await s.deploy({ repoUrl: await s.repo('frozen', slowBuild(6000)) });
    await s.waitFor(id, ['building']);
    process.kill(frozen.pid, 'SIGSTOP');
    cleanup.push(async () => process.kill(frozen.pid, 'SIGCONT'));
    for (const key of await s.redis.keys('build-queue:heartbeat:*')) await s.redis.del(key);

    const newcomer = spawnWorkerProcess(s.env);
    cleanup.push(() => newcomer.kill('SIGKILL'));
    await newcomer.ready();
    await new Promise((r) => setTimeout(r, 2000));
    process.kill(frozen.pid, 'SIGCONT');

    const record = await s.waitFor(id);
    expect(record.status, record.error).toBe('deployed');
    expect(record.attempts).toBe(1);
    expect(record.worker).toContain(`-${frozen.pid}-`);
    expect(newcomer.logs.filter((l) => l.msg === REAPED)).toEqual([]);
  });
});

const REAPED = 'recovered the deployments of workers that stopped responding';

// The queue protocol, driven verb by verb on a real redis-server: every interleaving in which an id
// could end up with two owners, with none, or stranded in a live slot's list. No sleeps: each step
// is awaited, so the order is the test's.
import path from 'node:path';
import getPort from 'get-port';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { ClaimStalledError, Queue, createRedis, duplicateRedis, isRedisUnavailable, newDeploymentId, type DeploymentRecord, type Redis } from '@slipway/shared';
import { startRedisServer, type RedisServer } from '../dev/redis-server';
import { startLossyProxy, type LossyProxy } from './harness/lossy-proxy';

const MAX_ATTEMPTS = 3;
const logger = pino({ level: 'silent' });

let server: RedisServer;
let redis: Redis;
let blocking: Redis;
let queue: Queue;
const extra: { close(): Promise<unknown> }[] = [];

beforeAll(async () => {
  const port = await getPort();
  server = await startRedisServer({ port, dir: path.join(inject('tmpRoot'), `protocol-${process.pid}`) });
  redis = createRedis(server.url, logger);
  blocking = duplicateRedis(redis, logger, 'blocking');
  await Promise.all([redis.connect(), blocking.connect()]);
  queue = new Queue(redis);
});
afterAll(async () => {
  redis.destroy();
  blocking.destroy();
  await server.stop();
});
// Our own server, started above: flushing it is safe.
beforeEach(async () => {
  await redis.flushAll();
});
afterEach(async () => {
  for (const thing of extra.splice(0)) await thing.close();
});

/** A deployment as the upload-service leaves it: recorded, uploaded, queued. */
async function queued(): Promise<string> {
  const id = newDeploymentId();
  const record: DeploymentRecord = { id, repoUrl: 'https://git.example.com/site.git', status: 'uploading', attempts: 0, createdAt: new Date().toISOString(), url: `http://${id}.localhost/` };
  await queue.createUploading(record);
  expect(await queue.enqueue(id)).toBe('queued');
  return id;
}

/** Polls `check` until it is true or `ms` pass. */
async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) if (await check()) return true;
  return false;
}

const claim = (slot: string) => Queue.claim(blocking, slot, 1);
const waiting = () => redis.lRange('build-queue', 0, -1);
const held = (slot: string) => redis.lRange(`build-queue:processing:${slot}`, 0, -1);
const record = async (id: string) => (await queue.get(id))!;
const alive = (slot: string) => queue.heartbeat(slot, null, new Date(), 60);
/** What a slot's heartbeat expiring leaves: no heartbeat, and the slot due in the slots set. */
const expire = (slot: string) => redis.multi().del(`build-queue:heartbeat:${slot}`).zAdd('build-queue:slots', { score: 0, value: slot }).exec();
/** An id left in a slot's processing list (as a claim leaves it: the slot listed in the slots set). */
const strand = (slot: string, id: string) => redis.multi().lPush(`build-queue:processing:${slot}`, id).zAdd('build-queue:slots', { score: 0, value: slot }, { condition: 'NX' }).exec();

/** Every list and set empty: the state at the end of any run. */
async function nothingLeft(): Promise<void> {
  expect(await queue.stats()).toMatchObject({ waiting: 0, processing: 0, delayed: 0 });
}

describe('claim → start: only the slot that holds an id may start it', () => {
  it('a slot whose id was recovered during an outage cannot start it; the slot that claims it next builds it alone', async () => {
    const id = await queued();
    expect(await claim('A')).toBe(id);
    // A's heartbeat lapsed (Redis was away longer than the TTL): B's reaper takes the id back.
    await alive('B');
    expect(await queue.recoverOrphans(MAX_ATTEMPTS, 1000, new Set(['B']))).toMatchObject({ requeued: 1 });
    expect(await waiting()).toEqual([id]);

    // A's START arrives late: it holds nothing, so it starts nothing.
    expect(await queue.start(id, 'A')).toBe('owned-elsewhere');
    expect(await record(id)).toMatchObject({ status: 'queued', attempts: 0 });

    expect(await claim('B')).toBe(id);
    expect(await queue.start(id, 'B')).toBe('started');
    expect(await queue.finish(id, 'A', { liveBuild: 'aaaaaaaa' })).toMatchObject({ recorded: false });
    expect(await queue.finish(id, 'B', { liveBuild: 'bbbbbbbb' })).toMatchObject({ recorded: true });
    expect(await record(id)).toMatchObject({ status: 'deployed', attempts: 1, worker: 'B', liveBuild: 'bbbbbbbb' });
    await nothingLeft();
  });

  it('a second copy of a building id is dropped by the slot that claims it', async () => {
    const id = await queued();
    await redis.lPush('build-queue', id); // a duplicate, as a hand-pushed id or a lost reply would leave
    expect(await claim('A')).toBe(id);
    expect(await queue.start(id, 'A')).toBe('started');
    expect(await claim('B')).toBe(id);
    expect(await queue.start(id, 'B')).toBe('owned-elsewhere');
    expect(await held('B')).toEqual([]);
    expect(await record(id)).toMatchObject({ status: 'building', worker: 'A', attempts: 1 });
  });

  it('a retried START (its reply was lost) does not count the attempt twice', async () => {
    const id = await queued();
    await claim('A');
    expect(await queue.start(id, 'A')).toBe('started');
    expect(await queue.start(id, 'A')).toBe('started');
    expect(await record(id)).toMatchObject({ status: 'building', attempts: 1 });
  });

  it('a "building" record whose owner no longer holds the id (a lost write) is taken over', async () => {
    const id = await queued();
    await redis.hSet(`deployment:${id}`, { status: 'building', worker: 'gone', attempts: '1' });
    expect(await claim('B')).toBe(id);
    expect(await queue.start(id, 'B')).toBe('started');
    expect(await record(id)).toMatchObject({ status: 'building', worker: 'B', attempts: 2 });
  });

  it('finished, canceled and unknown ids are dropped or buried at START', async () => {
    const done = await queued();
    await redis.hSet(`deployment:${done}`, 'status', 'deployed');
    await redis.lPush('build-queue', 'nosuchid0001');
    expect(await claim('A')).toBe(done);
    expect(await queue.start(done, 'A')).toBe('dropped');
    expect(await claim('A')).toBe('nosuchid0001');
    expect(await queue.start('nosuchid0001', 'A')).toBe('missing');
    expect(await queue.dead()).toEqual([{ id: 'nosuchid0001', reason: 'no deployment record for this id', at: expect.stringMatching(/^\d{4}-/) }]);
    expect(await held('A')).toEqual([]);
  });
});

describe('an idle slot holds nothing: its sweep takes back what was stranded', () => {
  it('a claim whose reply was lost (connection reset) goes back to the front of the line', async () => {
    const proxy: LossyProxy = await startLossyProxy(server.port);
    extra.push(proxy);
    const conn = createRedis(proxy.url, logger, 'lossy');
    await conn.connect();
    extra.push({ close: async () => conn.destroy() });
    const first = await queued();
    const second = await queued();

    proxy.loseReplyTo('BLMOVE');
    await expect(Queue.claim(conn, 'A', 1)).rejects.toThrow();
    // Redis moved it; A never heard. It sits in A's list while A's heartbeat is alive.
    expect(await held('A')).toEqual([first]);

    expect(await queue.sweep('A', MAX_ATTEMPTS)).toEqual({ requeued: 1, dead: 0, dropped: 0 });
    expect(await held('A')).toEqual([]);
    expect(await waiting()).toEqual([second, first]);
    expect(await claim('A')).toBe(first);
    expect(await record(first)).toMatchObject({ status: 'queued', attempts: 0 });
  });

  it('a claim on a connection that went silent is given up by its watchdog, and its id taken back', { timeout: 20_000 }, async () => {
    const proxy = await startLossyProxy(server.port);
    extra.push(proxy);
    // A slot's own connection, as the worker makes it (duplicateRedis: the claim's watchdog is its deadline).
    const conn = duplicateRedis(createRedis(proxy.url, logger, 'base'), logger, 'silent');
    await conn.connect();
    extra.push({ close: async () => conn.destroy() });
    proxy.silence();
    const claimed = Queue.claim(conn, 'A', 1);
    const id = await queued();
    await expect(claimed).rejects.toBeInstanceOf(ClaimStalledError);
    expect(await held('A')).toEqual([id]);
    expect(await queue.sweep('A', MAX_ATTEMPTS)).toMatchObject({ requeued: 1 });
    expect(await waiting()).toEqual([id]);
  });

  it('a build whose outcome was never recorded (Redis away too long, or the AOF lost it) is built again, its attempt counted', async () => {
    const id = await queued();
    await claim('A');
    await queue.start(id, 'A');
    // …the outcome was never written; A is idle again.
    expect(await queue.sweep('A', MAX_ATTEMPTS)).toEqual({ requeued: 1, dead: 0, dropped: 0 });
    expect(await record(id)).toMatchObject({ status: 'queued', attempts: 1, error: `worker A lost track of it; retrying` });
    expect(await claim('B')).toBe(id);
    expect(await queue.start(id, 'B')).toBe('started');
    expect((await record(id)).attempts).toBe(2);
  });

  it('a stranded copy of an id that already waits elsewhere is dropped, not doubled', async () => {
    const id = await queued();
    await strand('A', id);
    expect(await queue.sweep('A', MAX_ATTEMPTS)).toEqual({ requeued: 0, dead: 0, dropped: 1 });
    expect(await waiting()).toEqual([id]);
  });

  it('a stranded build on its last attempt goes to the dead list', async () => {
    const id = await queued();
    await redis.hSet(`deployment:${id}`, 'attempts', String(MAX_ATTEMPTS - 1));
    await claim('A');
    await queue.start(id, 'A');
    expect(await queue.sweep('A', MAX_ATTEMPTS)).toEqual({ requeued: 0, dead: 1, dropped: 0 });
    expect(await record(id)).toMatchObject({ status: 'failed', error: `worker A lost track of it on each of ${MAX_ATTEMPTS} attempts` });
    await nothingLeft();
  });
});

describe('a connection that went silent', () => {
  it('fails its commands within about 5 s as Redis unavailable, and connects again once the network answers', { timeout: 40_000 }, async () => {
    const proxy = await startLossyProxy(server.port);
    extra.push(proxy);
    const conn = createRedis(proxy.url, logger, 'silent api');
    await conn.connect();
    extra.push({ close: async () => conn.destroy() });
    expect(await conn.set('before', '1')).toBe('OK');
    proxy.silence();
    const started = Date.now();
    // On main this waited for ever: node-redis's command timeout ends once a command is written.
    const err = await conn.get('before').then(() => null, (e: unknown) => e);
    expect(isRedisUnavailable(err)).toBe(true);
    expect(Date.now() - started).toBeLessThan(6_500);
    proxy.speak();
    expect(await waitFor(async () => (await conn.get('before').catch(() => null)) === '1', 25_000)).toBe(true);
  });
});

describe('an uploading record', () => {
  it('lives while its upload renews it, and never expires once queued', async () => {
    const id = newDeploymentId();
    await queue.createUploading({ id, repoUrl: 'https://git.example.com/site.git', status: 'uploading', attempts: 0, createdAt: new Date().toISOString(), url: `http://${id}.localhost/` });
    await redis.expire(`deployment:${id}`, 5);
    expect(await queue.keepUploading(id)).toBe(true);
    expect(await redis.ttl(`deployment:${id}`)).toBeGreaterThan(3000);
    expect(await queue.enqueue(id)).toBe('queued');
    // A renewal that comes after the enqueue (a timer firing late) leaves the record persistent.
    expect(await queue.keepUploading(id)).toBe(false);
    expect(await redis.ttl(`deployment:${id}`)).toBe(-1);
    expect(await queue.keepUploading(newDeploymentId())).toBe(false);
  });
});

describe('a malformed field never fails a script half-way (Redis keeps the writes made before a failure)', () => {
  it('RECOVER with a malformed attempts count takes the id back instead of dropping it from every list', async () => {
    const id = await queued();
    await claim('A');
    await queue.start(id, 'A');
    await redis.hSet(`deployment:${id}`, 'attempts', 'two');
    // On main the script popped the id, then failed on tonumber(nil) >= 3: the id was in no list at all.
    expect(await queue.sweep('A', MAX_ATTEMPTS)).toEqual({ requeued: 1, dead: 0, dropped: 0 });
    expect(await waiting()).toEqual([id]);
  });

  it('START, RETRY and SETTLE read a malformed count or alias time as missing', async () => {
    const id = await queued();
    await redis.hSet(`deployment:${id}`, 'attempts', 'x');
    await claim('A');
    expect(await queue.start(id, 'A')).toBe('started');
    expect(await redis.hGet(`deployment:${id}`, 'attempts')).toBe('1');
    await redis.hSet(`deployment:${id}`, 'attempts', 'y');
    expect(await queue.retryLater(id, 'A', 'S3 is unavailable', MAX_ATTEMPTS, 0)).toBe('retrying');
    expect(await redis.zScore('build-queue:delayed', id)).not.toBeNull();
    // A project whose productionAt and branch times are junk: SETTLE still records, aliases move.
    const other = newDeploymentId();
    await redis.hSet('project:site', { name: 'site', repoUrl: 'https://git.example.com/site.git', productionBranch: 'main', createdAt: 'x', updatedAt: 'x', productionAt: 'junk' });
    await redis.hSet('project:site:branches', { 'main:at': 'junk' });
    await queue.createUploading({ id: other, repoUrl: 'https://git.example.com/site.git', status: 'uploading', attempts: 0, createdAt: new Date().toISOString(), url: `http://${other}.localhost/`, project: 'site', aliasLabel: 'main', production: '1' });
    expect(await queue.enqueue(other)).toBe('queued');
    expect(await claim('B')).toBe(other);
    expect(await queue.start(other, 'B')).toBe('started');
    expect((await queue.finish(other, 'B', { status: 'deployed', liveBuild: 'build00001' })).recorded).toBe(true);
    expect(await redis.hGet('project:site', 'production')).toBe(other);
    expect(await redis.hGet('project:site:branches', 'main')).toBe(other);
  });
});

describe('recovery judges the owner, not only the status', () => {
  it('claim, SIGKILL before START, cancel, redeploy, another slot builds it: the dead slot\'s stale copy is dropped', async () => {
    const id = await queued();
    expect(await claim('A')).toBe(id); // …and A dies here, before START
    expect(await queue.cancel(id)).toBe('canceled');
    expect(await queue.redeploy(id)).toBe('requeued');
    expect(await claim('B')).toBe(id);
    expect(await queue.start(id, 'B')).toBe('started');

    await alive('B');
    expect(await queue.recoverOrphans(MAX_ATTEMPTS, 1000)).toEqual({ requeued: 0, dead: 0, dropped: 1 });
    expect(await waiting()).toEqual([]);
    expect(await queue.finish(id, 'B', { liveBuild: 'bbbbbbbb' })).toMatchObject({ recorded: true });
    expect(await record(id)).toMatchObject({ status: 'deployed', attempts: 1 });
    await nothingLeft();
  });

  it('a dead slot\'s queued copy of an id that is also waiting on the list is dropped', async () => {
    const id = await queued();
    await strand('A', id);
    expect(await queue.recoverOrphans(MAX_ATTEMPTS, 1000)).toEqual({ requeued: 0, dead: 0, dropped: 1 });
    expect(await waiting()).toEqual([id]);
  });

  it('a live slot\'s list is never touched, and one reaper acts at a time', async () => {
    const id = await queued();
    await claim('A');
    await alive('A');
    expect(await queue.recoverOrphans(MAX_ATTEMPTS, 1000)).toEqual({ requeued: 0, dead: 0, dropped: 0 });
    await expire('A');
    expect(await queue.recoverOrphans(MAX_ATTEMPTS, 1000)).toEqual({ requeued: 0, dead: 0, dropped: 0 }); // the lock is still held
    await redis.del('build-queue:reaper-lock');
    expect(await queue.recoverOrphans(MAX_ATTEMPTS, 1000)).toEqual({ requeued: 1, dead: 0, dropped: 0 });
    expect(await waiting()).toEqual([id]);
  });
});

describe('cancel intent is never lost', () => {
  it('a cancel that arrives while building wins over a platform retry', async () => {
    const id = await queued();
    await claim('A');
    await queue.start(id, 'A');
    expect(await queue.cancel(id)).toBe('canceling');
    expect(await queue.retryLater(id, 'A', 'S3 is down', MAX_ATTEMPTS, 1000)).toBe('canceled');
    expect(await record(id)).toMatchObject({ status: 'canceled' });
    expect((await record(id)).cancelRequested).toBeUndefined();
    await nothingLeft();
  });

  it('a cancel that arrives while building wins over a shutdown release', async () => {
    const id = await queued();
    await claim('A');
    await queue.start(id, 'A');
    await queue.cancel(id);
    expect(await queue.release(id, 'A')).toBe('canceled');
    expect(await record(id)).toMatchObject({ status: 'canceled' });
    await nothingLeft();
  });

  it('a cancel pending when a dead slot\'s build is recovered ends it canceled, not requeued', async () => {
    const id = await queued();
    await claim('A');
    await queue.start(id, 'A');
    await queue.cancel(id);
    expect(await queue.recoverOrphans(MAX_ATTEMPTS, 1000)).toEqual({ requeued: 0, dead: 0, dropped: 1 });
    expect(await record(id)).toMatchObject({ status: 'canceled' });
    await nothingLeft();
  });

  it('a canceled id that a slot had claimed but not started is dropped at START', async () => {
    const id = await queued();
    await claim('A');
    expect(await queue.cancel(id)).toBe('canceled');
    expect(await queue.start(id, 'A')).toBe('dropped');
    expect(await record(id)).toMatchObject({ status: 'canceled', attempts: 0 });
    await nothingLeft();
  });
});

describe('settle claims and starts the next id in the same step', () => {
  it('a busy slot\'s settle takes the oldest waiting id into its list, FIFO, as BLMOVE would, and starts it as START would', async () => {
    const [first, second, third] = [await queued(), await queued(), await queued()];
    expect(await claim('A')).toBe(first);
    await queue.start(first, 'A');
    const settled = await queue.finish(first, 'A', { liveBuild: 'first000' }, { claimNext: true });
    expect(settled).toEqual({ recorded: true, previousBuild: null, next: second, nextStart: 'started', nextRecord: expect.objectContaining({ id: second, status: 'building', worker: 'A', attempts: 1 }) });
    expect(settled.nextRecord!.startedAt).toEqual(expect.any(String));
    expect(await held('A')).toEqual([second]);
    expect(await waiting()).toEqual([third]);
    expect(await record(second)).toMatchObject({ status: 'building', worker: 'A', attempts: 1 });
    // START asked again (a slot that did not use the settle's answer) changes nothing.
    expect(await queue.start(second, 'A')).toBe('started');
    expect((await record(second)).attempts).toBe(1);
    const failed = await queue.fail(second, 'A', 'broken', { claimNext: true });
    expect([failed.next, failed.nextStart]).toEqual([third, 'started']);
    // Nothing waits: the settle claims nothing, and the slot goes back to its blocking claim.
    expect((await queue.canceled(third, 'A', { claimNext: true })).next).toBeNull();
    await nothingLeft();
  });

  it('claims nothing when not asked (a stopping slot), when the outcome is not the slot\'s, or when the slot holds a stranded id', async () => {
    const [a, b, c] = [await queued(), await queued(), await queued()];
    await claim('A');
    await queue.start(a, 'A');
    expect((await queue.finish(a, 'A', { liveBuild: 'aaaa0000' })).next).toBeNull();
    expect(await waiting()).toEqual([c, b]);

    await claim('A');
    await queue.start(b, 'A');
    expect(await queue.finish(b, 'B', { liveBuild: 'bbbb0000' }, { claimNext: true })).toEqual({ recorded: false, previousBuild: null, next: null, nextStart: null, nextRecord: null });
    // A stranded id (a claim whose reply was lost) sits beside b in A's list: the idle sweep must see it first.
    await claim('A');
    expect((await queue.finish(b, 'A', { liveBuild: 'bbbb0000' }, { claimNext: true })).next).toBeNull();
    expect(await held('A')).toEqual([c]);
    expect(await waiting()).toEqual([]);
  });

  it('starts the next id by START\'s rules: a project deployment is only claimed, a canceled one dropped, one without a record buried', async () => {
    const first = await queued();
    const branchy = newDeploymentId();
    await queue.createUploading({ id: branchy, repoUrl: 'https://git.example.com/shop.git', status: 'uploading', attempts: 0, createdAt: new Date().toISOString(), url: `http://${branchy}.localhost/`, project: 'shop', aliasLabel: 'main', production: '1' });
    await queue.enqueue(branchy);
    const canceled = await queued();
    await redis.hSet(`deployment:${canceled}`, 'cancelRequested', '1');
    await redis.lPush('build-queue', 'norecord01');
    await claim('A');
    await queue.start(first, 'A');

    // A project deployment: claimed, still queued; START reads its branch and starts it.
    const one = await queue.finish(first, 'A', { liveBuild: 'first000' }, { claimNext: true });
    expect(one).toMatchObject({ next: branchy, nextStart: 'branch', nextRecord: null });
    expect(await record(branchy)).toMatchObject({ status: 'queued', attempts: 0 });
    expect(await held('A')).toEqual([branchy]);
    expect(await queue.start(branchy, 'A')).toBe('started');
    expect(await redis.hGet('project:shop:running', 'main')).toBe(branchy);

    // A cancel asked while it waited: the settle's START ends it canceled, and the slot holds nothing.
    const two = await queue.finish(branchy, 'A', { liveBuild: 'branch00' }, { claimNext: true });
    expect(two).toMatchObject({ next: canceled, nextStart: 'dropped', nextRecord: null });
    expect(await record(canceled)).toMatchObject({ status: 'canceled', attempts: 0 });
    expect(await held('A')).toEqual([]);

    // No record: buried with the reason, as START buries it.
    await claim('A');
    expect(await queue.start('norecord01', 'A')).toBe('missing');
    expect(await queue.dead()).toEqual([expect.objectContaining({ id: 'norecord01', reason: expect.stringContaining('no deployment record') })]);
    await nothingLeft();
  });

  it('a settle whose next id has no record buries it in the same step', async () => {
    const first = await queued();
    await redis.lPush('build-queue', 'norecord02');
    await claim('A');
    await queue.start(first, 'A');
    expect(await queue.fail(first, 'A', 'broken', { claimNext: true })).toMatchObject({ next: 'norecord02', nextStart: 'missing', nextRecord: null });
    expect((await queue.dead()).map((d) => d.id)).toEqual(['norecord02']);
    expect(await held('A')).toEqual([]);
    await nothingLeft();
  });
});

describe('outcomes and pointers', () => {
  it('only the owner\'s outcome is recorded, and deployed switches the live build in the same step', async () => {
    const id = await queued();
    await claim('A');
    await queue.start(id, 'A');
    expect(await queue.fail(id, 'B', 'not B\'s')).toEqual({ recorded: false, previousBuild: null, next: null, nextStart: null, nextRecord: null });
    expect(await queue.finish(id, 'A', { liveBuild: 'first000', outputFiles: 3 })).toEqual({ recorded: true, previousBuild: null, next: null, nextStart: null, nextRecord: null });
    expect(await queue.redeploy(id)).toBe('requeued');
    // While the new build runs, the old one stays live.
    expect(await queue.liveBuild(id)).toBe('first000');
    await claim('A');
    await queue.start(id, 'A');
    expect(await queue.liveBuild(id)).toBe('first000');
    expect(await queue.finish(id, 'A', { liveBuild: 'second00' })).toEqual({ recorded: true, previousBuild: 'first000', next: null, nextStart: null, nextRecord: null });
    expect(await queue.liveBuild(id)).toBe('second00');
  });

  it('a failed rebuild leaves the earlier build live', async () => {
    const id = await queued();
    await claim('A');
    await queue.start(id, 'A');
    await queue.finish(id, 'A', { liveBuild: 'first000' });
    await queue.redeploy(id);
    await claim('A');
    await queue.start(id, 'A');
    expect(await queue.retryLater(id, 'A', 'S3 is down', 1, 0)).toBe('dead');
    expect(await record(id)).toMatchObject({ status: 'failed', liveBuild: 'first000' });
  });

  it('enqueue is idempotent: asking again after a lost reply pushes nothing', async () => {
    const id = await queued();
    expect(await queue.enqueue(id)).toBe('queued');
    await claim('A');
    await queue.start(id, 'A');
    expect(await queue.enqueue(id)).toBe('building');
    expect(await queue.enqueue('nosuchid0001')).toBe('missing');
    expect(await waiting()).toEqual([]);
    expect(await held('A')).toEqual([id]);
  });
});

describe('skew protection: what a site served before stays reachable', () => {
  const skew = { ms: 3_600_000, builds: 2 };
  /** A deployment of project `shop`, branch label `main` (production), built by slot A as `build`. */
  async function deployed(build: string, at: number): Promise<string> {
    const id = newDeploymentId();
    await queue.createUploading({ id, repoUrl: 'https://git.example.com/shop.git', status: 'uploading', attempts: 0, createdAt: new Date(at).toISOString(), url: `http://${id}.localhost/`, project: 'shop', aliasLabel: 'main', production: '1' });
    expect(await queue.enqueue(id)).toBe('queued');
    await claim('A');
    expect(await queue.start(id, 'A')).toBe('started');
    expect((await queue.finish(id, 'A', { liveBuild: build }, { skew })).recorded).toBe(true);
    return id;
  }

  it('an alias moving on keeps the build it served in its history, and the deployment for retention', async () => {
    await redis.hSet('project:shop', { name: 'shop' });
    const first = await deployed('build0001', 1000);
    expect(await redis.exists(['skew:alias:shop:main', 'skew:production:shop'])).toBe(0);
    const second = await deployed('build0002', 2000);
    const third = await deployed('build0003', 3000);
    expect(await redis.zRange('skew:alias:shop:main', 0, -1)).toEqual([`${first}/build0001`, `${second}/build0002`]);
    expect(await redis.zRange('skew:production:shop', 0, -1)).toEqual([`${first}/build0001`, `${second}/build0002`]);
    expect(Number(await redis.hGet(`deployment:${first}`, 'skewUntil'))).toBeGreaterThan(Date.now() + skew.ms - 60_000);
    // At most `builds` back, and never longer than the window.
    await deployed('build0004', 4000);
    expect(await redis.zRange('skew:alias:shop:main', 0, -1)).toEqual([`${second}/build0002`, `${third}/build0003`]);
    expect(await redis.pTTL('skew:alias:shop:main')).toBeGreaterThan(skew.ms - 60_000);
  });

  it('a redeploy keeps the build it replaced for the window instead of removing it', async () => {
    await redis.hSet('project:shop', { name: 'shop' });
    const id = await deployed('build0001', 1000);
    expect(await queue.redeploy(id)).toBe('requeued');
    await claim('A');
    await queue.start(id, 'A');
    expect(await queue.finish(id, 'A', { liveBuild: 'build0002' }, { skew })).toMatchObject({ recorded: true, previousBuild: 'build0001' });
    for (const history of [`skew:deployment:${id}`, 'skew:alias:shop:main', 'skew:production:shop']) expect(await redis.zRange(history, 0, -1), history).toEqual([`${id}/build0001`]);
    expect(await queue.retiredDue(10)).toEqual([]);
    expect(await queue.retiredDue(10, Date.now() + skew.ms + 1000)).toEqual([{ id, build: 'build0001', member: `${id}/build0001` }]);
  });
});

describe('SKIP: a push that changed none of the watched paths', () => {
  /** A deployment of project `shop`'s production branch, recorded and uploading, created at `at` (ms). */
  async function uploading(at: number): Promise<string> {
    const id = newDeploymentId();
    await queue.createUploading({ id, repoUrl: 'https://git.example.com/shop.git', status: 'uploading', attempts: 0, createdAt: new Date(at).toISOString(), url: `http://${id}.localhost/`, project: 'shop', aliasLabel: 'main', production: '1' });
    return id;
  }

  it("supersedes the branch's waiting build, stamps the aliases' time, and leaves them where they were; a repeat changes nothing", async () => {
    await redis.hSet('project:shop', { name: 'shop', production: 'served', productionAt: '1000' });
    await redis.hSet('project:shop:branches', { main: 'served', 'main:at': '1000' });
    const waitingOne = await uploading(2000);
    expect(await queue.enqueue(waitingOne)).toBe('queued');
    const skipped = await uploading(3000);
    const skip = { serving: 'served', compared: ['.'], message: 'nothing changed' };
    expect(await queue.skip(skipped, 'served', { skip })).toBe('skipped');
    expect(await record(waitingOne)).toMatchObject({ status: 'canceled', error: expect.stringContaining(`superseded by ${skipped}`) });
    expect(await record(skipped)).toMatchObject({ status: 'skipped', skip, finishedAt: expect.any(String) });
    expect(await waiting()).toEqual([]);
    expect(await redis.hGetAll('project:shop:pending')).toEqual({});
    // The aliases still serve what they served; a build older than the skipped push can no longer move them.
    expect(await redis.hGetAll('project:shop:branches')).toEqual({ main: 'served', 'main:at': '3000' });
    expect(await redis.hmGet('project:shop', ['production', 'productionAt'])).toEqual(['served', '3000']);
    expect(await redis.zScore('project:shop:deployments', skipped)).toBe(3000);
    const events = await redis.xLen('deployment-events');
    expect(await queue.skip(skipped, 'served', { skip })).toBe('skipped');
    expect(await redis.xLen('deployment-events')).toBe(events);
  });

  it('answers moved when the alias no longer serves what was compared, and leaves the record to be built', async () => {
    await redis.hSet('project:shop', { name: 'shop' });
    await redis.hSet('project:shop:branches', { main: 'newer' });
    const id = await uploading(5000);
    expect(await queue.skip(id, 'served', { skip: { serving: 'served', compared: ['.'], message: 'x' } })).toBe('moved');
    expect((await record(id)).status).toBe('uploading');
    expect(await queue.enqueue(id)).toBe('queued');
  });
});

describe('every step a slot repeats after a lost reply answers as the first did', () => {
  /** A queue on a connection through a proxy that can lose one reply (Redis runs the command; the slot never hears). */
  async function lossyQueue(): Promise<{ proxy: LossyProxy; lossy: Queue }> {
    const proxy = await startLossyProxy(server.port);
    extra.push(proxy);
    const conn = createRedis(proxy.url, logger, 'lossy');
    await conn.connect();
    extra.push({ close: async () => conn.destroy() });
    const lossy = new Queue(conn);
    // Each script once, on an id no one holds: the server knows them all, so a lost reply below is
    // the reply of a script that ran (not of a NOSCRIPT answer, after which the script never ran).
    await lossy.finish('nosuchid0000', 'Z', { liveBuild: 'none0000' });
    await lossy.fail('nosuchid0000', 'Z', 'x');
    await lossy.release('nosuchid0000', 'Z');
    await lossy.retryLater('nosuchid0000', 'Z', 'x', 1, 0);
    return { proxy, lossy };
  }
  /** Runs `step` with its reply lost (it rejects), then again as the slot's persist() does, once the connection is back. */
  async function twice<T>(proxy: LossyProxy, marker: string, step: () => Promise<T>): Promise<T> {
    proxy.loseReplyTo(marker);
    await expect(step()).rejects.toThrow();
    for (;;) {
      try {
        return await step();
      } catch (err) {
        if (!isRedisUnavailable(err)) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  it('SETTLE deployed: recorded, with the build it replaced and the id it claimed, nothing written twice', async () => {
    const { proxy, lossy } = await lossyQueue();
    const id = await queued();
    await claim('A');
    await lossy.start(id, 'A');
    await lossy.finish(id, 'A', { liveBuild: 'first000' });
    await queue.redeploy(id);
    await claim('A');
    await lossy.start(id, 'A');
    const next = await queued();
    const result = await twice(proxy, 'second00', () => lossy.finish(id, 'A', { liveBuild: 'second00' }, { claimNext: true }));
    expect(result).toMatchObject({ recorded: true, previousBuild: 'first000', next, nextStart: 'started', nextRecord: { id: next, status: 'building', worker: 'A', attempts: 1 } });
    expect(await record(id)).toMatchObject({ status: 'deployed', liveBuild: 'second00' });
    expect(await held('A')).toEqual([next]);
    // The next id was started once, by the first ask: one attempt, one 'building' event.
    expect(await record(next)).toMatchObject({ status: 'building', attempts: 1 });
    // Another slot's repeat, or a different outcome, is still not this slot's.
    expect((await queue.finish(id, 'B', { liveBuild: 'second00' })).recorded).toBe(false);
    expect((await queue.fail(id, 'A', 'late')).recorded).toBe(false);
  });

  it.each([
    ['fail', (q: Queue, id: string) => q.fail(id, 'A', 'the build broke'), 'failed'],
    ['canceled', (q: Queue, id: string) => q.canceled(id, 'A'), 'canceled'],
  ] as const)('SETTLE %s: recorded', async (_name, step, status) => {
    const { proxy, lossy } = await lossyQueue();
    const id = await queued();
    await claim('A');
    await lossy.start(id, 'A');
    expect((await twice(proxy, id, () => step(lossy, id))).recorded).toBe(true);
    expect(await record(id)).toMatchObject({ status });
    await nothingLeft();
  });

  it('RELEASE: released once, the attempt handed back once', async () => {
    const { proxy, lossy } = await lossyQueue();
    const id = await queued();
    await claim('A');
    await lossy.start(id, 'A');
    expect(await twice(proxy, id, () => lossy.release(id, 'A'))).toBe('released');
    expect(await record(id)).toMatchObject({ status: 'queued', attempts: 0 });
    expect(await waiting()).toEqual([id]);
  });

  it('RETRY: retrying once (one entry in the delayed set), and dead once on the last attempt', async () => {
    const { proxy, lossy } = await lossyQueue();
    const id = await queued();
    await claim('A');
    await lossy.start(id, 'A');
    expect(await twice(proxy, id, () => lossy.retryLater(id, 'A', 'S3 is down', MAX_ATTEMPTS, 60_000))).toBe('retrying');
    expect(await redis.zCard('build-queue:delayed')).toBe(1);
    await redis.zRem('build-queue:delayed', id);
    await redis.lPush('build-queue', id);
    await claim('A');
    await lossy.start(id, 'A');
    expect(await twice(proxy, id, () => lossy.retryLater(id, 'A', 'S3 is down', 1, 0))).toBe('dead');
    expect(await queue.dead()).toEqual([expect.objectContaining({ id })]);
  });

  it('a repeat by a slot that never held the id is still lost', async () => {
    const id = await queued();
    await claim('A');
    await queue.start(id, 'A');
    expect(await queue.release(id, 'B')).toBe('lost');
    expect(await queue.retryLater(id, 'B', 'x', MAX_ATTEMPTS, 0)).toBe('lost');
    expect(await record(id)).toMatchObject({ status: 'building', worker: 'A' });
  });
});

describe('the dead list stays bounded', () => {
  it('is trimmed by count and by age, oldest first, with the reasons', async () => {
    for (let i = 0; i < 5; i++) await redis.lPush('build-queue', `junk${i}`);
    for (let i = 0; i < 5; i++) {
      const id = (await claim('A'))!;
      await queue.start(id, 'A');
    }
    expect((await queue.dead()).map((d) => d.id)).toEqual(['junk4', 'junk3', 'junk2', 'junk1', 'junk0']);
    expect(await queue.trimDead(3)).toBe(2);
    expect((await queue.dead()).map((d) => d.id)).toEqual(['junk4', 'junk3', 'junk2']);
    expect(await redis.hKeys('build-queue:dead:reasons')).toHaveLength(3);
    // Make junk2 and junk3 a year old: only the old ones go.
    for (const id of ['junk2', 'junk3']) await redis.hSet('build-queue:dead:reasons', id, '2025-01-01T00:00:00.000Z old reason');
    expect(await queue.trimDead(100, 24 * 3600_000)).toBe(2);
    expect((await queue.dead()).map((d) => d.id)).toEqual(['junk4']);
  });
});

describe('the blocking claim', () => {
  it('blocks longer than the client\'s default command timeout (5 s) without timing out', { timeout: 20_000 }, async () => {
    const started = Date.now();
    const claimed = Queue.claim(blocking, 'A', 7);
    // Settles either way, so a claim that fails early is reported as itself, not as a push left unhandled.
    const pushed = new Promise<unknown>((resolve) => setTimeout(() => void redis.lPush('build-queue', 'late000001').then(resolve, resolve), 6000));
    expect(await claimed).toBe('late000001');
    await pushed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(5500);
  });
});

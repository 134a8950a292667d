// Bench section 'queue': Slipway's claim → start → finish against BullMQ and a bare RPOP loop, for
// no-op jobs at 1 and 8 slots, and the pickup latency of an idle slot. It runs on a redis-server of its
// own, emptied before each case, so the stack's Redis is neither disturbed nor a factor.
import path from 'node:path';
import getPort from 'get-port';
import { Queue as BullQueue, Worker as BullWorker, type ConnectionOptions } from 'bullmq';
import { Queue, createLogger, createRedis, duplicateRedis, forEachBounded, newDeploymentId, type Logger, type Redis, type SettleResult } from '@slipway/shared';
import { startRedisServer } from '../dev/redis-server';
import { CLAIM_BLOCK_SECONDS } from '../deploy-service/src/queue/slot';
import { median, ms, percentile, perSecond, ratio, type BenchContext, type Row } from './lib';

const SLOT_COUNTS = [1, 8] as const;
const REPO_URL = 'https://bench.invalid/r.git';
const RAW_KEY = 'bench:raw';
/** Pre-filling is not timed; bounded so 5,000 records do not mean 5,000 commands in flight. */
const FILL_CONCURRENCY = 32;
/** Between pickup rounds, once the worker is blocked again, so each round starts from an idle worker. */
const PICKUP_PAUSE_MS = 2;

interface Env {
  redisUrl: string;
  /** For BullMQ, which opens (and closes) its own ioredis connections from these options. */
  bull: ConnectionOptions;
  logger: Logger;
  /** Empties the server and reads its blocked-client count; never used by what is being timed. */
  admin: Redis;
}

export async function benchQueue(ctx: BenchContext): Promise<Row[]> {
  const jobs = ctx.quick ? 300 : 5000;
  const rounds = ctx.quick ? 1 : 3;
  const pickups = ctx.quick ? 50 : 500;
  const port = await getPort({ exclude: [6379] });
  const server = await startRedisServer({ port, dir: path.join(ctx.tmpRoot, 'queue-redis') });
  const logger = createLogger('bench-queue', 'silent');
  const admin = createRedis(server.url, logger, 'bench admin');
  try {
    await admin.connect();
    const env: Env = { redisUrl: server.url, bull: { host: '127.0.0.1', port }, logger, admin };
    const rows: Row[] = [];
    for (const slots of SLOT_COUNTS) {
      const rate = { bull: [] as number[], slipway: [] as number[], raw: [] as number[] };
      // Interleaved rounds, so a drift of the machine falls on all three alike.
      for (let round = 0; round < rounds; round++) {
        rate.bull.push(await bullDrain(env, jobs, slots));
        rate.slipway.push(await slipwayDrain(env, jobs, slots));
        rate.raw.push(await rawDrain(env, jobs, slots));
      }
      const [bull, slipway, raw] = [median(rate.bull), median(rate.slipway), median(rate.raw)];
      const label = slots === 1 ? '1 slot' : `${slots} slots`;
      rows.push(
        { section: 'queue', case: `no-op jobs/s, ${label}: BullMQ (A) vs Slipway (B)`, a: perSecond(bull), b: perSecond(slipway), ratio: ratio(slipway, bull), target: '≥ 1× BullMQ', met: slipway >= bull },
        { section: 'queue', case: `no-op jobs/s, ${label}: raw RPOP loop, the ceiling (A) vs Slipway (B); ratio = Slipway's share`, a: perSecond(raw), b: perSecond(slipway), ratio: ratio(slipway, raw) },
      );
    }
    const bull = await bullPickup(env, pickups);
    const slipway = await slipwayPickup(env, pickups);
    for (const [p, limit] of [[50, 2], [99, 10]] as const) {
      const [a, b] = [percentile(bull, p), percentile(slipway, p)];
      rows.push({ section: 'queue', case: `pickup LPUSH → start, idle slot: p${p} (A: BullMQ add → processor called)`, a: ms(a), b: ms(b), ratio: ratio(b, a), target: `< ${limit} ms`, met: b < limit });
    }
    return rows;
  } finally {
    await admin.close().catch(() => admin.destroy());
    await server.stop();
  }
}

/** Slipway's protocol: `jobs` records pushed as the upload-service does, then `slots` slots drain them. */
async function slipwayDrain(env: Env, jobs: number, slots: number): Promise<number> {
  await env.admin.flushAll();
  const redis = createRedis(env.redisUrl, env.logger, 'bench queue');
  const conns: Redis[] = [];
  try {
    await redis.connect();
    // As in the worker: the queue's steps share one connection, each slot blocks on one of its own.
    for (let i = 0; i < slots; i++) conns.push(duplicateRedis(redis, env.logger, `bench slot ${i}`));
    await Promise.all(conns.map((c) => c.connect()));
    const queue = new Queue(redis);
    await forEachBounded(count(jobs), FILL_CONCURRENCY, () => enqueueRecord(queue));
    let done = 0;
    let finished = 0;
    const started = performance.now();
    await Promise.all(
      conns.map(async (conn, i) => {
        const slot = `bench-${i}`;
        // As a slot does: the settle claims and starts the next id in the same step while the list
        // has one; only an idle slot blocks on the list. The drain ends when the last job settles.
        // A busy slot's settle also starts the id it claims; a claimed one is started on its own.
        let settled: SettleResult | null = null;
        while (done < jobs) {
          let id = settled?.next ?? null;
          let state = settled?.nextStart ?? null;
          settled = null;
          if (id === null) {
            id = await Queue.claim(conn, slot, 1);
            if (id === null) continue;
          }
          if (state === null || state === 'branch') state = await queue.start(id, slot);
          if (state !== 'started') throw new Error(`slot ${slot} could not start ${id}: ${state}`);
          settled = await queue.finish(id, slot, { liveBuild: 'benchbuild' }, { claimNext: true });
          if (!settled.recorded) throw new Error(`slot ${slot} could not settle ${id}`);
          if (++done === jobs) finished = performance.now();
        }
      }),
    );
    return jobs / ((finished - started) / 1000);
  } finally {
    for (const conn of conns) await conn.close().catch(() => conn.destroy());
    await redis.close().catch(() => redis.destroy());
  }
}

/** The ceiling: one RPOP per job, `slots` connections each in a loop, nothing recorded. */
async function rawDrain(env: Env, jobs: number, slots: number): Promise<number> {
  await env.admin.flushAll();
  const ids = Array.from({ length: jobs }, () => newDeploymentId());
  for (let i = 0; i < jobs; i += 1000) await env.admin.lPush(RAW_KEY, ids.slice(i, i + 1000));
  const conns: Redis[] = [];
  try {
    for (let i = 0; i < slots; i++) conns.push(duplicateRedis(env.admin, env.logger, `bench raw ${i}`));
    await Promise.all(conns.map((c) => c.connect()));
    let taken = 0;
    const started = performance.now();
    await Promise.all(
      conns.map(async (conn) => {
        while (taken < jobs) {
          taken++;
          if ((await conn.rPop(RAW_KEY)) === null) throw new Error('the raw list ran out early');
        }
      }),
    );
    return jobs / ((performance.now() - started) / 1000);
  } finally {
    for (const conn of conns) await conn.close().catch(() => conn.destroy());
  }
}

/**
 * BullMQ with its defaults (completed jobs are kept, as Slipway keeps its records): jobs added in
 * bulk first, then one Worker with `concurrency` = slots — the docs' "local concurrency factor",
 * their way to run that many jobs at once in one process, as Slipway's slots share one process.
 */
async function bullDrain(env: Env, jobs: number, slots: number): Promise<number> {
  await env.admin.flushAll();
  const name = `bench-drain-${slots}`;
  const queue = new BullQueue(name, { connection: env.bull });
  let worker: BullWorker | null = null;
  try {
    await queue.waitUntilReady();
    for (let i = 0; i < jobs; i += 1000) {
      await queue.addBulk(Array.from({ length: Math.min(1000, jobs - i) }, () => ({ name: 'noop', data: { repoUrl: REPO_URL } })));
    }
    const w = (worker = new BullWorker(name, async () => undefined, { connection: env.bull, concurrency: slots, autorun: false }));
    const done = deferred<void>();
    let completed = 0;
    w.on('completed', () => {
      if (++completed === jobs) done.resolve();
    });
    w.on('failed', (_job, err) => done.reject(err));
    w.on('error', (err) => done.reject(err));
    await w.waitUntilReady();
    const started = performance.now();
    w.run().catch((err: unknown) => done.reject(err));
    await done.promise;
    return jobs / ((performance.now() - started) / 1000);
  } finally {
    await worker?.close();
    await queue.close();
  }
}

/** One idle slot blocked in `claim`; each round times enqueue → claim returned and start returned. */
async function slipwayPickup(env: Env, rounds: number): Promise<number[]> {
  await env.admin.flushAll();
  const redis = createRedis(env.redisUrl, env.logger, 'bench queue');
  const conn = duplicateRedis(redis, env.logger, 'bench pickup slot');
  await Promise.all([redis.connect(), conn.connect()]);
  const slotClient = await conn.clientId();
  const queue = new Queue(redis);
  const slot = 'bench-pickup';
  let round = deferred<Round>();
  let stopping = false;
  let ended = false;
  const loop = (async () => {
    while (!stopping) {
      const id = await Queue.claim(conn, slot, CLAIM_BLOCK_SECONDS);
      if (id === null) continue;
      const state = await queue.start(id, slot);
      const startedAt = performance.now();
      if (state !== 'started') throw new Error(`the pickup slot could not start ${id}: ${state}`);
      await queue.finish(id, slot, { liveBuild: 'benchbuild' });
      round.resolve({ startedAt });
    }
  })()
    .catch((err: unknown) => round.reject(err))
    .finally(() => (ended = true));
  try {
    const latencies: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const id = await createRecord(queue);
      await untilBlocked(env.admin);
      const sent = performance.now();
      await queue.enqueue(id);
      const { startedAt } = await round.promise;
      latencies.push(startedAt - sent);
      round = deferred<Round>();
    }
    return latencies;
  } finally {
    stopping = true;
    // Ends the slot's block at once (BLMOVE answers as on a timeout) instead of after its block time;
    // once it is blocked, so the unblock cannot come before the BLMOVE it is meant for.
    if (!ended) {
      await untilBlocked(env.admin);
      await env.admin.clientUnblock(slotClient);
    }
    await loop;
    await conn.close().catch(() => conn.destroy());
    await redis.close().catch(() => redis.destroy());
  }
}

/** The same for BullMQ: one idle Worker (concurrency 1); each round times `add` → the processor called. */
async function bullPickup(env: Env, rounds: number): Promise<number[]> {
  await env.admin.flushAll();
  const name = 'bench-pickup';
  const queue = new BullQueue(name, { connection: env.bull });
  let round = deferred<Round>();
  let startedAt = 0;
  const worker = new BullWorker(name, async () => void (startedAt = performance.now()), { connection: env.bull, concurrency: 1 });
  worker.on('completed', () => round.resolve({ startedAt }));
  worker.on('failed', (_job, err) => round.reject(err));
  worker.on('error', (err) => round.reject(err));
  try {
    await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
    const latencies: number[] = [];
    for (let i = 0; i < rounds; i++) {
      await untilBlocked(env.admin);
      const sent = performance.now();
      await queue.add('noop', { repoUrl: REPO_URL });
      const result = await round.promise;
      latencies.push(result.startedAt - sent);
      round = deferred<Round>();
    }
    return latencies;
  } finally {
    await worker.close();
    await queue.close();
  }
}

interface Round {
  startedAt: number;
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (err: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => undefined); // a failure is read where the round awaits it; one with no round waiting is not unhandled
  return { promise, resolve, reject };
}

/** A deployment record as the upload-service makes it before its source is uploaded. */
async function createRecord(queue: Queue): Promise<string> {
  const id = newDeploymentId();
  await queue.createUploading({ id, repoUrl: REPO_URL, status: 'uploading', attempts: 0, createdAt: new Date().toISOString(), url: '' });
  return id;
}

async function enqueueRecord(queue: Queue): Promise<void> {
  const id = await createRecord(queue);
  const state = await queue.enqueue(id);
  if (state !== 'queued') throw new Error(`bench enqueue of ${id} answered ${state}`);
}

/**
 * Waits until the one worker is blocked on the server (its blocking read issued), then a little
 * more, so a pickup round never times a worker that was still on its way back to waiting.
 */
async function untilBlocked(admin: Redis): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const blocked = Number(/blocked_clients:(\d+)/.exec(await admin.info('clients'))?.[1] ?? 0);
    if (blocked >= 1) break;
    if (Date.now() > deadline) throw new Error('the pickup worker did not block on the queue within 10 s');
    await sleep(1);
  }
  await sleep(PICKUP_PAUSE_MS);
}

function* count(n: number): Generator<number> {
  for (let i = 0; i < n; i++) yield i;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

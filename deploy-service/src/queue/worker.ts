// A worker process's slots and their upkeep: BUILD_CONCURRENCY slots, each with its own blocking
// Redis connection; the heartbeats that say they are alive; the reaper that recovers the work of
// dead workers and moves due retries back; the cancel subscription; and the retention janitor. Used by main.ts and the tests.
import { randomBytes } from 'node:crypto';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { CANCEL_CHANNEL, Queue, checkSecretsKeys, describeError, duplicateRedis, type Config, type Logger, type Redis, type Storage } from '@slipway/shared';
import { releaseSandbox } from '../sandbox/cgroups';
import { checkWorkDir, detectSandbox } from '../sandbox/sandbox';
import { Slot } from './slot';
import { ToolCache, npmRegistry } from '../toolchain/tool-cache';
import { BuildCache } from '../cache/cache';
import { KeptDisks } from '../cache/cache-trees';
import { collectLeftovers, detectDisk } from '../sandbox/disk';
import { startJanitor } from '../retention/janitor';

export interface Worker {
  readonly slots: readonly Slot[];
  /** Stops claiming and waits for running builds; `force` stops them and releases their ids. */
  close(options?: { force?: boolean }): Promise<void>;
}

const PROMOTE_INTERVAL_MS = 1000;
/** The fallback for a cancel message missed while the subscriber was reconnecting. */
const CANCEL_POLL_MS = 1000;

export async function startWorker(deps: { config: Config; redis: Redis; storage: Storage; logger: Logger; name?: string }): Promise<Worker> {
  const { config, redis, storage, logger } = deps;
  const queue = new Queue(redis);
  await checkSecretsKeys(redis, config.secrets);
  const sandbox = await detectSandbox(config.buildSandbox, config.buildUids);
  await checkWorkDir(config.workDir ?? tmpdir());
  const workDir = config.workDir ?? tmpdir();
  const leftovers = await collectLeftovers(workDir);
  if (leftovers > 0) logger.warn({ folders: leftovers }, 'removed the build folders of workers that are gone');
  const disk = await detectDisk(workDir);
  if (disk.kind === 'watch') logger.warn({ reason: disk.reason }, 'build disks are watched, not capped by the kernel: a build can pass BUILD_DISK_MB by what it writes in 2 s before it is stopped');
  const cacheDir = config.cacheDir ?? path.join(workDir, 'slipway-cache');
  // The kept disks need loop disks: each is the image of one.
  const cache = config.buildCache ? new BuildCache(cacheDir, config.buildCacheBytes, storage, disk.kind === 'loop' ? await KeptDisks.open(cacheDir) : null) : null;
  const tools = new ToolCache(config.toolsDir ?? path.join(config.workDir ?? tmpdir(), 'slipway-tools'), npmRegistry(config.npmRegistry));
  const asRoot = process.getuid?.() === 0;
  if (sandbox.kind === 'off') logger.warn({ caps: sandbox.caps }, 'BUILD_SANDBOX=off: builds run without a sandbox and can reach everything this worker can');
  else logger.info({ caps: sandbox.caps, disk: disk.kind, uids: asRoot ? 'one per build' : 'the worker\'s', names: sandbox.relay ? 'resolved and relayed' : 'proxy only' }, 'builds run sealed in bubblewrap sandboxes');
  // Random part: a restarted container keeps its hostname and pid 1, and must not inherit (and
  // keep alive) the processing lists of its previous life; those are the reaper's to recover.
  const base = deps.name ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const conns: Redis[] = [];
  const slots: Slot[] = [];

  const seeded = await queue.seedSlots();
  if (seeded > 0) logger.info({ slots: seeded }, 'listed the slots of processing lists made before the slots set');
  const policy = await queue.evictionPolicy();
  if (policy !== null && policy !== 'noeviction') {
    logger.warn({ policy }, 'Redis maxmemory-policy is not noeviction: under memory pressure it can drop queued deployments; set maxmemory-policy noeviction');
  }

  const beat = (slot: Slot) =>
    queue.heartbeat(slot.id, slot.current, slot.since, config.heartbeatTtlSeconds).catch((err: unknown) => logger.debug({ err: describeError(err) }, 'heartbeat failed'));

  for (let n = 0; n < config.buildConcurrency; n++) {
    const id = `${base}-${n}`;
    const connect = async () => {
      const conn = duplicateRedis(redis, logger, `slot ${id}`);
      await conn.connect();
      return conn;
    };
    slots.push(new Slot(id, { config, queue, storage, logger, connect, sandbox, disk: disk.kind, tools, cache, onChange: (slot) => void beat(slot) }));
  }

  const subscriber = duplicateRedis(redis, logger, 'cancel subscriber');
  await subscriber.connect();
  conns.push(subscriber);
  await subscriber.subscribe(CANCEL_CHANNEL, (id) => {
    for (const slot of slots) if (slot.cancel(id)) logger.info({ deploymentId: id, slot: slot.id }, 'cancel requested; stopping the build');
  });

  const ownSlots = new Set(slots.map((s) => s.id));
  await Promise.all(slots.map(beat));
  // Heartbeats say who is alive only while everyone could write them. After an outage (or at
  // start, perhaps just after one) every heartbeat may have lapsed, and the other processes renew
  // theirs as they reconnect: so a reaper judges them only once it has been connected for a whole TTL.
  let connectedSince: number | null = Date.now();
  redis.on('ready', () => {
    connectedSince = Date.now();
    void Promise.all(slots.map(beat));
  });
  redis.on('error', () => (connectedSince = null));
  redis.on('reconnecting', () => (connectedSince = null));
  const timers = [
    setInterval(() => void Promise.all(slots.map(beat)), Math.max(1, config.heartbeatTtlSeconds / 3) * 1000),
    setInterval(() => void queue.promoteDue().catch(() => undefined), PROMOTE_INTERVAL_MS),
    setInterval(() => void reap(), config.reaperIntervalMs),
    setInterval(() => void pollCancels(), CANCEL_POLL_MS),
  ];
  async function reap(): Promise<void> {
    if (connectedSince === null || Date.now() - connectedSince < config.heartbeatTtlSeconds * 1000) return;
    try {
      const result = await queue.recoverOrphans(config.maxAttempts, config.reaperIntervalMs, ownSlots);
      if (result.requeued + result.dead + result.dropped > 0) logger.warn(result, 'recovered the deployments of workers that stopped responding');
      await queue.trimDead();
    } catch (err) {
      logger.debug({ err: describeError(err) }, 'reaper pass failed');
    }
  }
  async function pollCancels(): Promise<void> {
    for (const slot of slots) {
      const id = slot.current;
      if (id && (await queue.isCancelRequested(id).catch(() => false))) slot.cancel(id);
    }
  }
  const stopJanitor = startJanitor({ config, redis, storage, logger, projects: queue.projects });
  for (const slot of slots) slot.start();
  logger.info({ slots: slots.map((s) => s.id) }, 'worker started');

  let closing: Promise<void> | null = null;
  return {
    slots,
    async close(options = {}) {
      // Not memoised as a whole: a forced close must still reach slots a graceful close is waiting on.
      await Promise.all(slots.map((s) => s.stop(options)));
      closing ??= (async () => {
        for (const timer of timers) clearInterval(timer);
        stopJanitor();
        for (const slot of slots) await queue.clearHeartbeat(slot.id).catch(() => undefined);
        await releaseSandbox(sandbox);
        for (const conn of conns) {
          try {
            await conn.close();
          } catch {
            conn.destroy();
          }
        }
      })();
      await closing;
    },
  };
}

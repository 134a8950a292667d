// A worker process's slots: BUILD_CONCURRENCY slots, each with its own blocking Redis connection,
// started together and stopped together. Used by main.ts and, in-process, by the tests.
import { hostname } from 'node:os';
import { Queue, duplicateRedis, type Config, type Logger, type Redis, type Storage } from '@slipway/shared';
import { Slot } from './slot';

export interface Worker {
  readonly slots: readonly Slot[];
  /** Stops claiming and waits for running builds; `force` stops them too. Idempotent. */
  close(options?: { force?: boolean }): Promise<void>;
}

export async function startWorker(deps: { config: Config; redis: Redis; storage: Storage; logger: Logger; name?: string }): Promise<Worker> {
  const { config, redis, storage, logger } = deps;
  const queue = new Queue(redis);
  const base = deps.name ?? `${hostname()}-${process.pid}`;
  const conns: Redis[] = [];
  const slots: Slot[] = [];
  for (let n = 0; n < config.buildConcurrency; n++) {
    const id = `${base}-${n}`;
    const conn = duplicateRedis(redis, logger, `slot ${id}`);
    await conn.connect();
    conns.push(conn);
    slots.push(new Slot(id, { config, queue, storage, logger, conn }));
  }
  for (const slot of slots) slot.start();
  logger.info({ slots: slots.map((s) => s.id) }, 'worker started');

  let closing: Promise<void> | null = null;
  return {
    slots,
    async close(options = {}) {
      // Not memoised as a whole: a forced close must still reach slots a graceful close is waiting on.
      await Promise.all(slots.map((s) => s.stop(options)));
      closing ??= (async () => {
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

// Starts a deploy-service worker process: config, Redis, S3, the slots, and an orderly shutdown on SIGTERM/SIGINT.
import { ConfigError, Storage, createLogger, createRedis, createS3Client, describeError, loadConfigOrExit } from '@slipway/shared';
import { SandboxUnavailableError } from './sandbox/sandbox';
import { startWorker } from './queue/worker';

const config = loadConfigOrExit('deploy-service');
const logger = createLogger('deploy-service', config.logLevel);
const redis = createRedis(config.redisUrl, logger);
const storage = new Storage(createS3Client(config.s3, config.uploadConcurrency), config.s3.bucket);

// Declared and wired before the first await, so a signal during start-up is handled too.
let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
let shuttingDown = false;
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
await connectWithRetry();
try {
  worker = await startWorker({ config, redis, storage, logger });
} catch (err) {
  if (!(err instanceof SandboxUnavailableError) && !(err instanceof ConfigError)) throw err;
  console.error(`deploy-service: ${err.message}`);
  process.exit(1);
}

async function connectWithRetry(): Promise<void> {
  // The reconnect strategy covers later outages; the first connect is retried here the same way.
  for (let attempt = 1; ; attempt++) {
    try {
      await redis.connect();
      return;
    } catch (err) {
      logger.error({ err: describeError(err), attempt }, 'redis connect failed; retrying');
      await new Promise((r) => setTimeout(r, Math.min(500 * attempt, 5000)));
    }
  }
}

async function shutdown(signal: string): Promise<void> {
  const running = worker;
  if (!running) {
    // Still starting: nothing claimed yet, so nothing to hand back.
    logger.info({ signal }, 'signal before the worker started; exiting');
    process.exit(0);
  }
  if (shuttingDown) {
    logger.warn({ signal }, 'second signal: stopping running builds now');
    await running.close({ force: true });
    process.exit(1);
  }
  shuttingDown = true;
  logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down: no new builds; running builds get the grace period');
  const grace = setTimeout(() => void running.close({ force: true }), config.shutdownGraceMs);
  setTimeout(() => process.exit(1), config.shutdownGraceMs + 10_000).unref();
  await running.close();
  clearTimeout(grace);
  try {
    await redis.close();
  } catch (err) {
    logger.error({ err: describeError(err) }, 'closing redis failed');
  }
  logger.info('stopped');
  process.exit(0);
}
process.on('unhandledRejection', (err) => logger.error({ err: describeError(err) }, 'unhandled rejection'));

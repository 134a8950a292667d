// Starts a deploy-service worker process: config, Redis, S3, the slots, and an orderly shutdown on SIGTERM/SIGINT.
import { Storage, createLogger, createRedis, createS3Client, describeError, loadConfigOrExit } from '@slipway/shared';
import { BuildUserError } from './build-user';
import { startWorker } from './worker';

const config = loadConfigOrExit('deploy-service');
const logger = createLogger('deploy-service', config.logLevel);
const redis = createRedis(config.redisUrl, logger);
const storage = new Storage(createS3Client(config.s3), config.s3.bucket);

await connectWithRetry();
let worker: Awaited<ReturnType<typeof startWorker>>;
try {
  worker = await startWorker({ config, redis, storage, logger });
} catch (err) {
  if (!(err instanceof BuildUserError)) throw err;
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

let shuttingDown = false;
async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) {
    logger.warn({ signal }, 'second signal: stopping running builds now');
    await worker.close({ force: true });
    process.exit(1);
  }
  shuttingDown = true;
  logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down: no new builds; running builds get the grace period');
  const grace = setTimeout(() => void worker.close({ force: true }), config.shutdownGraceMs);
  setTimeout(() => process.exit(1), config.shutdownGraceMs + 10_000).unref();
  await worker.close();
  clearTimeout(grace);
  try {
    await redis.close();
  } catch (err) {
    logger.error({ err: describeError(err) }, 'closing redis failed');
  }
  logger.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('unhandledRejection', (err) => logger.error({ err: describeError(err) }, 'unhandled rejection'));

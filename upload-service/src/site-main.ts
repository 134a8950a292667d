// Starts the site server (sites/server.ts): the process that only serves sites, on SITE_PORT, with
// read access to Redis and S3; an orderly shutdown on SIGTERM/SIGINT. Scaled apart from the API.
import type { AddressInfo } from 'node:net';
import { Queue, Storage, createLogger, createRedis, createS3Client, describeError, duplicateRedis, loadConfigOrExit } from '@slipway/shared';
import { LivePointers, followChanges } from './sites/pointers';
import { createSiteServer } from './sites/server';

const config = loadConfigOrExit('site-server');
const logger = createLogger('site-server', config.logLevel);
const redis = createRedis(config.redisUrl, logger);
const storage = new Storage(createS3Client(config.s3, config.uploadConcurrency), config.s3.bucket);
const queue = new Queue(redis);

// A connection problem at start is logged and retried in the background, like one later on.
redis.connect().catch((err: unknown) => logger.error({ err: describeError(err) }, 'redis connect failed'));

// Aliases and live builds held in memory, dropped when a script publishes a change (sites/pointers.ts).
const pointers = new LivePointers(queue);
const unfollow = followChanges(duplicateRedis(redis, logger, 'site changes'), pointers, logger);
const server = createSiteServer({ config, queue, redis, storage, logger, pointers });
server.listen(config.sitePort, config.host, () => {
  const { port } = server.address() as AddressInfo;
  logger.info({ host: config.host, port, sites: config.siteUrlTemplate }, `site server listening on port ${port}`);
});

/** Within compose's 10 s stop grace and Kubernetes' 30 s. */
const SHUTDOWN_DEADLINE_MS = 8000;
let shuttingDown = false;

/** Stops accepting, lets the answers in flight finish (cut at the deadline), closes Redis, exits 0. */
async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) process.exit(1);
  shuttingDown = true;
  const started = Date.now();
  logger.info({ signal }, 'shutting down: no new requests, finishing the ones in flight');
  setTimeout(() => process.exit(1), SHUTDOWN_DEADLINE_MS + 1500).unref();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const cut = setTimeout(() => server.closeAllConnections(), SHUTDOWN_DEADLINE_MS);
  cut.unref();
  await closed;
  clearTimeout(cut);
  await unfollow();
  await redis.close().catch((err: unknown) => logger.error({ err: describeError(err) }, 'closing redis failed'));
  logger.info({ ms: Date.now() - started }, 'stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('unhandledRejection', (err) => logger.error({ err: describeError(err) }, 'unhandled rejection'));

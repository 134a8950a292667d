// Starts the upload-service: config, Redis, S3, the HTTP server, and an orderly shutdown on SIGTERM/SIGINT.
import type { AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { ConfigError, Queue, Storage, createLogger, prepareSecrets, createRedis, createS3Client, describeError, leftoverFolders, loadConfigOrExit } from '@slipway/shared';
import { createApp } from './app';
import { startNotifier } from './notify/notifier';
import type { LogStreams } from './routes/log-stream';

const config = loadConfigOrExit('upload-service');
const logger = createLogger('upload-service', config.logLevel);
const redis = createRedis(config.redisUrl, logger);
const storage = new Storage(createS3Client(config.s3, config.uploadConcurrency), config.s3.bucket);
const queue = new Queue(redis);

// The clone folders of upload-services that died mid-request (their names hold the pid).
for (const dir of await leftoverFolders(config.workDir ?? tmpdir(), 'slipway-clone-')) {
  await rm(dir, { recursive: true, force: true }).then(
    () => logger.info({ dir }, 'removed the clone folder of an upload-service that is gone'),
    (err: unknown) => logger.warn({ err: describeError(err), dir }, 'could not remove the clone folder of an upload-service that is gone'),
  );
}

// A connection problem at start is logged and retried in the background, like one later on.
redis.connect().catch((err: unknown) => logger.error({ err: describeError(err) }, 'redis connect failed'));
// Once Redis answers: the secrets keys must cover what it holds (else stop, saying which key), and a rotation re-seals.
redis.once('ready', () => {
  prepareSecrets(redis, config.secrets, logger).catch((err: unknown) => {
    if (!(err instanceof ConfigError)) return logger.error({ err: describeError(err) }, 'sealing secrets again failed; it is tried again at the next start');
    console.error(`upload-service: ${err.message}`);
    process.exit(1);
  });
});
storage.ensureBucket().catch((err: unknown) => logger.warn({ err: describeError(err), bucket: config.s3.bucket }, 'could not check or create the bucket'));

// Anyone who can reach an API without tokens can deploy (run code on the workers), cancel and redeploy.
if (config.apiTokenHashes.length === 0 && !isLoopback(config.host) && !config.allowAnonymous) {
  console.error(
    `upload-service: HOST=${config.host} lets other machines reach the API, and API_TOKENS is not set, so anyone could deploy; ` +
      'set API_TOKENS, listen on loopback (HOST=127.0.0.1), or set ALLOW_ANONYMOUS=1 if a proxy in front checks who may',
  );
  process.exit(1);
}

// The API's host names keep sites off its origin (its page keeps the token in the browser); a request
// can never claim the host it came to, but the API may be reached under other names too.
if (!isLoopback(config.host) && config.apiHosts.length === 0) {
  logger.warn({ host: config.host }, 'API_HOSTS is not set and the API listens beyond loopback: list the host names the API is reached at (e.g. API_HOSTS=slipway.example.com), so no project can take one as a custom domain');
}

const app = createApp({ config, queue, storage, logger, redisReady: () => redis.isReady });
// Commit statuses and pull-request comments for what the workers do (notify/).
const notifier = startNotifier({ config, redis, queue, logger });
const server = app.listen(config.port, config.host, () => {
  const { port } = server.address() as AddressInfo;
  logger.info({ host: config.host, port, sites: config.siteUrlTemplate, tokens: config.apiTokenHashes.length, privateReads: config.privateReads }, `upload-service listening on http://localhost:${port}`);
});

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** Compose's default stop grace is 10 s and Kubernetes' 30 s: exit well within the shorter. */
const SHUTDOWN_DEADLINE_MS = 8000;

let shuttingDown = false;
/**
 * In order: stop accepting, end the live log streams (each gets `event: end` / `data: shutdown`),
 * close idle keep-alive connections, let the requests in flight finish, then close Redis and exit 0.
 * Past SHUTDOWN_DEADLINE_MS what is still open is cut; a second signal exits at once.
 */
async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) {
    logger.warn({ signal }, 'second signal: exiting now');
    process.exit(1);
  }
  shuttingDown = true;
  const started = Date.now();
  logger.info({ signal }, 'shutting down: no new requests, ending log streams, finishing the ones in flight');
  // The last resort, if closing itself hangs; unref'd so it never keeps the process alive.
  setTimeout(() => process.exit(1), SHUTDOWN_DEADLINE_MS + 1500).unref();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  await (app.locals.logStreams as LogStreams).closeAll();
  server.closeIdleConnections();
  const cut = setTimeout(() => {
    logger.warn({ ms: Date.now() - started }, 'requests still in flight at the shutdown deadline: closing them');
    server.closeAllConnections();
  }, SHUTDOWN_DEADLINE_MS);
  cut.unref();
  await closed;
  clearTimeout(cut);
  await notifier.close();
  try {
    await redis.close();
  } catch (err) {
    logger.error({ err: describeError(err) }, 'closing redis failed');
  }
  logger.info({ ms: Date.now() - started }, 'stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('unhandledRejection', (err) => logger.error({ err: describeError(err) }, 'unhandled rejection'));

// Redis connections: one factory so every client has an error listener (a client without one takes
// the process down on a connection error) and the same reconnect backoff.
import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  ErrorReply,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
  TimeoutError,
  createClient,
} from 'redis';
import type { Logger } from './logger';

const newClient = (url: string) =>
  createClient({
    url,
    // While disconnected, a command fails at once (ClientOfflineError) instead of waiting in a queue:
    // the API answers 503 and a worker backs off, rather than either hanging.
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 5000,
      // Exponential backoff with jitter, capped at 5 s: reconnect for ever, never hammer a restarting server.
      reconnectStrategy: (retries: number) => Math.min(100 * 2 ** Math.min(retries, 6), 5000) + Math.floor(Math.random() * 100),
    },
  });

export type Redis = ReturnType<typeof newClient>;

export function createRedis(url: string, logger: Logger, name = 'redis'): Redis {
  return watchConnection(newClient(url), logger, name);
}

/** A second connection with the same settings, for a blocking command (which holds its connection). */
export function duplicateRedis(client: Redis, logger: Logger, name: string): Redis {
  return watchConnection(client.duplicate(), logger, name);
}

/** Logs an outage once and its recovery with the downtime, instead of an error per retry. */
function watchConnection(client: Redis, logger: Logger, name: string): Redis {
  let downSince: number | null = null;
  client.on('error', (err: Error) => {
    if (downSince === null) {
      downSince = Date.now();
      logger.error({ err: err.message, client: name }, 'redis connection lost');
    }
  });
  client.on('ready', () => {
    if (downSince !== null) {
      logger.info({ client: name, downMs: Date.now() - downSince }, 'redis connection restored');
      downSince = null;
    }
  });
  return client;
}

/** True for errors that mean "Redis is not reachable right now" rather than a bad command. */
const TRANSIENT_REPLIES = /^(LOADING|READONLY|MASTERDOWN|BUSY|TRYAGAIN|OOM)\b/;
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

export function isRedisUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  // A server that is loading its AOF, failing over, or out of memory under noeviction: wait and retry.
  if (err instanceof ErrorReply && TRANSIENT_REPLIES.test(err.message)) return true;
  return (
    err instanceof ClientOfflineError ||
    err instanceof ClientClosedError ||
    err instanceof ConnectionTimeoutError ||
    err instanceof SocketClosedUnexpectedlyError ||
    err instanceof SocketTimeoutError ||
    err instanceof TimeoutError
  );
}

/** True when the command was never sent: the client was offline (no offline queue), so Redis never saw it. */
export function isRedisOffline(err: unknown): boolean {
  return err instanceof ClientOfflineError;
}

// Redis connections: one factory so every client has an error listener (a client without one takes
// the process down on a connection error) and the same reconnect backoff.
import {
  ClientClosedError,
  DisconnectsClientError,
  ClientOfflineError,
  ConnectionTimeoutError,
  ErrorReply,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
  TimeoutError,
  createClient,
} from 'redis';
import type { Logger } from '../logger';

const newClient = (url: string) =>
  createClient({
    url,
    // While disconnected, a command fails at once (ClientOfflineError) instead of waiting in a queue:
    // the API answers 503 and a worker backs off, rather than either hanging.
    disableOfflineQueue: true,
    // No per-command timer: node-redis's (5 s by default) only covers the wait before a command is
    // written, and its AbortSignal per command cost a quarter of a busy worker's CPU in the queue
    // bench. watchReplies bounds every command on these connections instead (see below).
    commandOptions: { timeout: 0 },
    socket: {
      connectTimeout: 5000,
      // Exponential backoff with jitter, capped at 5 s: reconnect for ever, never hammer a restarting server.
      reconnectStrategy: (retries: number) => Math.min(100 * 2 ** Math.min(retries, 6), 5000) + Math.floor(Math.random() * 100),
    },
  });

export type Redis = ReturnType<typeof newClient>;

export function createRedis(url: string, logger: Logger, name = 'redis'): Redis {
  return watchReplies(watchConnection(newClient(url), logger, name), logger, name);
}

/**
 * A second connection with the same settings, for a blocking command (which holds its connection;
 * its claim has a watchdog of its own, see Queue.claim, so the reply watchdog is not added).
 */
export function duplicateRedis(client: Redis, logger: Logger, name: string): Redis {
  // Without the reply watchdog, it keeps node-redis's command timeout (for a command never written).
  return watchConnection(client.duplicate({ commandOptions: { timeout: DUPLICATE_COMMAND_TIMEOUT_MS } }), logger, name);
}
const DUPLICATE_COMMAND_TIMEOUT_MS = 5000;

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

/** How often a connection is asked for a PING, and how long its answer may take. */
const PROBE_MS = 2000;
const PROBE_REPLY_MS = 3000;
/** A connection that neither becomes ready nor fails for this long is stuck in its handshake. */
const STUCK_MS = 10_000;

/**
 * Every command ends: node-redis 6's command timeout covers only the wait before a command is
 * written, and a socket timeout never fires while commands are being written, so on a network that
 * went silent (packets dropped, no reset) every command would wait for ever. A PING every 2 s that
 * gets no answer in 3 s (or a handshake stuck for 10 s) drops the connection: the commands waiting
 * fail at once as Redis unavailable (503 for the API, a back-off for a worker), and the client
 * connects again. So no command waits more than about 5 s past the moment Redis stopped answering.
 */
function watchReplies(client: Redis, logger: Logger, name: string): Redis {
  let probing = false;
  let kicking = false;
  let lastSign = Date.now();
  for (const event of ['ready', 'error', 'reconnecting', 'connect']) client.on(event, () => (lastSign = Date.now()));
  const kick = (why: string) => {
    logger.error({ client: name, why }, 'redis stopped answering: dropping the connection and connecting again');
    kicking = true;
    lastSign = Date.now();
    try {
      client.destroy();
      client.connect().catch(() => undefined);
    } finally {
      kicking = false;
    }
  };
  const timer = setInterval(() => {
    if (probing || !client.isOpen) return;
    if (!client.isReady) {
      if (Date.now() - lastSign > STUCK_MS) kick(`its connection did not become ready in ${STUCK_MS / 1000} s`);
      return;
    }
    probing = true;
    let answered = false;
    const deadline = setTimeout(() => {
      if (!answered && client.isReady) kick(`no answer to PING in ${PROBE_REPLY_MS / 1000} s`);
    }, PROBE_REPLY_MS);
    client
      .ping()
      .catch(() => undefined)
      .finally(() => {
        answered = true;
        clearTimeout(deadline);
        probing = false;
        lastSign = Date.now();
      });
  }, PROBE_MS);
  timer.unref();
  // Closed by its owner (not by a kick): the watchdog stops with it.
  client.on('end', () => {
    if (!kicking) clearInterval(timer);
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
    err instanceof DisconnectsClientError ||
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

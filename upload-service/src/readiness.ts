// One readiness check (the API's /readyz and the site server's), within a probe's budget: Kubernetes
// waits 1 s for a probe by default, compose 5 s. The answer names the part that is down; the reason
// goes to the log only (it can name internal addresses).
import { describeError, outageOf, withDeadline, type Logger } from '@slipway/shared';

/** Each readiness check's deadline. */
export const READY_DEADLINE_MS = 900;

/**
 * How long a process may take to become ready: until it has been once (Redis connected, the bucket
 * made), at most this long after it started, a failing check is its start, not an outage. It still
 * answers 503, but logs only at debug.
 */
export const STARTING_MS = 60_000;
const readyOnce = new Set<string>();

export async function readiness(what: 'redis' | 's3', probe: () => Promise<unknown>, logger: Logger, uptimeMs = process.uptime() * 1000): Promise<'ok' | 'out of memory' | 'unavailable'> {
  try {
    await withDeadline(probe(), READY_DEADLINE_MS, `${what} did not answer within ${READY_DEADLINE_MS} ms`);
    readyOnce.add(what);
    return 'ok';
  } catch (err) {
    const starting = !readyOnce.has(what) && uptimeMs < STARTING_MS;
    logger[starting ? 'debug' : 'warn']({ err: describeError(err), what }, starting ? 'not ready yet (starting)' : 'readiness check failed');
    return outageOf(err) === 'redis-oom' ? 'out of memory' : 'unavailable';
  }
}

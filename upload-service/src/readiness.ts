// One readiness check (the API's /readyz and the site server's), within a probe's budget: Kubernetes
// waits 1 s for a probe by default, compose 5 s. The answer names the part that is down; the reason
// goes to the log only (it can name internal addresses).
import { describeError, outageOf, withDeadline, type Logger } from '@slipway/shared';

/** Each readiness check's deadline. */
export const READY_DEADLINE_MS = 900;

export async function readiness(what: 'redis' | 's3', probe: () => Promise<unknown>, logger: Logger): Promise<'ok' | 'out of memory' | 'unavailable'> {
  try {
    await withDeadline(probe(), READY_DEADLINE_MS, `${what} did not answer within ${READY_DEADLINE_MS} ms`);
    return 'ok';
  } catch (err) {
    logger.warn({ err: describeError(err), what }, 'readiness check failed');
    return outageOf(err) === 'redis-oom' ? 'out of memory' : 'unavailable';
  }
}

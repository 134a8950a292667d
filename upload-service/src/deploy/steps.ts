// The Redis and S3 steps of a deployment's preparation, each safe to ask again: the enqueue that
// finds out what happened when Redis fails on the way, the undo of a deployment that failed, and the
// wrapper that names the platform part a step failed on.
import { S3UnavailableError, SlipwayError, UnavailableError, describeError, isRedisOffline, isRedisUnavailable, storageKeys, type DeploymentRecord, type Logger, type Queue, type Storage } from '@slipway/shared';

/** How long a failed enqueue is asked again before the answer is 503. */
const ENQUEUE_CONFIRM_MS = 10_000;

/**
 * Enqueues, and finds out what happened when Redis fails on the way. Enqueue is idempotent, so it
 * is asked again (for up to ENQUEUE_CONFIRM_MS) until Redis answers: any status but `missing` means
 * the id is on the list. 'unknown' only when a request may have reached Redis and no answer came.
 */
export async function enqueueConfirmed(queue: Queue, id: string, fields: Partial<DeploymentRecord>): Promise<'queued' | 'not-queued' | 'record-gone' | 'unknown'> {
  const deadline = Date.now() + ENQUEUE_CONFIRM_MS;
  let maybeSent = false;
  for (let wait = 100; ; wait = Math.min(wait * 2, 1000)) {
    try {
      // Missing: the record is gone (Redis lost it; it no longer expires while the upload goes on).
      return (await queue.enqueue(id, fields)) === 'missing' ? 'record-gone' : 'queued';
    } catch (err) {
      if (!isRedisUnavailable(err)) return 'not-queued'; // Redis answered with an error: the script did not run
      // An offline client sends nothing; any other failure (reset, timeout) may have come after Redis ran it.
      if (!isRedisOffline(err)) maybeSent = true;
      if (Date.now() > deadline) return maybeSent ? 'unknown' : 'not-queued';
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** Removes what a failed deployment wrote; each step on its own so one failure does not skip the other. */
export async function undo(deps: { storage: Storage; queue: Queue }, id: string, logger: Logger): Promise<void> {
  try {
    await deps.storage.deletePrefix(`${storageKeys.source(id)}/`);
  } catch (err) {
    logger.error({ err: describeError(err) }, 'could not remove the uploaded source of a failed deployment');
  }
  try {
    await deps.queue.discard(id);
  } catch (err) {
    // The `uploading` record expires on its own.
    logger.error({ err: describeError(err) }, 'could not remove the record of a failed deployment');
  }
}

/** Runs a Redis or S3 step; an error that is not Slipway's own means the platform is unavailable. */
export async function platform<T>(what: 'Redis' | 'S3', step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    // S3's own error names the part and the failure (never its address); the client also learns it lost nothing.
    if (err instanceof S3UnavailableError) throw new UnavailableError(`${err.message}; nothing was enqueued, try again shortly`, err);
    if (err instanceof SlipwayError) throw err;
    // The cause is logged by the error handler; the client gets no internal addresses.
    throw new UnavailableError(`${what === 'S3' ? 'object storage' : 'Redis'} is unavailable; nothing was enqueued, try again shortly`, err);
  }
}

// Which dependency an error says is down, for what people read: a deployment's reason, an API answer,
// a readiness report. S3 first: some of its network errors carry the same codes as Redis's.
import { ErrorReply } from 'redis';
import { describeError } from './errors';
import { isRedisUnavailable } from './io/redis';
import { S3UnavailableError, failureKind, isS3Unavailable } from './io/s3';

export type Outage = 's3' | 'redis' | 'redis-oom';

export function outageOf(err: unknown): Outage | null {
  if (isS3Unavailable(err)) return 's3';
  if (err instanceof ErrorReply && /^OOM\b/.test(err.message)) return 'redis-oom';
  if (isRedisUnavailable(err)) return 'redis';
  return null;
}

/** A line that names the part that failed, without its addresses: for a record's error or a log. */
export function describeFailure(err: unknown): string {
  switch (outageOf(err)) {
    case 's3':
      return err instanceof S3UnavailableError ? err.message : new S3UnavailableError(err).message;
    case 'redis-oom':
      return 'Redis is out of memory (maxmemory reached; with noeviction it refuses writes)';
    case 'redis':
      return `Redis is unavailable (${failureKind(err)})`;
    default:
      return describeError(err);
  }
}

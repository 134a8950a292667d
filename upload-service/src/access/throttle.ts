// Failed authentication, throttled per client address: a wrong API token, a hook signature or hook
// token that does not match. Past AUTH_FAILURE_LIMIT failures in a window, the address is answered 429
// with Retry-After before anything else is done for it (no token hashing, no body read, no Redis).
// Counts live in this process (a bounded LRU), so each API replica counts on its own.
import type { NextFunction, Request, Response } from 'express';
import { LRUCache } from 'lru-cache';
import { TooManyRequestsError } from '@slipway/shared';

export const AUTH_FAILURE_WINDOW_MS = 10 * 60_000;
/** Addresses tracked at once: an attacker with more addresses than this only pushes out the oldest. */
const MAX_TRACKED = 100_000;

interface Failures {
  count: number;
  resetAt: number;
}

export class FailureThrottle {
  private readonly failures = new LRUCache<string, Failures>({ max: MAX_TRACKED });

  constructor(
    private readonly limit: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Throws TooManyRequestsError while `key` is past its limit. */
  check(key: string): void {
    const entry = this.current(key);
    if (!entry || entry.count < this.limit) return;
    const seconds = Math.max(1, Math.ceil((entry.resetAt - this.now()) / 1000));
    throw new TooManyRequestsError(
      `more than ${this.limit} failed authentications from this address in ${AUTH_FAILURE_WINDOW_MS / 60_000} minutes (AUTH_FAILURE_LIMIT); try again in ${seconds} s`,
      seconds,
    );
  }

  /** Counts one failure for `key`. */
  fail(key: string): void {
    const entry = this.current(key);
    if (entry) entry.count += 1;
    else this.failures.set(key, { count: 1, resetAt: this.now() + AUTH_FAILURE_WINDOW_MS });
  }

  /** Middleware: refuses a throttled address before the route does any work. */
  guard = (req: Request, _res: Response, next: NextFunction): void => {
    this.check(clientKey(req));
    next();
  };

  private current(key: string): Failures | undefined {
    const entry = this.failures.get(key);
    if (entry && entry.resetAt <= this.now()) {
      this.failures.delete(key);
      return undefined;
    }
    return entry;
  }
}

/** The client's address as Express sees it (the socket's, or per `trust proxy`). */
export function clientKey(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
}

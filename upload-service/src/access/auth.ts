// Who may change things. With API_TOKENS set, every mutating endpoint (and, with PRIVATE_READS=1,
// every read but the sites, /healthz and /readyz) needs `Authorization: Bearer <token>`; tokens are compared
// by their SHA-256 in constant time. Whatever the tokens, a browser's mutating request must come
// from the API's own origin, so a deployed site's page cannot make a visitor's browser deploy,
// cancel or redeploy (sites live on other hosts of the same site, so SameSite would not stop it).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { ForbiddenError, UnauthorizedError, type Config } from '@slipway/shared';
import { clientKey, type FailureThrottle } from './throttle';

/** A wrong token counts against the address in `failures`; past its limit the address gets 429 before any check. */
export function requireToken(config: Pick<Config, 'apiTokenHashes'>, failures: FailureThrottle) {
  const accepted = config.apiTokenHashes.map((h) => Buffer.from(h, 'hex'));
  return (req: Request, res: Response, next: NextFunction): void => {
    if (accepted.length === 0) return next();
    failures.check(clientKey(req));
    const header = req.get('authorization') ?? '';
    const token = /^Bearer +(\S+)$/i.exec(header)?.[1];
    if (token) {
      const hash = createHash('sha256').update(token).digest();
      // Every accepted hash is compared, so the time taken says nothing about which one was close.
      let ok = false;
      for (const candidate of accepted) ok = timingSafeEqual(hash, candidate) || ok;
      if (ok) return next();
    }
    failures.fail(clientKey(req));
    res.set('WWW-Authenticate', 'Bearer realm="slipway"');
    next(new UnauthorizedError(token ? 'the API token is not valid' : 'this endpoint needs an API token: send Authorization: Bearer <token>'));
  };
}

/** Refuses a browser request to change something that comes from another origin (any site's page). */
export function sameOriginOnly(req: Request, _res: Response, next: NextFunction): void {
  const origin = req.get('origin');
  const fetchSite = req.get('sec-fetch-site');
  let foreign = fetchSite !== undefined && fetchSite !== 'same-origin' && fetchSite !== 'none';
  if (origin !== undefined) {
    try {
      foreign ||= new URL(origin).host !== req.get('host');
    } catch {
      foreign = true; // "null" (a sandboxed frame, a file) or garbage
    }
  }
  if (foreign) return next(new ForbiddenError(`changes are accepted only from the API's own page, not from ${origin ?? `a ${fetchSite} page`}`));
  next();
}

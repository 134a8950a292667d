// The site server: the process role that only serves sites (site-main.ts starts it; the API serves
// them too with SERVE_SITES). It reads Redis and S3 and writes neither, so it can run under read-only
// credentials; what it must know per request it holds in memory (pointers.ts). A request whose Host names no site gets a plain 404; /healthz and /readyz answer only
// to hosts that are not sites (a probe's), so no site's own paths are shadowed.
import express, { type NextFunction, type Request, type Response } from 'express';
import { describeError, outageOf, type Config, type Logger, type Queue, type Redis, type Storage } from '@slipway/shared';
import { FailureThrottle } from '../access/throttle';
import { READY_DEADLINE_MS, readiness } from '../readiness';
import type { LivePointers, Pointers } from './pointers';
import { PreviewGate } from './protect';
import { sitesMiddleware } from './sites';


/** The middleware that answers every request for a site (the gate closes protected previews). */
export function siteServing(config: Config, storage: Storage, gate: PreviewGate, pointers: Pointers) {
  return sitesMiddleware(storage, { baseDomain: config.baseDomain, apiHosts: config.apiHosts, cacheBytes: config.siteCacheBytes, cacheFileBytes: config.siteCacheFileBytes, gate, pointers, skew: config.skew });
}

/** The site server's app, with the pointers it holds (kept current by followChanges: pointers.ts). */
export function createSiteApp(deps: { config: Config; queue: Queue; redis: Redis; storage: Storage; logger: Logger; pointers: LivePointers }): express.Express {
  const { config, queue, storage, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  const gate = new PreviewGate(config.secrets, queue.projects, new FailureThrottle(config.authFailureLimit));
  app.use(siteServing(config, storage, gate, deps.pointers));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // Ready: Redis has answered (a read) since the start, and S3 answers. A Redis outage later leaves it
  // ready: it serves what it holds (pointers.ts), so the load balancer must keep sending it traffic.
  let redisSeen = false;
  app.get('/readyz', async (_req, res) => {
    const [redis, s3] = await Promise.all([readiness('redis', () => deps.redis.ping(), logger), readiness('s3', () => storage.ping(AbortSignal.timeout(READY_DEADLINE_MS)), logger)]);
    if (redis === 'ok') redisSeen = true;
    res.status(redisSeen && s3 === 'ok' ? 200 : 503).json({ redis: redis === 'ok' || !redisSeen ? redis : `${redis}: serving what it holds`, s3 });
  });
  app.use((_req, res) => {
    res.status(404).type('text/plain').send('No site at this address\n');
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const outage = outageOf(err);
    if (outage === null) logger.error({ err: describeError(err), host: req.headers.host, path: req.path }, 'site request failed');
    if (res.headersSent) return void res.end();
    if (outage === null) return void res.status(500).type('text/plain').send('Internal Server Error\n');
    res.status(503).set('Retry-After', '5').type('text/plain').send('Service Unavailable: try again shortly\n');
  });
  return app;
}

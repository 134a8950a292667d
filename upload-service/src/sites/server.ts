// The site server: the process role that only serves sites (site-main.ts starts it; the API serves
// them too with SERVE_SITES). It reads Redis and S3 and writes neither, so it can run under read-only
// credentials; what it must know per request it holds in memory (pointers.ts). A bare `node:http`
// server: Express's own cost per request is about half of a warm answer's. A request whose Host names
// no site gets a plain 404; /healthz and /readyz answer only to hosts that are not sites (a probe's),
// so no site's own paths are shadowed.
import http from 'node:http';
import { describeError, outageOf, type Config, type Logger, type Queue, type Redis, type Storage } from '@slipway/shared';
import { FailureThrottle } from '../access/throttle';
import { READY_DEADLINE_MS, readiness } from '../readiness';
import type { LivePointers, Pointers } from './pointers';
import { PreviewGate } from './protect';
import { clientOf, reply, type Req, type Res } from './reply';
import { sitesMiddleware } from './sites';

/** The handler that answers every request for a site (the gate closes protected previews). */
export function siteServing(config: Config, storage: Storage, gate: PreviewGate, pointers: Pointers) {
  return sitesMiddleware(storage, { baseDomain: config.baseDomain, apiHosts: config.apiHosts, cacheBytes: config.siteCacheBytes, cacheFileBytes: config.siteCacheFileBytes, gate, pointers, client: clientOf(config.trustProxy), skew: config.skew });
}

/** The site server, with the pointers it holds (kept current by followChanges: pointers.ts). */
export function createSiteServer(deps: { config: Config; queue: Queue; redis: Redis; storage: Storage; logger: Logger; pointers: LivePointers }): http.Server {
  const { config, queue, storage, logger } = deps;
  const gate = new PreviewGate(config.secrets, queue.projects, new FailureThrottle(config.authFailureLimit));
  const sites = siteServing(config, storage, gate, deps.pointers);
  // Ready: Redis has answered (a read) since the start, and S3 answers. A Redis outage later leaves it
  // ready: it serves what it holds (pointers.ts), so the load balancer must keep sending it traffic.
  let redisSeen = false;
  const notASite = async (req: Req, res: Res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') return reply(req, res, 200, JSON.stringify({ status: 'ok' }), {}, 'application/json; charset=utf-8');
    if (req.method === 'GET' && path === '/readyz') {
      const [redis, s3] = await Promise.all([readiness('redis', () => deps.redis.ping(), logger), readiness('s3', () => storage.ping(AbortSignal.timeout(READY_DEADLINE_MS)), logger)]);
      if (redis === 'ok') redisSeen = true;
      const body = { redis: redis === 'ok' || !redisSeen ? redis : `${redis}: serving what it holds`, s3 };
      return reply(req, res, redisSeen && s3 === 'ok' ? 200 : 503, JSON.stringify(body), {}, 'application/json; charset=utf-8');
    }
    reply(req, res, 404, 'No site at this address\n');
  };
  const failed = (req: Req, res: Res, err: unknown) => {
    const outage = outageOf(err);
    if (outage === null) logger.error({ err: describeError(err), host: req.headers.host, path: req.url }, 'site request failed');
    if (res.headersSent) return void res.destroy();
    if (outage === null) return reply(req, res, 500, 'Internal Server Error\n');
    reply(req, res, 503, 'Service Unavailable: try again shortly\n', { 'Retry-After': '5' });
  };
  return http.createServer((req, res) => {
    let passed = false;
    sites(req, res, () => void (passed = true))
      .then(() => (passed ? notASite(req, res) : undefined))
      .catch((err: unknown) => failed(req, res, err));
  });
}

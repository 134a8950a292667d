// The HTTP API: createApp(deps) builds the Express app without listening, so tests can start it on
// port 0. Every error leaves through one handler that maps Slipway's error codes to HTTP statuses.
import express, { type NextFunction, type Request, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import pLimit from 'p-limit';
import {
  ConflictError,
  NotFoundError,
  SlipwayError,
  TooManyRequestsError,
  InvalidInputError,
  describeError,
  formatBytes,
  isDeploymentId,
  describeFailure,
  outageOf,
  publicRecord,
  type Config,
  type DeploymentRecord,
  type Logger,
  type Queue,
  type Storage,
} from '@slipway/shared';
import { requireToken, sameOriginOnly } from './access/auth';
import { createDeployment, idempotencyOf } from './deploy/deploy';
import { createMetrics } from './routes/metrics';
import { PAGE_HTML, PAGE_SCRIPT_HASH } from './page/page';
import { hooksRouter } from './routes/hooks';
import { projectsRouter } from './routes/projects';
import { siteServing } from './sites/server';
import { DirectPointers } from './sites/pointers';
import { PreviewGate } from './sites/protect';
import { FailureThrottle } from './access/throttle';
import { LogStreams } from './routes/log-stream';
import { READY_DEADLINE_MS, readiness } from './readiness';

export interface AppDeps {
  config: Config;
  queue: Queue;
  storage: Storage;
  logger: Logger;
  redisReady: () => boolean;
}

const RATE_WINDOW_MS = 60_000;

const STATUS_BY_CODE: Record<string, number> = {
  INVALID_INPUT: 400,
  INVALID_URL: 400,
  UNSAFE_PATH: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  BODY_TOO_LARGE: 413,
  REPO_TOO_LARGE: 413,
  CLONE_FAILED: 422,
  RATE_LIMITED: 429,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  UNAVAILABLE: 503,
};


export function createApp(deps: AppDeps): express.Express {
  const { queue, config } = deps;
  const app = express();
  app.disable('x-powered-by');
  // TRUST_PROXY: behind an ingress, the client is the address it forwards (else every client would
  // share the ingress's address, and its limits); without it X-Forwarded-For is ignored, never believed.
  app.set('trust proxy', config.trustProxy);

  const metrics = createMetrics(queue);
  // Live log streams, which a shutdown ends (main.ts) rather than waits for.
  const streams = new LogStreams(queue, config);
  app.locals.logStreams = streams;
  // One budget of failed authentications per address: API tokens, hook signatures, preview passwords.
  const failures = new FailureThrottle(config.authFailureLimit);
  const gate = new PreviewGate(config.secrets, queue.projects, failures);
  app.locals.previewGate = gate;
  // The sites have a process of their own (site-main.ts); with SERVE_SITES the API serves them too.
  if (config.serveSites) app.use(siteServing(config, deps.storage, gate, new DirectPointers(queue)));
  app.use(apiHeaders);
  app.use((req, res, next) => {
    const end = metrics.requestSeconds.startTimer();
    // The matched route pattern, not the path: ids must not become label values.
    res.on('finish', () => end({ method: req.method, route: (req.route as { path?: string } | undefined)?.path ?? 'unmatched', status: res.statusCode }));
    next();
  });
  // Per client address (see TRUST_PROXY). One budget for
  // every change a client asks for: deploy, cancel, redeploy.
  const changeLimit = rateLimit({
    windowMs: RATE_WINDOW_MS,
    limit: config.deployRateLimit,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    handler: (_req, _res, next) =>
      next(new TooManyRequestsError(`more than ${config.deployRateLimit} changes (deploy, cancel, redeploy, project changes) a minute from this address; the limit is ${config.deployRateLimit} (DEPLOY_RATE_LIMIT)`, RATE_WINDOW_MS / 1000)),
  });
  const clones = pLimit(config.maxConcurrentClones);
  // Before the JSON parser: a hook's signature is checked over its raw body.
  app.use(hooksRouter({ ...deps, clones, projects: queue.projects, failures }, changeLimit));
  // Not strict: a JSON string or number is valid JSON, and gets the clearer "must be a JSON object" answer.
  app.use(express.json({ limit: '16kb', strict: false }));

  app.get('/', (_req, res) => {
    res.type('html').send(PAGE_HTML);
  });

  const token = requireToken(config, failures);
  const readToken: express.RequestHandler = config.privateReads ? token : (_req, _res, next) => next();
  // What every change goes through (the same-origin rule, the token, the rate limit), and every read
  // with PRIVATE_READS=1; each calls next() on to the route below.
  app.post(['/deploy', '/deployments/:id/cancel', '/deployments/:id/redeploy'], sameOriginOnly, token, changeLimit);
  app.get(['/deployments/:id', '/status', '/deployments/:id/logs', '/deployments/:id/deliveries', '/queue', '/metrics'], readToken);

  app.use(projectsRouter({ ...deps, clones, projects: queue.projects, gate }, { change: [sameOriginOnly, token, changeLimit], read: readToken }));

  app.post('/deploy', async (req, res) => {
    let record;
    try {
      record = await createDeployment({ ...deps, clones }, req.body, idempotencyOf(req, 'deploy'));
    } catch (err) {
      metrics.deploys.inc({ outcome: err instanceof SlipwayError ? err.code : 'INTERNAL' });
      throw err;
    }
    metrics.deploys.inc({ outcome: 'accepted' });
    res.status(202).json({
      id: record.id,
      status: record.status,
      statusUrl: `/deployments/${record.id}`,
      logsUrl: `/deployments/${record.id}/logs`,
      url: record.url,
    });
  });

  app.get('/deployments/:id', async (req, res) => {
    res.json(publicRecord(await getRecord(queue, req.params.id)));
  });

  // Commit statuses and pull-request comments sent for it (notify/), and what each answered.
  app.get('/deployments/:id/deliveries', async (req, res) => {
    await getRecord(queue, req.params.id);
    res.json({ items: await queue.deliveries(req.params.id) });
  });

  app.get('/status', async (req, res) => {
    const id = req.query.id;
    if (typeof id !== 'string' || id === '') throw new InvalidInputError('give the deployment id as ?id=');
    const record = await getRecord(queue, id);
    res.json({ status: record.status });
  });

  app.get('/deployments/:id/logs', async (req, res) => {
    const id = req.params.id;
    await getRecord(queue, id);
    const after = typeof req.query.after === 'string' && /^\d+-\d+$/.test(req.query.after) ? req.query.after : '-';
    if (req.get('accept')?.includes('text/event-stream')) {
      await streams.serve(req, res, id, after);
      return;
    }
    res.json(await queue.readLog(id, after));
  });

  app.post('/deployments/:id/cancel', async (req, res) => {
    const record = await getRecord(queue, req.params.id);
    const result = await queue.cancel(record.id);
    if (result !== 'canceled' && result !== 'canceling') {
      throw new ConflictError(`deployment ${record.id} is ${result}; only a queued or building deployment can be canceled`);
    }
    res.status(202).json({ id: record.id, status: result });
  });

  app.post('/deployments/:id/redeploy', async (req, res) => {
    const record = await getRecord(queue, req.params.id);
    const result = await queue.redeploy(record.id);
    if (result !== 'requeued') throw new ConflictError(`deployment ${record.id} is ${result}; only a deployed, failed or canceled deployment can be redeployed`);
    res.status(202).json({ id: record.id, status: 'queued', statusUrl: `/deployments/${record.id}`, logsUrl: `/deployments/${record.id}/logs`, url: record.url });
  });

  app.get('/queue', async (_req, res) => {
    res.json(await queue.stats());
  });

  // Liveness: the process answers. Never a dependency check: a Redis outage must not get every
  // replica restarted (Kubernetes' livenessProbe, compose's restart policy act on this).
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  // Readiness: Redis takes a write and S3 answers, so requests can be served (readinessProbe, compose
  // healthcheck). Two O(1) calls in parallel, each given READY_DEADLINE_MS: the answer comes within
  // a probe's budget whatever Redis or S3 is doing, and names the part that is down.
  app.get('/readyz', async (_req, res) => {
    const [redis, s3] = await Promise.all([readiness('redis', () => queue.ready(), deps.logger), readiness('s3', () => deps.storage.ping(AbortSignal.timeout(READY_DEADLINE_MS)), deps.logger)]);
    res.status(redis === 'ok' && s3 === 'ok' ? 200 : 503).json({ redis, s3 });
  });

  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.use((req, _res, next) => next(new NotFoundError(`no route for ${req.method} ${req.path}`)));
  app.use(errorHandler(deps.logger));
  return app;
}

/** The API's own answers: never framed, never sniffed, no referrer; the page runs only its own inline script. */
function apiHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.set({
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Content-Security-Policy': `default-src 'none'; script-src 'sha256-${PAGE_SCRIPT_HASH}'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`,
  });
  next();
}

async function getRecord(queue: Queue, id: string): Promise<DeploymentRecord> {
  const record = isDeploymentId(id) ? await queue.get(id) : null;
  if (!record) throw new NotFoundError(`no deployment with id ${JSON.stringify(id.slice(0, 64))}`);
  return record;
}

function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const { status, code, message } = toHttpError(err);
    if (status >= 500) {
      const cause = err instanceof Error && err.cause !== undefined ? describeError(err.cause) : undefined;
      logger.error({ err: describeError(err), cause, method: req.method, path: req.path }, 'request failed');
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    if (err instanceof TooManyRequestsError) res.set('Retry-After', String(err.retryAfterSeconds));
    res.status(status).json({ error: { code, message } });
  };
}

function toHttpError(err: unknown): { status: number; code: string; message: string } {
  if (err instanceof SlipwayError) return { status: STATUS_BY_CODE[err.code] ?? 500, code: err.code, message: err.message };
  // body-parser's errors carry a `type`; they are the client's fault and say so.
  const type = (err as { type?: string } | null)?.type;
  if (type === 'entity.parse.failed') return { status: 400, code: 'INVALID_INPUT', message: 'the request body is not valid JSON' };
  if (type === 'entity.too.large') {
    const limit = formatBytes((err as { limit?: number }).limit ?? 16 * 1024);
    return { status: 413, code: 'BODY_TOO_LARGE', message: `the request body is larger than ${limit}; the limit is ${limit}` };
  }
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') return { status: 415, code: 'INVALID_INPUT', message: describeError(err) };
  // S3 first: some of its network errors carry the same codes as Redis's. The message names the part, not its address.
  const outage = outageOf(err);
  if (outage !== null) return { status: 503, code: 'UNAVAILABLE', message: `${describeFailure(err)}; try again shortly` };
  // Any other error is ours; its text may hold internals, so the client gets a generic line.
  return { status: 500, code: 'INTERNAL', message: 'internal error; the server log has the details' };
}

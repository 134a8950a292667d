// The site server as its own process (upload-service/src/site-main.ts), under a Redis user that may
// only read, as the production files run it: it serves a project's production and its closed preview,
// answers its own readiness, says "no site" for other hosts, never shadows a site's /healthz, and stops
// cleanly on SIGTERM. The API without SERVE_SITES serves no site.
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../upload-service/src/app';
import { startStack, type Stack } from './harness/stack';
import { waitUntil } from './harness/worker-process';
import { startSiteServer, type SiteServer } from './harness/site-server';
import { pino } from 'pino';
import { startRedisServer } from '../dev/redis-server';

const SITES_PASSWORD = 'sites-read-only-password-0123';
let stack: Stack;
let sitePort: number;
let server: SiteServer;
let child: ChildProcess;
let logs: string[] = [];
let production: string;

/** A request with its own Host header (fetch would send the address's). */
function get(port: number, host: string, path = '/', headers: Record<string, string> = {}) {
  return new Promise<{ status: number; text: string; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString(), headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The production files' read-only Redis user (docker-compose.yml): reads, subscriptions, nothing else. */
const addSitesUser = () => stack.redis.sendCommand(['ACL', 'SETUSER', 'sites', 'on', `>${SITES_PASSWORD}`, '~*', '&*', '-@all', '+@read', '+@connection', '+subscribe', '+psubscribe', '-@dangerous']);

beforeAll(async () => {
  stack = await startStack();
  const repoUrl = await stack.repo('edge-site', { 'index.html': '<h1>edge production</h1>', 'healthz': 'the site\'s own healthz' }, { extraBranches: { review: { 'index.html': '<h1>edge preview</h1>' } } });
  expect((await stack.post('/projects', { name: 'edge', repoUrl, previewPassword: 'edge preview password' })).status).toBe(201);
  for (const branch of ['main', 'review']) {
    const res = await stack.post('/projects/edge/deployments', { branch });
    expect((await stack.waitFor(res.body.id, undefined, 120_000)).status).toBe('deployed');
    if (branch === 'main') production = res.body.id;
  }
  await addSitesUser();
  const redisUrl = new URL(stack.env.REDIS_URL!);
  redisUrl.username = 'sites';
  redisUrl.password = SITES_PASSWORD;
  server = await startSiteServer({ ...stack.env, REDIS_URL: redisUrl.toString(), LOG_LEVEL: 'info' });
  sitePort = server.port;
  child = server.child;
  logs = server.logs;
}, 240_000);
afterAll(async () => {
  child?.kill('SIGKILL');
  await stack?.close();
});

const on = (label: string) => `${label}.${stack.config.baseDomain}:${sitePort}`;

describe('the site server', () => {
  it('serves production and a closed preview under a Redis user that can only read', async () => {
    expect(await get(sitePort, on('edge'))).toMatchObject({ status: 200, text: '<h1>edge production</h1>' });
    expect(await get(sitePort, on(production))).toMatchObject({ status: 401 });
    expect((await get(sitePort, on('review--edge'))).text).toContain('This preview is protected');
    // A site's own /healthz is the site's; a probe's host gets the server's.
    expect((await get(sitePort, on('edge'), '/healthz')).text).toBe('the site\'s own healthz');
    expect(JSON.parse((await get(sitePort, `127.0.0.1:${sitePort}`, '/healthz')).text)).toEqual({ status: 'ok' });
    expect(JSON.parse((await get(sitePort, `127.0.0.1:${sitePort}`, '/readyz')).text)).toEqual({ redis: 'ok', s3: 'ok' });
    // Not the API: no page, no routes.
    expect(await get(sitePort, `localhost:${sitePort}`, '/')).toMatchObject({ status: 404, text: 'No site at this address\n' });
    expect((await get(sitePort, `localhost:${sitePort}`, '/projects')).status).toBe(404);
    expect(logs.join('\n')).not.toMatch(/NOPERM|"level":50/);
  });

  it('could not write to Redis if it tried', async () => {
    const url = new URL(stack.env.REDIS_URL!);
    url.username = 'sites';
    url.password = SITES_PASSWORD;
    const { createRedis } = await import('@slipway/shared');
    const readOnly = createRedis(url.toString(), pino({ level: 'silent' }));
    await readOnly.connect();
    await expect(readOnly.hSet('project:edge', 'production', 'x')).rejects.toThrow(/NOPERM/);
    expect(await readOnly.hGet('project:edge', 'production')).toBe(production);
    readOnly.destroy();
  });

  it('answers a warm host from memory: no Redis read per request', async () => {
    await get(sitePort, on('edge'));
    const etag = (await get(sitePort, on('edge'))).headers.etag!;
    const reads = async () => {
      const stats = (await stack.redis.sendCommand(['INFO', 'commandstats'])) as string;
      return [...stats.matchAll(/^cmdstat_(hget|hmget|hgetall):calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[2]), 0);
    };
    const before = await reads();
    for (let i = 0; i < 20; i++) {
      expect((await get(sitePort, on('edge'))).status).toBe(200);
      expect((await get(sitePort, on('edge'), '/', { 'if-none-match': etag })).status).toBe(304);
    }
    // Only this test's own INFO reads (none of them a hash read) happened meanwhile.
    expect(await reads()).toBe(before);
  });

  it('sees a promote and a rollback at once through the change channel', async () => {
    const review = (await stack.get('/projects/edge')).body.branches.find((b: { alias: string }) => b.alias === 'review--edge').id as string;
    expect((await stack.post('/projects/edge/promote', { deploymentId: review })).status).toBe(200);
    await waitUntil('the site server to serve the promoted deployment', async () => ((await get(sitePort, on('edge'))).text === '<h1>edge preview</h1>' ? true : undefined), 1_000);
    expect((await stack.post('/projects/edge/rollback', { deploymentId: production })).status).toBe(200);
    await waitUntil('the site server to serve the rollback', async () => ((await get(sitePort, on('edge'))).text === '<h1>edge production</h1>' ? true : undefined), 1_000);
  });

  it('sees a change whose message was lost within the bound (5 s)', async () => {
    const review = (await stack.get('/projects/edge')).body.branches.find((b: { alias: string }) => b.alias === 'review--edge').id as string;
    // The subscription is cut, and the change is published while it is away: the message is lost.
    await stack.redis.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    expect((await stack.post('/projects/edge/promote', { deploymentId: review })).status).toBe(200);
    const started = Date.now();
    await waitUntil('the site server to serve the promoted deployment', async () => ((await get(sitePort, on('edge'))).text === '<h1>edge preview</h1>' ? true : undefined), 7_000);
    expect(Date.now() - started).toBeLessThan(6_500);
    expect((await stack.post('/projects/edge/rollback', { deploymentId: production })).status).toBe(200);
    await waitUntil('the rollback', async () => ((await get(sitePort, on('edge'))).text === '<h1>edge production</h1>' ? true : undefined), 7_000);
  });

  it('keeps answering the hosts it holds, 200s and 304s, while Redis is unreachable', async () => {
    const warm = await get(sitePort, on('edge'));
    await stack.redisServer.stop();
    try {
      // Past the bound: every value it holds is stale, and Redis cannot be asked.
      await new Promise((r) => setTimeout(r, 5_500));
      expect(await get(sitePort, on('edge'))).toMatchObject({ status: 200, text: '<h1>edge production</h1>' });
      expect((await get(sitePort, on('edge'), '/', { 'if-none-match': warm.headers.etag! })).status).toBe(304);
      // A host it never held cannot be answered.
      expect((await get(sitePort, on('never-seen--edge'))).status).toBe(503);
      const ready = await get(sitePort, `127.0.0.1:${sitePort}`, '/readyz');
      expect(ready.status).toBe(200);
      expect(JSON.parse(ready.text).redis).toMatch(/serving what it holds/);
    } finally {
      stack.redisServer = await startRedisServer({ port: stack.redisServer.port, dir: `${stack.config.workDir}/redis` });
    }
    // ACL users are configuration, not data: the restarted server needs its read-only user again.
    await waitUntil('the stack to reconnect', async () => (stack.redis.isReady ? true : undefined), 30_000);
    await addSitesUser();
    await waitUntil('the site server to read Redis again', async () => ((await get(sitePort, on('never-seen--edge'))).status === 401 ? true : undefined), 30_000);
  });

  it('leaves the sites to the site server: the API without SERVE_SITES serves none', async () => {
    const app = createApp({ config: { ...stack.config, serveSites: false }, queue: stack.queue, storage: stack.storage, logger: pino({ level: 'silent' }), redisReady: () => true });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as AddressInfo).port;
    const [page, file] = [await get(port, `edge.${stack.config.baseDomain}:${port}`), await get(port, `edge.${stack.config.baseDomain}:${port}`, '/index.html')];
    server.close();
    expect(page.text).not.toContain('edge production'); // the API's own page, as at any host not a site
    expect(file.status).toBe(404);
    expect(JSON.parse(file.text).error.code).toBe('NOT_FOUND');
  });

  it('stops on SIGTERM, finishing what it serves', async () => {
    child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(logs.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
  });
});

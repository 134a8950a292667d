// Who may change things: API tokens on every mutating endpoint (and on reads with PRIVATE_READS=1),
// and no change accepted from another origin's page — the request a deployed site's page makes a
// visitor's browser send (Origin and Sec-Fetch-Site as Chromium sends them for a cross-site form).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import getPort from 'get-port';
import { loadConfig, newDeploymentId } from '@slipway/shared';
import { staticSite } from './harness/fixtures';
import { startStack, type Stack } from './harness/stack';
import { waitUntil } from './harness/worker-process';

const TOKEN = 'test-token-0123456789abcdef';
const OTHER = 'another-token-0123456789abc';
let stack: Stack;
let deployed: string;

beforeAll(async () => {
  // One token given hashed, one plain: both forms are accepted.
  const hashed = `sha256:${createHash('sha256').update(TOKEN).digest('hex')}`;
  stack = await startStack({ workers: 1, env: { API_TOKENS: `${hashed},${OTHER}`, PRIVATE_READS: '1' } });
  const res = await call('POST', '/deploy', { token: TOKEN, body: { repoUrl: await stack.repo('authed', staticSite()) } });
  expect(res.status).toBe(202);
  deployed = res.body.id;
  expect((await stack.waitFor(deployed)).status).toBe('deployed');
});
afterAll(async () => {
  await stack?.close();
});

async function call(method: string, path: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(stack.api + path, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  return { status: res.status, headers: res.headers, body: (await res.json().catch(() => null)) as any };
}

async function nothingQueued(): Promise<void> {
  expect(await stack.queue.stats()).toMatchObject({ waiting: 0, processing: 0 });
}

describe('API tokens', () => {
  it.each([
    ['no token', undefined, /needs an API token/],
    ['a wrong token', 'wrong-token-0123456789abcdef', /not valid/],
  ])('POST /deploy with %s is 401 and nothing is stored', async (_what, token, message) => {
    const res = await call('POST', '/deploy', { token, body: { repoUrl: await stack.repo('refused', staticSite()) } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="slipway"');
    expect(res.body.error).toEqual({ code: 'UNAUTHORIZED', message: expect.stringMatching(message) });
    await nothingQueued();
  });

  it('every project change needs a token, and project reads do with PRIVATE_READS=1', async () => {
    const repoUrl = await stack.repo('authed-project', staticSite());
    for (const [method, path, body] of [
      ['POST', '/projects', { name: 'authed', repoUrl }],
      ['PATCH', '/projects/authed', { productionBranch: 'x' }],
      ['DELETE', '/projects/authed', undefined],
      ['POST', '/projects/authed/deployments', {}],
      ['POST', '/projects/authed/rollback', {}],
      ['POST', '/projects/authed/promote', { deploymentId: deployed }],
      ['GET', '/projects', undefined],
      ['GET', '/projects/authed/deployments', undefined],
      ['GET', '/deployments', undefined],
    ] as const) {
      expect((await call(method, path, { body })).status, `${method} ${path}`).toBe(401);
    }
    expect(await stack.queue.projects.get('authed')).toBeNull();
    expect((await call('POST', '/projects', { token: TOKEN, body: { name: 'authed', repoUrl } })).status).toBe(201);
    expect((await call('GET', '/projects/authed', { token: OTHER })).status).toBe(200);
  });

  it('cancel and redeploy need a token too; with one they work', async () => {
    expect((await call('POST', `/deployments/${deployed}/redeploy`)).status).toBe(401);
    expect((await call('POST', `/deployments/${deployed}/cancel`)).status).toBe(401);
    expect((await stack.queue.get(deployed))?.status).toBe('deployed');
    const res = await call('POST', `/deployments/${deployed}/redeploy`, { token: OTHER });
    expect(res.status).toBe(202);
    expect((await stack.waitFor(deployed)).status).toBe('deployed');
  });

  it('with PRIVATE_READS=1, records, status, logs, the queue and metrics need a token; sites, /healthz and /readyz do not', async () => {
    for (const path of [`/deployments/${deployed}`, `/status?id=${deployed}`, `/deployments/${deployed}/logs`, '/queue', '/metrics']) {
      expect((await call('GET', path)).status, path).toBe(401);
      expect((await call('GET', path, { token: TOKEN })).status, path).toBe(200);
    }
    expect((await call('GET', '/healthz')).status).toBe(200);
    expect((await call('GET', '/readyz')).status).toBe(200);
    expect((await stack.site(deployed, '/')).status).toBe(200);
  });
});

describe('cross-origin changes', () => {
  it.each([
    ['a deployed site\'s page (cross-origin form post)', { origin: '', 'sec-fetch-site': 'same-site' }],
    ['another site altogether', { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }],
    ['an opaque origin', { origin: 'null' }],
  ])('are refused from %s, even with a token', async (_what, headers) => {
    const siteOrigin = `http://${deployed}.${stack.config.baseDomain}:${stack.config.port}`;
    const sent = { ...headers, ...(headers.origin === '' ? { origin: siteOrigin } : {}) };
    for (const path of [`/deployments/${deployed}/redeploy`, `/deployments/${deployed}/cancel`]) {
      const res = await call('POST', path, { token: TOKEN, headers: sent });
      expect(res.status, path).toBe(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
    }
    const res = await call('POST', '/deploy', { token: TOKEN, headers: sent, body: { repoUrl: 'https://example.com/r.git' } });
    expect(res.status).toBe(403);
    expect((await stack.queue.get(deployed))?.status).toBe('deployed');
  });

  it('are accepted from the API\'s own page', async () => {
    const res = await call('POST', `/deployments/${deployed}/cancel`, { token: TOKEN, headers: { origin: stack.api, 'sec-fetch-site': 'same-origin' } });
    expect(res.status).toBe(409); // past the origin and token checks: a deployed deployment cannot be canceled
    expect(res.body.error.code).toBe('CONFLICT');
  });
});

describe('failed tokens are throttled per address', () => {
  let limited: Stack;
  beforeAll(async () => {
    limited = await startStack({ workers: 0, env: { API_TOKENS: TOKEN, AUTH_FAILURE_LIMIT: '5' } });
  });
  afterAll(async () => {
    await limited?.close();
  });

  it('after AUTH_FAILURE_LIMIT wrong tokens, every request that needs one is 429 with Retry-After, the right token included', async () => {
    const send = (token: string) => fetch(`${limited.api}/deploy`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
    for (let i = 0; i < 5; i++) expect((await send(`wrong-token-${i}-0123456789abcdef`)).status).toBe(401);
    const throttled = await send('wrong-token-again-0123456789abcdef');
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(500);
    expect(((await throttled.json()) as { error: unknown }).error).toEqual({ code: 'RATE_LIMITED', message: expect.stringMatching(/more than 5 failed authentications from this address in 10 minutes \(AUTH_FAILURE_LIMIT\)/) });
    expect((await send(TOKEN)).status).toBe(429);
    // Public reads need no token and are not throttled.
    expect((await fetch(`${limited.api}/healthz`)).status).toBe(200);
    expect(await limited.queue.stats()).toMatchObject({ waiting: 0 });
  });
});

describe('TRUST_PROXY', () => {
  const stacks: Stack[] = [];
  afterAll(async () => {
    for (const s of stacks) await s.close();
  });
  const wrongFrom = (s: Stack, forwarded: string) =>
    fetch(`${s.api}/deploy`, { method: 'POST', headers: { authorization: 'Bearer wrong-token-0123456789abcdef', 'content-type': 'application/json', 'x-forwarded-for': forwarded }, body: '{}' }).then((r) => r.status);

  it('behind one proxy (TRUST_PROXY=1), limits count each forwarded client on its own', async () => {
    const s = await startStack({ workers: 0, env: { API_TOKENS: TOKEN, AUTH_FAILURE_LIMIT: '2', TRUST_PROXY: '1' } });
    stacks.push(s);
    expect([await wrongFrom(s, '203.0.113.7'), await wrongFrom(s, '203.0.113.7'), await wrongFrom(s, '203.0.113.7')]).toEqual([401, 401, 429]);
    expect(await wrongFrom(s, '198.51.100.9')).toBe(401);
  });

  it('unset, X-Forwarded-For is believed from no one: a client cannot escape its limit by naming another address', async () => {
    const s = await startStack({ workers: 0, env: { API_TOKENS: TOKEN, AUTH_FAILURE_LIMIT: '2' } });
    stacks.push(s);
    expect([await wrongFrom(s, '203.0.113.7'), await wrongFrom(s, '203.0.113.8'), await wrongFrom(s, '203.0.113.9')]).toEqual([401, 401, 429]);
  });
});

describe('configuration', () => {
  it('warns at start when the API listens beyond loopback without API_HOSTS', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'upload-service/src/main.ts'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', REDIS_URL: stack.env.REDIS_URL!, PORT: '0', HOST: '0.0.0.0', API_TOKENS: TOKEN, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    try {
      await waitUntil('the warning', async () => (out.includes('API_HOSTS is not set') ? true : undefined), 20_000);
    } finally {
      child.kill('SIGKILL');
    }
    expect(out).toMatch(/API_HOSTS is not set and the API listens beyond loopback/);
  });

  it('the API refuses to listen beyond loopback without tokens, unless ALLOW_ANONYMOUS=1', () => {
    const run = (env: Record<string, string>) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'upload-service/src/main.ts'], {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', REDIS_URL: stack.env.REDIS_URL!, PORT: '0', LOG_LEVEL: 'silent', ...env },
        encoding: 'utf8',
        timeout: 20_000,
      });
    const refused = run({ HOST: '0.0.0.0' });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/HOST=0\.0\.0\.0 lets other machines reach the API, and API_TOKENS is not set/);
  });

  it('accepts plain and sha256: tokens, and never prints a token in its errors', () => {
    expect(loadConfig({ API_TOKENS: `${TOKEN}, sha256:${'a'.repeat(64)}` }).apiTokenHashes).toEqual([createHash('sha256').update(TOKEN).digest('hex'), 'a'.repeat(64)]);
    expect(() => loadConfig({ API_TOKENS: 'short' })).toThrowError(/API_TOKENS=\(hidden\): must be comma-separated tokens of 16 or more characters/);
    expect(loadConfig({}).apiTokenHashes).toEqual([]);
  });
});

describe('live log streams', () => {
  const stacks: Stack[] = [];
  afterAll(async () => {
    for (const s of stacks) await s.close();
  });

  /** A queued deployment no worker takes: its log stream stays open. */
  async function waitingDeployment(s: Stack): Promise<string> {
    const id = newDeploymentId();
    await s.queue.createUploading({ id, repoUrl: 'https://git.example.com/site.git', status: 'uploading', attempts: 0, createdAt: new Date().toISOString(), url: `http://${id}.localhost/` });
    await s.queue.enqueue(id);
    return id;
  }

  /** Opens an event stream and collects what arrives; `done` resolves when the server ends it. */
  function openStream(api: string, id: string) {
    const controller = new AbortController();
    let text = '';
    const response = fetch(`${api}/deployments/${id}/logs`, { headers: { accept: 'text/event-stream' }, signal: controller.signal });
    const done = response.then(async (res) => {
      if (res.status !== 200) return { status: res.status, text: await res.text() };
      const reader = res.body!.getReader();
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) return { status: 200, text };
        text += Buffer.from(value).toString();
      }
    });
    done.catch(() => undefined);
    // The answer's head has arrived: the server counts the stream as open.
    const opened = response.then(() => undefined);
    return { done, opened, abort: () => controller.abort(), text: () => text };
  }

  it('are capped per client (LOG_STREAMS_PER_CLIENT) and end after LOG_STREAM_SECONDS, asking the client to reconnect', async () => {
    const s = await startStack({ workers: 0, env: { LOG_STREAMS_PER_CLIENT: '2', LOG_STREAM_SECONDS: '2' } });
    stacks.push(s);
    const id = await waitingDeployment(s);
    const streams = [openStream(s.api, id), openStream(s.api, id)];
    await Promise.all(streams.map((x) => x.opened));
    const third = await openStream(s.api, id).done;
    expect(third.status).toBe(429);
    expect(third.text).toMatch(/LOG_STREAMS_PER_CLIENT/);
    const ended = await Promise.all(streams.map((x) => x.done));
    for (const e of ended) expect(e.text).toContain('event: end\ndata: reconnect\n\n');
  });

  it('a SIGTERM to the upload-service ends them with a final event, and it exits 0 well within 10 s', async () => {
    const s = await startStack({ workers: 0 });
    stacks.push(s);
    const id = await waitingDeployment(s);
    const port = await getPort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'upload-service/src/main.ts'], {
      env: { ...s.env, PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'silent' },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const api = `http://127.0.0.1:${port}`;
    await waitUntil('the API to listen', async () => ((await fetch(`${api}/healthz`).then((r) => r.ok, () => false)) ? true : undefined), 20_000);
    const streams = [openStream(api, id), openStream(api, id)];
    await Promise.all(streams.map((x) => x.opened));
    const started = Date.now();
    child.kill('SIGTERM');
    const code = await exited;
    const ms = Date.now() - started;
    console.log(`upload-service: SIGTERM to exit with 2 log streams open: ${ms} ms`);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(10_000);
    for (const stream of streams) expect((await stream.done).text).toContain('event: end\ndata: shutdown\n\n');
  });
});

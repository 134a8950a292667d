// Projects end to end: a stable production alias that moves only with a good production build,
// immutable deployment URLs, branch aliases, rollback (no rebuild, pinned) and promote, listings.
import http from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { textSite } from './harness/fixtures';
import { startStack, type Stack } from './harness/stack';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { API_HOSTS: 'slipway.example.com' } });
});
afterAll(async () => {
  await stack?.close();
});


const call = (method: string, path: string, body?: unknown) => stack.request(method, path, body);

async function deployProject(name: string, body: Record<string, unknown> = {}) {
  const res = await call('POST', `/projects/${name}/deployments`, body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const record = await stack.waitFor(res.body.id);
  return { ...res.body, record };
}

/** The body a Host serves (`<label>.localhost`). */
async function served(label: string): Promise<string> {
  const res = await stack.site(label, '/');
  return res.status === 200 ? res.body.toString() : `HTTP ${res.status}`;
}

describe('projects', () => {
  let repoUrl: string;
  const ids = {} as Record<"v1" | "v2" | "v3" | "v4", string>;

  it('creates a project, refusing a taken name, bad names and unsafe repository URLs', async () => {
    repoUrl = await stack.repo('proj-site', textSite('v1'), { extraBranches: { 'feature/new-nav': textSite('preview of the new nav') } });
    const created = await call('POST', '/projects', { name: 'shop', repoUrl, productionBranch: 'main', env: { API_URL: 'https://api.example.com' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'shop', repoUrl, productionBranch: 'main', envNames: ['API_URL'], production: null, pinned: false, branches: [], url: `http://shop.localhost:${stack.config.port}/` });
    expect(JSON.stringify(created.body)).not.toContain('api.example.com');

    expect((await call('POST', '/projects', { name: 'shop', repoUrl })).status).toBe(409);
    for (const [name, message] of [
      ['Shop', /host-name label/],
      ['my--shop', /must not contain "--"/],
      ['abcdefghij12', /must not look like a deployment id/],
      ['api', /kept for the platform's own host names/],
    ] as const) {
      const res = await call('POST', '/projects', { name, repoUrl });
      expect(res.status, name).toBe(400);
      expect(res.body.error.message).toMatch(message);
    }
    expect((await call('POST', '/projects', { name: 'evil', repoUrl: 'file:///etc' })).status).toBe(400);
    expect((await call('GET', '/projects/nope')).status).toBe(404);
  });

  it('serves the production alias from the newest good production build; each deployment keeps its own URL', async () => {
    const first = await deployProject('shop');
    expect(first).toMatchObject({ branch: 'main', production: true });
    expect(first.record.status).toBe('deployed');
    ids.v1 = first.id;
    expect(await served('shop')).toBe('v1');

    await stack.repo('proj-site', textSite('v2'), { extraBranches: { 'feature/new-nav': textSite('preview of the new nav') } });
    ids.v2 = (await deployProject('shop')).id;
    expect(await served('shop')).toBe('v2');
    expect(await served(ids.v1)).toBe('v1'); // immutable
    expect(await served('main--shop')).toBe('v2');
  });

  it('leaves the alias alone when a production build fails', async () => {
    await stack.repo('proj-site', textSite('', true), { extraBranches: { 'feature/new-nav': textSite('preview of the new nav') } });
    const failed = await deployProject('shop');
    expect(failed.record.status).toBe('failed');
    expect(failed.record.error).toMatch(/the build broke/);
    expect(await served('shop')).toBe('v2');
  });

  it('rolls back at once without a build, and stays pinned while new production builds land', async () => {
    const rolled = await call('POST', '/projects/shop/rollback', {});
    expect(rolled.status).toBe(200);
    expect(rolled.body).toMatchObject({ production: ids.v1, pinned: true, message: expect.stringMatching(/will not move it until you promote/) });
    expect(await served('shop')).toBe('v1');

    await stack.repo('proj-site', textSite('v3'), { extraBranches: { 'feature/new-nav': textSite('preview of the new nav') } });
    ids.v3 = (await deployProject('shop')).id;
    expect(await served(ids.v3)).toBe('v3');
    expect(await served('shop')).toBe('v1'); // pinned
    expect((await call('GET', '/projects/shop')).body).toMatchObject({ production: { id: ids.v1 }, pinned: true });
  });

  it('serves a branch at its own alias, and promote points production at it and unpins', async () => {
    const preview = await deployProject('shop', { branch: 'feature/new-nav' });
    expect(preview).toMatchObject({ branch: 'feature/new-nav', production: false });
    expect(preview.aliasUrl).toMatch(/^http:\/\/feature-new-nav-[0-9a-f]{6}--shop\.localhost:\d+\/$/);
    const label = new URL(preview.aliasUrl).hostname.replace(/\.localhost$/, '');
    expect(await served(label)).toBe('preview of the new nav');
    expect(await served('shop')).toBe('v1');

    const promoted = await call('POST', '/projects/shop/promote', { deploymentId: preview.id });
    expect(promoted.body).toMatchObject({ production: preview.id, pinned: false });
    expect(await served('shop')).toBe('preview of the new nav');

    await stack.repo('proj-site', textSite('v4'), { extraBranches: { 'feature/new-nav': textSite('preview of the new nav') } });
    ids.v4 = (await deployProject('shop')).id;
    expect(await served('shop')).toBe('v4'); // unpinned: production builds move it again
  });

  it('refuses to point production at what it cannot serve', async () => {
    const failedId = (await call('GET', '/projects/shop/deployments?limit=100')).body.items.find((d: { status: string }) => d.status === 'failed').id;
    expect((await call('POST', '/projects/shop/promote', { deploymentId: failedId })).status).toBe(409);
    expect((await call('POST', '/projects/shop/promote', { deploymentId: 'zzzzzzzzzz99' })).status).toBe(404);
    expect((await call('POST', '/projects/shop/promote', {})).status).toBe(400);
  });

  it('lists a project\'s deployments newest first, a page at a time, with alias markers', async () => {
    const first = await call('GET', '/projects/shop/deployments?limit=2');
    expect(first.body.items.map((d: { id: string }) => d.id)).toEqual([ids.v4, expect.any(String)]);
    expect(first.body.items[0]).toMatchObject({ status: 'deployed', branch: 'main', production: true, target: 'production', alias: 'main--shop' });
    expect(first.body.next).toEqual(expect.any(String));
    const all = [...first.body.items];
    for (let cursor = first.body.next; cursor; ) {
      const page = await call('GET', `/projects/shop/deployments?limit=2&cursor=${encodeURIComponent(cursor)}`);
      all.push(...page.body.items);
      cursor = page.body.next;
    }
    expect(all).toHaveLength(6);
    expect(new Set(all.map((d) => d.id)).size).toBe(6);
    expect(all.at(-1).id).toBe(ids.v1);
    expect((await call('GET', '/projects/shop/deployments?limit=0')).status).toBe(400);
    expect((await call('GET', '/projects/shop/deployments?cursor=bogus')).status).toBe(400);

    const everything = await call('GET', '/deployments?limit=100');
    expect(everything.body.items.map((d: { id: string }) => d.id)).toEqual(expect.arrayContaining(all.map((d) => d.id)));
  });

  it('changes settings, and a deleted project\'s aliases stop answering while its deployments keep theirs', async () => {
    const changed = await call('PATCH', '/projects/shop', { env: null, outputDir: 'dist' });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ envNames: [], outputDir: 'dist' });
    expect((await call('PATCH', '/projects/shop', { name: 'other' })).status).toBe(400);

    expect((await call('DELETE', '/projects/shop')).status).toBe(204);
    expect(await served('shop')).toBe('HTTP 404');
    expect(await served('main--shop')).toBe('HTTP 404');
    expect(await served(ids.v2)).toBe('v2');
    expect((await call('GET', '/projects/shop')).status).toBe(404);
    expect((await call('DELETE', '/projects/shop')).status).toBe(404);
  });
});

/** A GET to the API's port with any Host header: what a custom domain pointed at Slipway gets. */
function getAs(host: string, urlPath = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: stack.config.port, path: urlPath, headers: { host } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('commits and custom domains', () => {
  let repoUrl: string;
  let shas: { tip: string; older: string };

  it('deploys a given commit: the branch tip as it is, any other commit fetched by its id', async () => {
    repoUrl = await stack.repo('commit-site', textSite('tip'), { extraBranches: { other: textSite('another commit') } });
    const { stdout } = await promisify(execFile)('git', ['ls-remote', repoUrl]);
    const sha = (ref: string) => new RegExp(`^([0-9a-f]{40})\\trefs/heads/${ref}$`, 'm').exec(stdout)![1]!;
    shas = { tip: sha('main'), older: sha('other') };
    expect((await call('POST', '/projects', { name: 'pinned-commit', repoUrl })).status).toBe(201);

    const older = await deployProject('pinned-commit', { commit: shas.older });
    expect(older.record).toMatchObject({ status: 'deployed', branch: 'main', commit: shas.older, production: '1' });
    expect(older.commit).toBe(shas.older);
    expect(await served(older.id)).toBe('another commit');
    const tip = await deployProject('pinned-commit', { branch: 'main', commit: shas.tip });
    expect(tip.record.commit).toBe(shas.tip);
    expect(await served('pinned-commit')).toBe('tip');

    const missing = await call('POST', '/projects/pinned-commit/deployments', { commit: 'deadbeef'.repeat(5) });
    expect(missing.status).toBe(422);
    expect(missing.body.error.message).toMatch(/commit deadbeef\w+ could not be fetched/);
    for (const commit of ['abc1234', 'DEADBEEF'.repeat(5), 42]) {
      const bad = await call('POST', '/projects/pinned-commit/deployments', { commit });
      expect(bad.status, String(commit)).toBe(400);
      expect(bad.body.error.code).toBe('INVALID_INPUT');
    }
    // Nothing of the refused ones was recorded.
    const listed = await call('GET', '/projects/pinned-commit/deployments');
    expect(listed.body.items.map((d: { id: string }) => d.id)).toEqual([tip.id, older.id]);
  });

  it('serves production at a custom domain; a domain has one owner and is let go on change or delete', async () => {
    const created = await call('POST', '/projects', { name: 'dom', repoUrl, domains: ['WWW.Example.com', 'example.com.'] });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.domains).toEqual([{ host: 'www.example.com', url: 'http://www.example.com/' }, { host: 'example.com', url: 'http://example.com/' }]);
    expect((await getAs('www.example.com')).status).toBe(404); // claimed, nothing deployed yet
    await deployProject('dom');
    expect(await getAs(`www.example.com:${stack.config.port}`)).toEqual({ status: 200, body: 'tip' });
    expect((await getAs('example.com', '/missing.js')).status).toBe(404);

    const taken = await call('POST', '/projects', { name: 'dom-two', repoUrl, domains: ['www.example.com'] });
    expect(taken.status).toBe(409);
    expect(taken.body.error.message).toMatch(/www\.example\.com belongs to another project/);
    expect((await call('GET', '/projects/dom-two')).status).toBe(404);
    for (const domains of [['x.localhost'], ['localhost'], ['http://example.net'], ['example.net:8080'], ['10.0.0.1'], Array.from({ length: 21 }, (_, i) => `s${i}.example.net`), 'example.net']) {
      const bad = await call('PATCH', '/projects/dom', { domains });
      expect(bad.status, JSON.stringify(domains)).toBe(400);
    }

    // The API's own host name is never a site's.
    const api = await call('PATCH', '/projects/dom', { domains: ['slipway.example.com'] });
    expect(api.status).toBe(400);
    expect(api.body.error.message).toMatch(/API_HOSTS/);
    expect((await getAs('slipway.example.com', '/queue')).body).toMatch(/"waiting"/);

    expect((await call('PATCH', '/projects/dom', { domains: ['example.com'] })).status).toBe(200);
    expect((await getAs('www.example.com')).body).not.toBe('tip'); // let go: an unknown host is the API's
    expect((await call('POST', '/projects', { name: 'dom-two', repoUrl, domains: ['www.example.com'] })).status).toBe(201);
    expect((await call('DELETE', '/projects/dom')).status).toBe(204);
    expect((await call('PATCH', '/projects/dom-two', { domains: ['www.example.com', 'example.com'] })).status).toBe(200);
    expect((await getAs('example.com')).status).toBe(404); // dom-two has no production yet
  });
});

/** A JSON request to the API's port under another Host header: the API answers on any host it does not serve a site at. */
function callAs(host: string, method: string, urlPath: string, body: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port: stack.config.port, path: urlPath, method, headers: { host, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

describe('the API\'s origin', () => {
  it('a request can never claim the host it came to as a custom domain, whether or not API_HOSTS lists it', async () => {
    const repoUrl = await stack.repo('origin-site', textSite('origin'));
    // The API answers under admin.example.org although API_HOSTS names another host.
    const created = await callAs('admin.example.org:8443', 'POST', '/projects', { name: 'origin', repoUrl, domains: ['admin.example.org'] });
    expect(created.status).toBe(400);
    expect(created.body.error.message).toMatch(/admin\.example\.org is the host this request came to, the API's own/);
    expect((await call('GET', '/projects/origin')).status).toBe(404);
    expect((await callAs('admin.example.org', 'POST', '/projects', { name: 'origin', repoUrl })).status).toBe(201);
    const changed = await callAs('Admin.Example.org.', 'PATCH', '/projects/origin', { domains: ['www.example.org', 'admin.example.org'] });
    expect(changed.status).toBe(400);
    expect((await call('GET', '/projects/origin')).body.domains).toEqual([]);
    expect((await getAs('admin.example.org', '/queue')).body).toMatch(/"waiting"/); // still the API
  });
});

describe('one project branch at a time', () => {
  it('a burst of 5 deploys of one branch builds once: each waiting one is superseded by the next', async () => {
    const repoUrl = await stack.repo('burst-site', textSite('burst'));
    expect((await call('POST', '/projects', { name: 'burst', repoUrl })).status).toBe(201);
    // No worker takes anything while the burst arrives.
    for (const worker of stack.workers.splice(0)) await worker.close();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await call('POST', '/projects/burst/deployments', {});
      expect(res.status).toBe(202);
      ids.push(res.body.id);
    }
    expect(await stack.redis.lLen('build-queue')).toBe(1);
    await stack.startWorker({ slots: 2 });
    const records = await Promise.all(ids.map((id) => stack.waitFor(id)));
    expect(records.map((r) => r.status)).toEqual(['canceled', 'canceled', 'canceled', 'canceled', 'deployed']);
    for (let i = 0; i < 4; i++) expect(records[i]!.error).toBe(`superseded by ${ids[i + 1]}`);
    expect(records.slice(0, 4).every((r) => r.attempts === 0)).toBe(true);
    expect(await served('burst')).toBe('burst');
  });

  it('never builds two deployments of one branch at once: the second waits for the first', async () => {
    const slow = {
      'package.json': JSON.stringify({ name: 'slow', private: true, scripts: { build: 'node build.js' } }),
      'build.js': "setTimeout(() => { require('fs').mkdirSync('dist'); require('fs').writeFileSync('dist/index.html', 'slow'); }, 1500);",
    };
    expect((await call('POST', '/projects', { name: 'serial', repoUrl: await stack.repo('serial-site', slow) })).status).toBe(201);
    const first = (await call('POST', '/projects/serial/deployments', {})).body.id as string;
    await stack.waitFor(first, ['building']);
    const second = (await call('POST', '/projects/serial/deployments', {})).body.id as string;
    const [a, b] = await Promise.all([stack.waitFor(first), stack.waitFor(second)]);
    expect([a.status, b.status]).toEqual(['deployed', 'deployed']);
    expect(Date.parse(b.startedAt!)).toBeGreaterThanOrEqual(Date.parse(a.finishedAt!));
    expect(b.attempts).toBe(1); // waiting is not an attempt
    expect(await served('serial')).toBe('slow');
  });
});

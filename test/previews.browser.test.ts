// Protected previews end to end: a project with a preview password closes its branch, pull-request and
// deployment hosts (not production's); the login page, the host-only cookie, share links that expire
// and can be ended, and what a change of the password does. Over HTTP first, then in Chromium: the
// login, the cookie's attributes, another site's cookie that does not open this one, production open.
import http from 'node:http';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './harness/browser';
import { startStack, storedKeys, type Stack } from './harness/stack';

const PASSWORD = 'correct horse battery staple';
const OTHER_PASSWORD = 'another project entirely';
let browser: Browser;
let stack: Stack;
const ids = {} as Record<'production' | 'preview' | 'otherPreview', string>;

const page = (text: string) => ({ 'index.html': `<!doctype html><title>${text}</title><h1>${text}</h1>`, 'app.3f9a2c1b.js': `console.log(${JSON.stringify(text)})` });

async function deployBranch(project: string, branch: string): Promise<string> {
  const res = await stack.post(`/projects/${project}/deployments`, { branch });
  expect(res.status).toBe(202);
  expect((await stack.waitFor(res.body.id, undefined, 120_000)).status).toBe('deployed');
  return res.body.id as string;
}

beforeAll(async () => {
  [browser, stack] = await Promise.all([
    launchChromium(),
    // TRUST_PROXY: a request that says it came over https gets the __Host- cookie.
    startStack({ env: { TRUST_PROXY: 'loopback', AUTH_FAILURE_LIMIT: '6' } }),
  ]);
  const repoUrl = await stack.repo('closed-site', page('production'), { extraBranches: { 'feature-x': page('preview x') } });
  const otherUrl = await stack.repo('other-site', page('other production'), { extraBranches: { review: page('other preview') } });
  expect((await stack.post('/projects', { name: 'closed', repoUrl, previewPassword: PASSWORD })).status).toBe(201);
  expect((await stack.post('/projects', { name: 'other', repoUrl: otherUrl, previewPassword: OTHER_PASSWORD })).status).toBe(201);
  ids.production = await deployBranch('closed', 'main');
  ids.preview = await deployBranch('closed', 'feature-x');
  ids.otherPreview = await deployBranch('other', 'review');
}, 240_000);
afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

const host = (label: string) => `${label}.${stack.config.baseDomain}`;
const url = (label: string, path = '/') => `http://${host(label)}:${stack.config.port}${path}`;

/** A request to a site by its host name, with its own headers (fetch would not send our Host). */
function visit(label: string, path = '/', headers: Record<string, string> = {}, method = 'GET', body?: string) {
  return new Promise<{ status: number; text: string; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: stack.config.port, path, method, headers: { host: `${host(label)}:${stack.config.port}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString(), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const login = (label: string, password: string, next = '/', headers: Record<string, string> = {}) =>
  visit(label, '/.slipway/login', { 'content-type': 'application/x-www-form-urlencoded', ...headers }, 'POST', new URLSearchParams({ password, next }).toString());
const cookieOf = (res: { headers: http.IncomingHttpHeaders }) => res.headers['set-cookie']![0]!.split(';')[0]!;

describe('protected previews over HTTP', () => {
  it('closes the previews, not production, and says nothing of which previews exist', async () => {
    expect(await visit('closed')).toMatchObject({ status: 200, text: expect.stringContaining('<h1>production</h1>') });
    for (const label of ['feature-x--closed', 'nothing-here--closed', 'pr-4--closed', ids.preview, ids.production]) {
      const res = await visit(label, '/app.3f9a2c1b.js');
      expect(res.status, label).toBe(401);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.text).toContain('This preview is protected');
      expect(res.text).not.toContain('preview x');
    }
  });

  it('opens a preview with the password, for that host only, privately', async () => {
    const wrong = await login('feature-x--closed', 'not the password');
    expect(wrong.status).toBe(401);
    expect(wrong.text).toContain('Wrong password');
    expect(wrong.headers['set-cookie']).toBeUndefined();

    const ok = await login('feature-x--closed', PASSWORD, '/app.3f9a2c1b.js?v=1');
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toBe('/app.3f9a2c1b.js?v=1');
    const set = ok.headers['set-cookie']![0]!;
    expect(set).toMatch(/^slipway_preview=\d+\.[\w-]{43}; Max-Age=604800; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Lax$/);
    const cookie = cookieOf(ok);
    const asset = await visit('feature-x--closed', '/app.3f9a2c1b.js', { cookie });
    expect(asset).toMatchObject({ status: 200, text: 'console.log("preview x")' });
    expect(asset.headers['cache-control']).toBe('private, max-age=31536000, immutable');
    expect((await visit('feature-x--closed', '/', { cookie })).headers['cache-control']).toBe('private, no-cache');
    // Not another preview of the same project, not the other project's, not the deployment's own host.
    for (const label of ['pr-4--closed', 'review--other', ids.preview]) expect((await visit(label, '/', { cookie })).status, label).toBe(401);
    // A login sends the visitor back to a path of this host only.
    expect((await login('feature-x--closed', PASSWORD, '//evil.example/')).headers.location).toBe('/');
  });

  it('gives the __Host- cookie, Secure, to a visitor over https', async () => {
    const ok = await login(ids.preview, PASSWORD, '/', { 'x-forwarded-proto': 'https' });
    expect(ok.headers['set-cookie']![0]).toMatch(/^__Host-slipway_preview=[^;]+; Max-Age=604800; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax$/);
    expect((await visit(ids.preview, '/', { cookie: cookieOf(ok), 'x-forwarded-proto': 'https' })).text).toContain('preview x');
  });

  it('makes share links that open one preview, and ends them all on request', async () => {
    const made = await stack.post('/projects/closed/preview-links', { branch: 'feature-x', hours: 2 });
    expect(made.status).toBe(201);
    expect(made.body.host).toBe(host('feature-x--closed'));
    expect(Date.parse(made.body.expiresAt) - Date.now()).toBeGreaterThan(7_100_000);
    const link = new URL(made.body.url);
    const token = link.searchParams.get('slipway_share')!;
    const taken = await visit('feature-x--closed', `/?slipway_share=${token}`);
    expect(taken.status).toBe(303);
    expect(taken.headers.location).toBe('/');
    expect(taken.headers['set-cookie']![0]).toMatch(/Max-Age=72\d\d;/);
    const cookie = cookieOf(taken);
    expect((await visit('feature-x--closed', '/', { cookie })).text).toContain('preview x');
    expect((await visit('pr-4--closed', `/?slipway_share=${token}`)).text).toContain('This link has expired or is not valid');

    const byDeployment = await stack.post('/projects/closed/preview-links', { deployment: ids.preview });
    expect(byDeployment.body.host).toBe(host(ids.preview));
    expect((await stack.post('/projects/closed/preview-links', { pullRequest: 7 })).body.host).toBe(host('pr-7--closed'));

    // The same password again (a PATCH repeated after a lost answer) signs no one out.
    expect((await stack.request('PATCH', '/projects/closed', { previewPassword: PASSWORD })).status).toBe(200);
    expect((await visit('feature-x--closed', '/', { cookie })).status).toBe(200);
    expect((await stack.request('DELETE', '/projects/closed/preview-links')).status).toBe(204);
    expect((await visit('feature-x--closed', '/', { cookie })).status).toBe(401);
    expect((await visit('feature-x--closed', `/?slipway_share=${token}`)).status).toBe(401);
  });

  it('refuses bad settings and bad links with nothing stored', async () => {
    const before = await stack.get('/projects/closed');
    const bad: [string, unknown, number, RegExp][] = [
      ['PATCH', { previewPassword: 'short' }, 400, /at least 8 characters/],
      ['PATCH', { previewPassword: 'line\nbreak here' }, 400, /control characters/],
      ['PATCH', { previewPassword: 12345678 }, 400, /previewPassword/],
      ['POST', { branch: 'main', pullRequest: 3 }, 400, /one of branch, pullRequest or deployment/],
      ['POST', {}, 400, /one of branch, pullRequest or deployment/],
      ['POST', { branch: 'main', hours: 1000 }, 400, /at most 720/],
      ['POST', { branch: 'main', hours: 0 }, 400, /hours/],
      ['POST', { deployment: ids.otherPreview }, 404, /not a deployment of closed/],
      ['POST', { branch: 'main', secret: 1 }, 400, /secret/],
    ];
    for (const [method, body, status, message] of bad) {
      const res = method === 'PATCH' ? await stack.request('PATCH', '/projects/closed', body) : await stack.post('/projects/closed/preview-links', body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(res.body.error.message).toMatch(message);
    }
    expect((await stack.get('/projects/closed')).body).toEqual(before.body);
    expect((await stack.post('/projects', { name: 'short-pw', repoUrl: 'http://127.0.0.1:1/x.git', previewPassword: 'short' })).status).toBe(400);
    expect((await stack.get('/projects/short-pw')).status).toBe(404);
  });

  it('keeps the password sealed and never shows it', async () => {
    const view = await stack.get('/projects/closed');
    expect(view.body.previewProtection).toEqual({ enabled: true, passwordSet: true });
    expect(JSON.stringify(view.body)).not.toContain(PASSWORD);
    for (const key of await storedKeys(stack)) {
      const type = await stack.redis.type(key);
      const dump = type === 'hash' ? JSON.stringify(await stack.redis.hGetAll(key)) : type === 'string' ? ((await stack.redis.get(key)) ?? '') : '';
      expect(dump, key).not.toContain(PASSWORD);
    }
  });
});

describe('protected previews in Chromium', () => {
  it('logs in on the page, keeps the cookie to its host, and leaves production open', { timeout: 120_000 }, async () => {
    const context = await browser.newContext();
    const tab = await context.newPage();
    await tab.goto(url('feature-x--closed', '/?from=review'));
    expect(await tab.textContent('h1')).toBe('This preview is protected');
    await tab.fill('input[name=password]', 'a wrong one!');
    await tab.click('button[type=submit]');
    expect(await tab.textContent('#error')).toBe('Wrong password.');
    await tab.fill('input[name=password]', PASSWORD);
    await tab.click('button[type=submit]');
    await tab.waitForURL(url('feature-x--closed', '/?from=review'));
    expect(await tab.textContent('h1')).toBe('preview x');
    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({ name: 'slipway_preview', domain: host('feature-x--closed'), path: '/', httpOnly: true, sameSite: 'Lax' });
    // The page's own script cannot read it.
    expect(await tab.evaluate('document.cookie')).toBe('');

    // The other project's preview asks for its own password, even with this cookie copied onto its host.
    await tab.goto(url('review--other'));
    expect(await tab.textContent('h1')).toBe('This preview is protected');
    await context.addCookies([{ ...cookie!, domain: host('review--other') }]);
    await tab.reload();
    expect(await tab.textContent('h1')).toBe('This preview is protected');
    await tab.fill('input[name=password]', OTHER_PASSWORD);
    await tab.click('button[type=submit]');
    await tab.waitForSelector('h1:text("other preview")');
    await context.close();

    // Production, in a fresh browser, needs nothing; a share link opens a preview and leaves no token in the address.
    const fresh = await browser.newContext();
    const visitor = await fresh.newPage();
    await visitor.goto(url('closed'));
    expect(await visitor.textContent('h1')).toBe('production');
    const link = await stack.post('/projects/closed/preview-links', { branch: 'feature-x', hours: 1 });
    await visitor.goto(link.body.url);
    expect(await visitor.textContent('h1')).toBe('preview x');
    expect(visitor.url()).toBe(url('feature-x--closed'));
    await fresh.close();
  });

  it('opens the previews to anyone once the password is cleared', async () => {
    expect((await stack.request('PATCH', '/projects/closed', { previewPassword: null })).status).toBe(200);
    expect((await visit('feature-x--closed')).text).toContain('preview x');
    expect((await stack.get('/projects/closed')).body.previewProtection).toEqual({ enabled: false, passwordSet: false });
    expect((await stack.post('/projects/closed/preview-links', { branch: 'feature-x' })).status).toBe(409);
  });

  it('closes previews and makes a share link from the web page', { timeout: 120_000 }, async () => {
    const context = await browser.newContext();
    const tab = await context.newPage();
    await tab.goto(`http://localhost:${stack.config.port}/#/projects/closed`);
    await tab.click('#p-previews summary');
    await tab.waitForSelector('#p-protection:text("open to anyone")');
    await tab.fill('#p-protection-set input[name=password]', 'from the page 123');
    await tab.click('#p-protection-set button[type=submit]');
    await tab.waitForSelector('#p-previews-msg:text("previews closed")');
    expect(await tab.inputValue('#p-protection-set input[name=password]')).toBe('');
    expect(await tab.content()).not.toContain('from the page 123');
    expect((await visit('feature-x--closed')).status).toBe(401);
    await tab.fill('#p-share input[name=preview]', 'feature-x');
    await tab.fill('#p-share input[name=hours]', '2');
    await tab.click('#p-share button');
    const href = await (await tab.waitForSelector('#p-share-link a')).getAttribute('href');
    expect(new URL(href!).host).toBe(`${host('feature-x--closed')}:${stack.config.port}`);
    const reviewer = await browser.newContext();
    const visitor = await reviewer.newPage();
    await visitor.goto(href!);
    expect(await visitor.textContent('h1')).toBe('preview x');
    await reviewer.close();
    await context.close();
  });

  it('counts wrong passwords toward the address\'s limit', async () => {
    let last = 0;
    for (let i = 0; i < 8 && last !== 429; i++) last = (await login('review--other', `wrong password ${i}`)).status;
    expect(last).toBe(429);
    const res = await login('review--other', OTHER_PASSWORD);
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
  });
});

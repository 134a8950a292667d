// The preview gate on its own (sites/protect.ts), in front of a tiny app on a loopback port: what
// opens a closed preview (a cookie for that host, a share link until it expires) and what does not
// (another host's cookie, an altered expiry, a link past its time, a link of another stamp).
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secrets, parseSecretsKey, type Projects } from '@slipway/shared';
import { FailureThrottle } from '../src/access/throttle';
import { PreviewGate, cookieValues, safeNext } from '../src/sites/protect';

const secrets = new Secrets(parseSecretsKey(randomBytes(32).toString('base64'), 'SECRETS_KEY'));
let clock = Date.parse('2026-12-01T12:00:00Z');
const projects = { get: async () => null } as unknown as Projects;
const gate = new PreviewGate(secrets, projects, new FailureThrottle(5), () => clock);
let stamp = 'stamp-one';
let base: string;
let server: ReturnType<express.Express['listen']>;

beforeAll(async () => {
  const app = express();
  app.use(async (req, res) => {
    const host = req.headers.host!.replace(/:\d+$/, '');
    if (await gate.admit(req, res, host, { project: 'demo', stamp }, { ip: req.ip ?? '', secure: false })) res.set('Cache-Control', 'public, max-age=0').send(`open ${host}`);
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => server.close());

/** A request with its own Host header (fetch would send the address's). */
function request(host: string, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string) {
  return new Promise<{ status: number; text: string; location: string | null; setCookie: string | null; cache: string | null }>((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, headers: { host, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString(), location: res.headers.location ?? null, setCookie: res.headers['set-cookie']?.[0] ?? null, cache: res.headers['cache-control'] ?? null }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const visit = (host: string, path: string, cookie?: string) => request(host, path, cookie ? { cookie } : {});
const cookieOf = (setCookie: string | null) => setCookie!.split(';')[0]!;

describe('the preview gate', () => {
  it('answers the login page to a visitor without a cookie, marked never to be stored', async () => {
    const res = await visit('pr-1--demo.example.test', '/docs/?a=1');
    expect(res.status).toBe(401);
    expect(res.cache).toBe('no-store');
    expect(res.text).toContain('<form method="post" action="/.slipway/login">');
    expect(res.text).toContain('name="next" value="/docs/?a=1"');
  });

  it('takes a share link for its host until it expires, and drops the token from the address', async () => {
    const host = 'pr-1--demo.example.test';
    const token = gate.shareToken(host, stamp, clock + 3_600_000);
    const taken = await visit(host, `/docs/?a=1&slipway_share=${token}`);
    expect(taken.status).toBe(303);
    expect(taken.location).toBe('/docs/?a=1');
    expect(taken.setCookie).toMatch(/^slipway_preview=\d+\.[\w-]{43}; Max-Age=3600; Path=\/; Expires=.*; HttpOnly; SameSite=Lax$/);
    const cookie = cookieOf(taken.setCookie);
    const open = await visit(host, '/docs/', cookie);
    expect(open).toMatchObject({ status: 200, text: `open ${host}`, cache: 'private, no-cache' });

    // Another host: neither the link nor the cookie opens it.
    expect((await visit('pr-2--demo.example.test', `/?slipway_share=${token}`)).text).toContain('This link has expired or is not valid');
    expect((await visit('pr-2--demo.example.test', '/', cookie)).status).toBe(401);
    // A cookie whose expiry was moved on no longer checks.
    const [exp, sig] = cookie.split('=')[1]!.split('.');
    expect((await visit(host, '/', `slipway_preview=${Number(exp) + 86_400}.${sig}`)).status).toBe(401);
    // A tossed cookie beside the real one does not hide it.
    expect((await visit(host, '/', `slipway_preview=1.${'A'.repeat(43)}; ${cookie}`)).status).toBe(200);

    clock += 3_601_000;
    expect((await visit(host, '/', cookie)).status).toBe(401);
    expect((await visit(host, `/?slipway_share=${token}`)).status).toBe(401);
  });

  it('ends every link and cookie with a new stamp', async () => {
    const host = 'feature--demo.example.test';
    const token = gate.shareToken(host, stamp, clock + 3_600_000);
    const cookie = cookieOf((await visit(host, `/?slipway_share=${token}`)).setCookie);
    expect((await visit(host, '/', cookie)).status).toBe(200);
    stamp = 'stamp-two';
    expect((await visit(host, '/', cookie)).status).toBe(401);
    expect((await visit(host, `/?slipway_share=${token}`)).status).toBe(401);
  });

  it('refuses a login for a project with no password (a stamp restored without it)', async () => {
    const res = await request('x--demo.example.test', '/.slipway/login', { 'content-type': 'application/x-www-form-urlencoded' }, 'POST', 'password=whatever1&next=%2F');
    expect(res.status).toBe(403);
    expect(res.text).toContain('no password set');
  });

  it('sends a login back only to a path of the same host', () => {
    expect(safeNext('/docs/?q=1')).toBe('/docs/?q=1');
    for (const bad of ['//evil.example', '/\\evil.example', 'https://evil.example/', '/.slipway/login', '/a\nb', 42, undefined, `/${'a'.repeat(2001)}`]) expect(safeNext(bad)).toBe('/');
  });

  it('reads every preview cookie of a Cookie header and no other', () => {
    expect(cookieValues('a=1; slipway_preview=x; __Host-slipway_preview=y; slipway_previewer=z')).toEqual(['x', 'y']);
    expect(cookieValues(undefined)).toEqual([]);
  });
});

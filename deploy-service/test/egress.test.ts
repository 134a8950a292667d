// The egress proxy's rule for where a build may connect: public addresses on ports 80 and 443,
// narrowed by BUILD_EGRESS_ALLOW, widened for named hosts by BUILD_EGRESS_PRIVATE_HOSTS — never to
// the host itself or to cloud metadata. And the proxy itself: the Host it sends, its deadlines, its close.
import { spawn } from 'node:child_process';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { egressPolicy, resolveTarget, startEgressProxy, type EgressOptions, type EgressProxy } from '../src/sandbox/egress';

const open = { privateHosts: undefined, allowHosts: undefined };

describe('egress policy', () => {
  it('lets a build reach public addresses on 80 and 443 only', async () => {
    expect(await resolveTarget('93.184.215.14', 443, open)).toBe('93.184.215.14');
    await expect(resolveTarget('93.184.215.14', 22, open)).rejects.toThrow(/port 22 is not allowed/);
    await expect(resolveTarget('93.184.215.14', 6379, open)).rejects.toThrow(/port 6379/);
  });

  it.each([
    ['127.0.0.1', /loopback/],
    ['localhost', /loopback/],
    ['169.254.169.254', /linkLocal/],
    ['10.0.0.5', /private/],
    ['192.168.1.1', /private/],
    ['100.64.0.1', /carrierGradeNat/],
    ['::1', /loopback/],
    ['fd00::1', /uniqueLocal/],
    ['::ffff:127.0.0.1', /loopback/],
  ])('refuses %s', async (host, reason) => {
    await expect(resolveTarget(host, 443, open)).rejects.toThrow(reason);
  });

  it('narrows to BUILD_EGRESS_ALLOW hosts and their subdomains', async () => {
    const policy = { privateHosts: undefined, allowHosts: ['example.com'] };
    await expect(resolveTarget('evil.test', 443, policy)).rejects.toThrow(/not in BUILD_EGRESS_ALLOW/);
    await expect(resolveTarget('notexample.com', 443, policy)).rejects.toThrow(/not in BUILD_EGRESS_ALLOW/);
    // A listed subdomain passes the list (whether it then resolves depends on the network).
    const outcome = await resolveTarget('cdn.example.com', 443, policy).then(() => 'reachable', (err: Error) => err.message);
    expect(outcome).not.toMatch(/BUILD_EGRESS_ALLOW/);
  });

  it('trusts BUILD_EGRESS_PRIVATE_HOSTS with private addresses, but never with loopback or metadata', async () => {
    expect(await resolveTarget('10.0.0.5', 443, { privateHosts: ['10.0.0.5'], allowHosts: undefined })).toBe('10.0.0.5');
    await expect(resolveTarget('127.0.0.1', 443, { privateHosts: ['127.0.0.1'], allowHosts: undefined })).rejects.toThrow(/loopback/);
    await expect(resolveTarget('169.254.169.254', 80, { privateHosts: ['169.254.169.254'], allowHosts: undefined })).rejects.toThrow(/linkLocal/);
  });
});

describe('egress proxy', () => {
  const servers: { close(): void }[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) s.close();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  /** A proxy whose every checked target leads to loopback (the real policy refuses loopback). */
  async function proxy(options: Partial<EgressOptions> = {}): Promise<EgressProxy> {
    const dir = await mkdtemp(path.join(tmpdir(), 'egress-test-'));
    dirs.push(dir);
    const started = await startEgressProxy(path.join(dir, 'egress.sock'), open, () => undefined, { resolve: async () => '127.0.0.1', ...options });
    servers.push({ close: () => void started.close() });
    return started;
  }

  /** A plain-http request through the proxy's socket, as a package manager sends it. */
  function viaProxy(socketPath: string, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath, method: 'GET', path: url, headers }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('sends the Host it checked, not the one the build wrote, so an allowed address leads to no other virtual host', async () => {
    const upstream = http.createServer((req, res) => res.end(`host=${req.headers.host}`));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    servers.push(upstream);
    const port = (upstream.address() as AddressInfo).port;
    const p = await proxy();
    expect(await viaProxy(p.socketPath, `http://allowed.example:${port}/x`, { host: 'internal-admin.example' })).toEqual({ status: 200, body: `host=allowed.example:${port}` });
  });

  it("answers the sandbox resolver's lookups by the same rule, at most four at once, and logs a refused name", async () => {
    let running = 0;
    let most = 0;
    const reasons: string[] = [];
    const dir = await mkdtemp(path.join(tmpdir(), 'egress-test-'));
    dirs.push(dir);
    const p = await startEgressProxy(path.join(dir, 'egress.sock'), { privateHosts: undefined, allowHosts: ['allowed.example'] }, (reason) => reasons.push(reason), {
      resolve: async (host, port, policy) => {
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 20));
        running--;
        if (!policy.allowHosts!.includes(host)) throw new Error('refused');
        return '127.0.0.1';
      },
    });
    servers.push({ close: () => void p.close() });
    const lookups = await Promise.all(Array.from({ length: 12 }, () => viaProxy(p.socketPath, '/.slipway/lookup/allowed.example')));
    expect(lookups.map((l) => l.status)).toEqual(Array(12).fill(204));
    expect(most).toBe(4);
    expect((await viaProxy(p.socketPath, '/.slipway/lookup/other.example')).status).toBe(403);
    expect(reasons).toEqual(['other.example (name lookup): could not connect']);
    // Any other origin-form request is still refused as before.
    expect((await viaProxy(p.socketPath, '/.slipway/other')).status).toBe(400);
  });

  it('gives up an upstream that never answers, and one that goes silent', async () => {
    // Accepts and then says nothing: the idle timeout ends it.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    servers.push(silent);
    const port = (silent.address() as AddressInfo).port;
    const p = await proxy({ idleTimeoutMs: 300 });
    const start = Date.now();
    await expect(viaProxy(p.socketPath, `http://silent.example:${port}/`)).rejects.toThrow();
    expect(Date.now() - start).toBeLessThan(5000);
    // A listener whose accept queue is full drops further SYNs: the connect timeout ends it (a CONNECT gets its 502).
    const full = spawn('python3', ['-c', 'import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)']);
    servers.push({ close: () => full.kill('SIGKILL') });
    const fullPort = Number(await new Promise<string>((r) => full.stdout.once('data', (c: Buffer) => r(c.toString()))));
    const fillers = [net.connect(fullPort, '127.0.0.1'), net.connect(fullPort, '127.0.0.1'), net.connect(fullPort, '127.0.0.1')];
    for (const f of fillers) f.on('error', () => undefined);
    servers.push({ close: () => fillers.forEach((f) => f.destroy()) });
    const q = await proxy({ connectTimeoutMs: 300 });
    const started = Date.now();
    const answer = await connectThrough(q.socketPath, `blackhole.example:${fullPort}`);
    expect(answer).toMatch(/^HTTP\/1\.1 502/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('closes at once with tunnels still open (a build left them), never waiting on them', async () => {
    const upstream = net.createServer((socket) => socket.write('hello'));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    servers.push(upstream);
    const port = (upstream.address() as AddressInfo).port;
    const p = await proxy();
    expect(await connectThrough(p.socketPath, `open.example:${port}`, 'hello')).toMatch(/^HTTP\/1\.1 200/);
    const start = Date.now();
    await p.close();
    expect(Date.now() - start).toBeLessThan(1000);
  });
});

/** A CONNECT through the proxy; resolves with what came back once `until` (or a status line) arrived. The tunnel stays open. */
function connectThrough(socketPath: string, target: string, until = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath, () => socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString();
      if (text.includes('\r\n\r\n') && text.includes(until)) resolve(text);
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
  });
}

describe('the configured npm registry', () => {
  it('is always allowed, also past BUILD_EGRESS_ALLOW and on a private address', () => {
    expect(egressPolicy({ allowHosts: ['github.com'], privateHosts: undefined }, 'https://npm.mirror.example/')).toEqual({ allowHosts: ['github.com', 'npm.mirror.example'], privateHosts: ['npm.mirror.example'] });
    expect(egressPolicy({ allowHosts: undefined, privateHosts: ['npm.mirror.example'] }, 'https://npm.mirror.example')).toEqual({ allowHosts: undefined, privateHosts: ['npm.mirror.example'] });
  });
});


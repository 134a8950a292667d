// The bench's latency proxy: each request and each answer is held back by the delay, bodies cross
// whole both ways (streamed), and an upstream that is gone is a 502, not a hang.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatencyProxy, type LatencyProxy } from './latency-proxy';

let upstream: http.Server;
let proxy: LatencyProxy;
const DELAY = 40;

beforeAll(async () => {
  // Echoes the body back, with the method and path in headers.
  upstream = http.createServer((req, res) => {
    res.writeHead(201, { 'x-method': req.method, 'x-path': req.url });
    req.pipe(res);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  proxy = await startLatencyProxy(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, DELAY);
});
afterAll(async () => {
  await proxy.close();
  await new Promise((resolve) => upstream.close(resolve));
});

function send(endpoint: string, body: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const url = new URL('/bucket/some/key?partNumber=2', endpoint);
    const req = http.request(url, { method: 'PUT', headers: { 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('latency proxy', () => {
  it('adds the delay each way and passes bodies, status and headers through unchanged', async () => {
    const body = randomBytes(3 * 1024 * 1024);
    const started = performance.now();
    const answer = await send(proxy.endpoint, body);
    expect(performance.now() - started).toBeGreaterThanOrEqual(2 * DELAY - 2);
    expect(answer.status).toBe(201);
    expect(answer.headers['x-method']).toBe('PUT');
    expect(answer.headers['x-path']).toBe('/bucket/some/key?partNumber=2');
    expect(answer.body.equals(body)).toBe(true);
    expect(proxy.requests).toBe(1);
  });

  it('answers 502 when the upstream is gone', async () => {
    const gone = await startLatencyProxy('http://127.0.0.1:9', 1);
    try {
      expect((await send(gone.endpoint, Buffer.from('x'))).status).toBe(502);
    } finally {
      await gone.close();
    }
  });
});

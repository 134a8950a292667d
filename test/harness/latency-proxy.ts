// An HTTP proxy that adds a fixed delay each way to every request (a real S3 region is tens of
// milliseconds away; s3rver on loopback answers in well under one): the request waits `delayMs` before
// it is sent on, and the answer waits `delayMs` before its first byte goes back. Bodies stream through
// both ways; connections to the upstream are kept alive, as a client's to S3 would be.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LatencyProxy {
  /** http://127.0.0.1:<port>: use it as the S3 endpoint. */
  readonly endpoint: string;
  /** Requests it has taken in (each held back, then forwarded). */
  readonly requests: number;
  /** `<method> <path>` of the last 100 requests it has taken in, oldest first. */
  readonly seen: readonly string[];
  close(): Promise<void>;
}

export async function startLatencyProxy(upstream: string, delayMs: number): Promise<LatencyProxy> {
  const target = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const wait = () => new Promise((resolve) => setTimeout(resolve, delayMs));
  let requests = 0;
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    requests++;
    seen.push(`${req.method} ${req.url}`);
    if (seen.length > 100) seen.shift();
    req.pause();
    void wait().then(() => {
      const forward = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
        (answer) => {
          answer.pause();
          void wait().then(() => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
            answer.resume();
          });
        },
      );
      forward.on('error', (err) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end(`latency proxy: ${err.message}`);
        else res.destroy(err);
      });
      req.pipe(forward);
      req.resume();
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get requests() {
      return requests;
    },
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        agent.destroy();
        server.close(() => resolve());
      }),
  };
}

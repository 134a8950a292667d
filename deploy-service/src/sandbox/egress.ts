// A build's only way out: an HTTP proxy on a unix socket that is bound into the build's sandbox
// (which has no network of its own). It resolves every host itself and connects only to public
// addresses — the repository URL rule — on ports 80 and 443, and, with BUILD_EGRESS_ALLOW, only to
// the listed hosts. CONNECT tunnels (https) and absolute-URI requests (plain http) are served, and
// the sandbox's resolver asks here whether a name may be reached (GET /.slipway/lookup/<name>);
// everything else is refused with a reason, which goes to the build log.
import http from 'node:http';
import net from 'node:net';
import { lookup } from 'node:dns/promises';
import { chmod, rm } from 'node:fs/promises';
import pLimit from 'p-limit';
import { isIpAddress, nonPublicRange, withDeadline } from '@slipway/shared';

export interface EgressPolicy {
  /**
   * BUILD_EGRESS_PRIVATE_HOSTS: hosts that may resolve to private or reserved addresses (a package
   * mirror on the LAN). Loopback, link-local (cloud metadata) and unspecified addresses stay refused.
   */
  privateHosts: readonly string[] | undefined;
  /** BUILD_EGRESS_ALLOW: when set, the only hosts (and their subdomains) a build may reach. */
  allowHosts: readonly string[] | undefined;
}

/**
 * The policy for a worker's builds: the operator's settings, and the npm registry the worker fetches
 * its tools from always allowed, wherever it lives (a mirror on the LAN included; loopback and
 * link-local stay refused).
 */
export function egressPolicy(settings: { allowHosts: readonly string[] | undefined; privateHosts: readonly string[] | undefined }, registry: string): EgressPolicy {
  const host = new URL(registry).hostname.toLowerCase();
  const add = (list: readonly string[]) => (list.includes(host) ? list : [...list, host]);
  return { allowHosts: settings.allowHosts && add(settings.allowHosts), privateHosts: add(settings.privateHosts ?? []) };
}

export interface EgressProxy {
  readonly socketPath: string;
  /** Connections refused so far, with the reason each was refused. */
  readonly refused: readonly string[];
  close(): Promise<void>;
}

const PORTS = new Set([80, 443]);
/** The request init.cjs's resolver sends for a name a build looks up (origin-form, so never a proxied URL). */
const LOOKUP_PATH = /^\/\.slipway\/lookup\/([A-Za-z0-9.%-]{1,300})$/;
/** Ranges no build may reach, whatever BUILD_EGRESS_PRIVATE_HOSTS says: the host itself and cloud metadata. */
const NEVER = new Set(['loopback', 'linkLocal', 'unspecified', 'invalid']);
/** A bound on the tunnels one build holds open at once (a package install opens a few dozen). */
const MAX_CONNECTIONS = 256;

class Refused extends Error {}

/** A connection to an upstream must be made within this, and a tunnel or request carry a byte at least this often. */
export const CONNECT_TIMEOUT_MS = 10_000;
export const IDLE_TIMEOUT_MS = 120_000;
/** A name must resolve within this (getaddrinfo has no deadline of its own). */
const LOOKUP_TIMEOUT_MS = 10_000;
/**
 * Checks (name lookups) one build runs at once: getaddrinfo runs on the worker's few libuv threads,
 * which its file reads and writes share, so a build asking for many names must not take them all.
 */
const MAX_LOOKUPS = 4;

export interface EgressOptions {
  /** Where a checked host:port leads; tests swap it to reach servers on loopback. */
  resolve?: typeof resolveTarget;
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
}

/**
 * `onRefused` hears each refusal: its reason, and whether the policy refused it (rather than the
 * target failing to answer).
 */
export async function startEgressProxy(socketPath: string, policy: EgressPolicy, onRefused: (reason: string, byPolicy: boolean) => void, options: EgressOptions = {}): Promise<EgressProxy> {
  const { connectTimeoutMs = CONNECT_TIMEOUT_MS, idleTimeoutMs = IDLE_TIMEOUT_MS } = options;
  const lookups = pLimit(MAX_LOOKUPS);
  const resolve: typeof resolveTarget = (host, port, rules) => lookups(() => (options.resolve ?? resolveTarget)(host, port, rules));
  const refused: string[] = [];
  const refuse = (target: string, err: unknown) => {
    const reason = `${target}: ${err instanceof Refused ? err.message : 'could not connect'}`;
    if (refused.length < 100) refused.push(reason);
    onRefused(reason, err instanceof Refused);
    return reason;
  };
  // Every socket, the build's and the upstreams': a CONNECT tunnel leaves the HTTP server's own
  // bookkeeping, so server.close() alone would wait for tunnels the build keeps open.
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // Silent for too long, either way: given up (a stalled upstream must not hold the build's slot).
    socket.setTimeout(idleTimeoutMs, () => socket.destroy());
    return socket;
  };
  /** Connects to a checked address; the connection must be up within the connect timeout. */
  const connect = (port: number, address: string, onUp: () => void) => {
    const upstream = track(net.connect({ port, host: address }));
    const timer = setTimeout(() => upstream.destroy(new Error('connect timeout')), connectTimeoutMs);
    upstream.once('connect', () => {
      clearTimeout(timer);
      onUp();
    });
    upstream.once('close', () => clearTimeout(timer));
    return upstream;
  };

  const server = http.createServer((req, res) => {
    // The sandbox's own resolver asks whether a name may be reached before it answers a lookup.
    const asked = LOOKUP_PATH.exec(req.url ?? '')?.[1];
    if (asked !== undefined) {
      const name = decodeURIComponent(asked);
      resolve(name, 443, policy).then(
        () => res.writeHead(204).end(),
        (err: unknown) => res.writeHead(403, { 'content-type': 'text/plain' }).end(refuse(`${name} (name lookup)`, err)),
      );
      return;
    }
    // Plain http through the proxy: the request line carries an absolute URL.
    let url: URL;
    try {
      url = new URL(req.url ?? '');
      if (url.protocol !== 'http:') throw new Refused('only http:// URLs are proxied this way; https goes through CONNECT');
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(`slipway egress: ${refuse(String(req.url), err)}\n`);
      return;
    }
    const port = Number(url.port || 80);
    resolve(url.hostname, port, policy).then(
      (address) => {
        const headers = { ...req.headers };
        delete headers['proxy-connection'];
        delete headers['proxy-authorization'];
        // The host that was checked, not the one the build wrote: an allowed address must not lead to another virtual host.
        headers.host = url.host;
        const upstream = http.request({ method: req.method, path: url.pathname + url.search, headers, setHost: false, createConnection: () => connect(port, address, () => undefined) }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
      },
      (err: unknown) => res.writeHead(403, { 'content-type': 'text/plain' }).end(`slipway egress: ${refuse(`${url.hostname}:${port}`, err)}\n`),
    );
  });
  server.on('connection', (socket: net.Socket) => void track(socket));

  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    client.on('error', () => undefined);
    const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(req.url ?? '');
    const host = match?.[1] ?? '';
    const port = Number(match?.[2] ?? 0);
    resolve(host, port, policy).then(
      (address) => {
        const upstream = connect(port, address, () => {
          client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          if (head.length) upstream.write(head);
          upstream.pipe(client);
          client.pipe(upstream);
        });
        upstream.on('error', () => {
          if (!client.destroyed) client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
        });
        client.on('close', () => upstream.destroy());
      },
      (err: unknown) => client.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n\r\nslipway egress: ${refuse(req.url ?? '', err)}\n`),
    );
  });
  server.maxConnections = MAX_CONNECTIONS;

  await rm(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  // The build runs as another uid; the socket's folder is what keeps other builds out.
  await chmod(socketPath, 0o666);
  let closing: Promise<void> | null = null;
  return {
    socketPath,
    refused,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      })),
  };
}

/** The checked address to connect to for `host:port`, or Refused with the reason. */
export async function resolveTarget(host: string, port: number, policy: EgressPolicy): Promise<string> {
  const name = host.toLowerCase().replace(/\.$/, '');
  if (!name) throw new Refused('no host');
  if (!PORTS.has(port)) throw new Refused(`port ${port} is not allowed (builds may reach ports 80 and 443)`);
  if (policy.allowHosts && !policy.allowHosts.some((allowed) => name === allowed || name.endsWith(`.${allowed}`))) {
    throw new Refused(`${name} is not in BUILD_EGRESS_ALLOW`);
  }
  let addresses: string[];
  if (isIpAddress(name)) addresses = [name];
  else {
    if (!/^[a-z0-9.-]+$/.test(name)) throw new Refused(`${JSON.stringify(name)} is not a host name`);
    try {
      addresses = (await withDeadline(lookup(name, { all: true, verbatim: true }), LOOKUP_TIMEOUT_MS, `${name} did not resolve within ${LOOKUP_TIMEOUT_MS} ms`)).map((a) => a.address);
    } catch {
      throw new Refused(`${name} does not resolve`);
    }
  }
  // Every address must be allowed: a name that also resolves to an internal one is refused whole.
  const trusted = policy.privateHosts?.includes(name) ?? false;
  for (const address of addresses) {
    const range = nonPublicRange(address);
    if (range === null || (trusted && !NEVER.has(range))) continue;
    throw new Refused(`${name} is a ${range} address (${address}); builds may reach public hosts only`);
  }
  const first = addresses[0];
  if (!first) throw new Refused(`${name} does not resolve`);
  return first;
}

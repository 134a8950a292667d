// Runs a redis-server process of our own (for `npm start` without REDIS_URL, and for tests):
// on a given loopback port, data in a given folder, AOF on, stopped by whoever started it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** SIGTERM (Redis then writes its AOF and exits) and waits for the exit. Idempotent. */
  stop(): Promise<void>;
}

export class RedisNotInstalledError extends Error {}

export async function startRedisServer(options: { port: number; dir: string; logFile?: string; password?: string }): Promise<RedisServer> {
  await mkdir(options.dir, { recursive: true });
  const args = [
    '--port', String(options.port),
    '--bind', '127.0.0.1',
    '--dir', options.dir,
    '--appendonly', 'yes',
    '--appendfsync', 'everysec',
    '--save', '',
    '--maxmemory-policy', 'noeviction',
    '--logfile', options.logFile ?? '',
    '--daemonize', 'no',
  ];
  // Given on the command line, the password shows in this machine's process list to its other users;
  // the config file read from stdin keeps it out of there.
  if (options.password) args.unshift('-');
  // Its own process group: a Ctrl-C meant for `npm start` must not stop Redis before the services have.
  const child = spawn('redis-server', args, { stdio: [options.password ? 'pipe' : 'ignore', 'ignore', 'pipe'], detached: true });
  if (options.password) child.stdin?.end(`requirepass ${options.password}\n`);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const spawnError = new Promise<never>((_, reject) =>
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? new RedisNotInstalledError('redis-server is not installed') : err),
    ),
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = waitForPing(options.port, 10_000);
  await Promise.race([
    ready,
    spawnError,
    exited.then((code) => {
      throw new Error(`redis-server exited with code ${code} before it was ready: ${stderr.trim()}`);
    }),
  ]);
  let stopping: Promise<void> | null = null;
  return {
    url: options.password ? `redis://:${encodeURIComponent(options.password)}@127.0.0.1:${options.port}` : `redis://127.0.0.1:${options.port}`,
    port: options.port,
    process: child,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited;
      })();
      return stopping;
    },
  };
}

/** Resolves once the server answers PING on the port, retrying until the deadline. */
async function waitForPing(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pingOnce(port)) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(1000);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => {
      socket.destroy();
      // A server with a password answers NOAUTH: it is up all the same.
      resolve(/^(\+PONG|-NOAUTH)/.test(d.toString()));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

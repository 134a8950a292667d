// An S3-compatible server (s3rver) on a local folder, for `npm start` without S3_ENDPOINT and for tests.
// The process hosting it must run with --openssl-legacy-provider: without it, s3rver's paginated
// ListObjectsV2 answers 500 on Node 20.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import S3rver from 's3rver';
import { checkSignature } from './s3-auth';

interface KoaContext {
  method: string;
  req: { url?: string };
  headers: Record<string, string | string[] | undefined>;
  status: number;
  type: string;
  body: string;
}

/** s3rver's built-in account; it checks request signatures against it. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface S3Server {
  readonly endpoint: string;
  close(): Promise<void>;
}

/**
 * Runs s3rver in this process. With `credentials`, they replace s3rver's built-in pair and an
 * unsigned request is refused (s3rver itself serves anonymous requests to anyone who can connect).
 */
export async function runS3rver(options: { directory: string; port: number; credentials?: { accessKeyId: string; secretAccessKey: string } }): Promise<S3Server> {
  const server = new S3rver({ address: '127.0.0.1', port: options.port, directory: options.directory, silent: true });
  if (options.credentials) {
    const credentials = options.credentials;
    const account = createRequire(import.meta.url)('s3rver/lib/models/account.js').DUMMY_ACCOUNT as {
      createKeyPair(id: string, secret: string): void;
      revokeAccessKey(id: string): void;
    };
    account.revokeAccessKey(S3RVER_CREDENTIALS.accessKeyId);
    account.createKeyPair(credentials.accessKeyId, credentials.secretAccessKey);
    // s3rver is a Koa app: this runs before its own middleware and lets through only requests
    // signed with these credentials (s3rver itself would serve anonymous ones).
    (server as unknown as { middleware: unknown[] }).middleware.unshift(async (ctx: KoaContext, next: () => Promise<void>) => {
      const refused = checkSignature({ method: ctx.method, url: ctx.req.url ?? '/', headers: ctx.headers }, credentials);
      if (refused === null) return next();
      ctx.status = 403;
      ctx.type = 'application/xml';
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>${refused}</Message></Error>`;
    });
  }
  const address = (await server.run()) as { port: number };
  // Node's default (5 s) closes idle kept-alive sockets while clients may be about to reuse them;
  // a client's streamed upload that meets such a close fails. Keep them longer than clients idle.
  const httpServer = (server as unknown as { httpServer: { keepAliveTimeout: number; headersTimeout: number } }).httpServer;
  httpServer.keepAliveTimeout = 65_000;
  httpServer.headersTimeout = 66_000;
  let closing: Promise<void> | null = null;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    close: () => (closing ??= server.close().then(() => undefined)),
  };
}

/** Runs s3rver in a child process of its own (so a test can kill it) and waits until it listens. */
export async function spawnS3rver(options: { directory: string; port?: number; credentials?: { accessKeyId: string; secretAccessKey: string } }): Promise<S3Server & { pid: number }> {
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', '--import', 'tsx', fileURLToPath(import.meta.url), options.directory, String(options.port ?? 0)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...(options.credentials ? { S3RVER_ACCESS_KEY_ID: options.credentials.accessKeyId, S3RVER_SECRET_ACCESS_KEY: options.credentials.secretAccessKey } : {}) },
    },
  );
  const lines = createInterface({ input: child.stdout! });
  const exited = once(child, 'exit');
  const first = await Promise.race([
    once(lines, 'line').then(([line]) => String(line)),
    exited.then(([code]) => {
      throw new Error(`s3rver child exited with code ${code} before it listened`);
    }),
  ]);
  const { endpoint } = JSON.parse(first) as { endpoint: string };
  let closing: Promise<void> | null = null;
  return {
    endpoint,
    pid: child.pid!,
    close() {
      closing ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited;
      })();
      return closing;
    },
  };
}

// Child mode: `node --openssl-legacy-provider --import tsx dev/s3-server.ts <dir> <port>`.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [directory, port] = process.argv.slice(2);
  const { S3RVER_ACCESS_KEY_ID: accessKeyId, S3RVER_SECRET_ACCESS_KEY: secretAccessKey } = process.env;
  const credentials = accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined;
  const server = await runS3rver({ directory: directory!, port: Number(port ?? 0), credentials });
  process.stdout.write(`${JSON.stringify({ endpoint: server.endpoint })}\n`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

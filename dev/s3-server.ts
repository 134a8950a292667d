// An S3-compatible server (s3rver) on a local folder, for `npm start` without S3_ENDPOINT and for tests.
// The process hosting it must run with --openssl-legacy-provider: without it, s3rver's paginated
// ListObjectsV2 answers 500 on Node 20.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import S3rver from 's3rver';

/** s3rver's built-in account; it checks request signatures against it. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface S3Server {
  readonly endpoint: string;
  close(): Promise<void>;
}

/** Runs s3rver in this process. */
export async function runS3rver(options: { directory: string; port: number }): Promise<S3Server> {
  const server = new S3rver({ address: '127.0.0.1', port: options.port, directory: options.directory, silent: true });
  const address = (await server.run()) as { port: number };
  let closing: Promise<void> | null = null;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    close: () => (closing ??= server.close().then(() => undefined)),
  };
}

/** Runs s3rver in a child process of its own (so a test can kill it) and waits until it listens. */
export async function spawnS3rver(options: { directory: string; port?: number }): Promise<S3Server & { pid: number }> {
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', '--import', 'tsx', fileURLToPath(import.meta.url), options.directory, String(options.port ?? 0)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
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
  const server = await runS3rver({ directory: directory!, port: Number(port ?? 0) });
  process.stdout.write(`${JSON.stringify({ endpoint: server.endpoint })}\n`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

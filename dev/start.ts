// `npm start`: the whole stack on one machine with no Docker. Starts a redis-server (unless
// REDIS_URL is set) and s3rver (unless S3_ENDPOINT is set) with their data under .slipway/, then
// one upload-service, a site server and DEPLOY_WORKERS deploy-service processes, with one readable combined log.
// Ctrl-C stops everything it started.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { prettyFactory } from 'pino-pretty';
import { nodeSupportNote } from '@slipway/shared';
import { RedisNotInstalledError, startRedisServer, type RedisServer } from './redis-server';
import { runS3rver, type S3Server } from './s3-server';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DATA = path.join(ROOT, '.slipway');
const EMBEDDED_REDIS_PORT = 6380;
const EMBEDDED_S3_PORT = 4569;

const env: NodeJS.ProcessEnv = { ...process.env };
const workers = Number(env.DEPLOY_WORKERS ?? '1');
if (!Number.isInteger(workers) || workers < 1 || workers > 64) fail(`DEPLOY_WORKERS=${env.DEPLOY_WORKERS} must be a whole number from 1 to 64`);

// Builds run in bubblewrap sandboxes; without bwrap the worker would refuse to start, so say it here, once.
if (env.BUILD_SANDBOX !== 'off' && spawnSync('bwrap', ['--version']).error) {
  fail(
    'bubblewrap is not installed, and builds run code from strangers inside it. Install it (Debian/Ubuntu: apt-get install bubblewrap; ' +
      'it needs Linux with user namespaces), or run `BUILD_SANDBOX=off npm start` to build only your own repositories without a sandbox.',
  );
}

const pretty = prettyFactory({ colorize: process.stdout.isTTY, translateTime: 'HH:MM:ss', ignore: 'pid,hostname,service', messageKey: 'msg', singleLine: true });
const children: { name: string; child: ChildProcess }[] = [];
let redis: RedisServer | null = null;
let s3: S3Server | null = null;
let stopping = false;

process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

await mkdir(DATA, { recursive: true });
if (!env.REDIS_URL) {
  // The embedded Redis has a password (made once, kept in .slipway/redis-password, 0600): other users
  // of this machine cannot read or change the queue.
  const password = await secret(path.join(DATA, 'redis-password'));
  try {
    redis = await startRedisServer({ port: EMBEDDED_REDIS_PORT, dir: path.join(DATA, 'redis'), logFile: path.join(DATA, 'redis.log'), password });
  } catch (err) {
    if (err instanceof RedisNotInstalledError) {
      fail(
        'redis-server is not installed. Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis), ' +
          'or set REDIS_URL to a Redis 6.2+ server, or run the production stack with `docker compose up`.',
      );
    }
    fail(`could not start redis-server on port ${EMBEDDED_REDIS_PORT}: ${err instanceof Error ? err.message : String(err)}`);
  }
  env.REDIS_URL = redis.url;
}
if (!env.S3_ENDPOINT) {
  // Credentials of its own (made once, kept in .slipway/s3-secret), and no anonymous requests.
  const credentials = { accessKeyId: 'slipway', secretAccessKey: await secret(path.join(DATA, 's3-secret')) };
  s3 = await runS3rver({ directory: path.join(DATA, 's3'), port: EMBEDDED_S3_PORT, credentials });
  env.S3_ENDPOINT = s3.endpoint;
  env.AWS_ACCESS_KEY_ID = credentials.accessKeyId;
  env.AWS_SECRET_ACCESS_KEY = credentials.secretAccessKey;
}

// The API listens on loopback and asks for a token: made once, kept in .slipway/api-token (0600).
// The services get its hash only.
env.HOST ??= '127.0.0.1';
const tokenFile = path.join(DATA, 'api-token');
let apiToken: string | null = null;
if (!env.API_TOKENS) {
  apiToken = await secret(tokenFile);
  env.API_TOKENS = `sha256:${createHash('sha256').update(apiToken).digest('hex')}`;
}

// Git credentials and env values are sealed at rest under a key made once, kept in .slipway/secrets-key (0600).
env.SECRETS_KEY ??= await secret(path.join(DATA, 'secrets-key'), 32);

run('upload-service', 'upload-service/src/main.ts');
// The sites are served by a process of their own, as in production (unless SERVE_SITES asks the API to).
if (!/^(1|true|yes)$/.test(env.SERVE_SITES ?? '')) run('site-server', 'upload-service/src/site-main.ts');
for (let n = 1; n <= workers; n++) run(workers === 1 ? 'deploy-service' : `deploy-service-${n}`, 'deploy-service/src/main.ts');

const port = env.PORT ?? '3000';
const sitePort = /^(1|true|yes)$/.test(env.SERVE_SITES ?? '') ? port : (env.SITE_PORT ?? '3001');
const redisUrl = new URL(env.REDIS_URL!);
const ready = await waitForReady(`http://127.0.0.1:${port}/readyz`);
const note = nodeSupportNote();
console.log(`
  Slipway is ${ready ? 'running' : 'started, but the API is not ready yet (its log above says why)'}.
    API and web page   http://localhost:${port}/
    deployed sites     http://<id>.${env.BASE_DOMAIN ?? 'localhost'}:${sitePort}/
    watch the queue    ${redis ? `REDISCLI_AUTH=$(cat ${path.relative(process.cwd(), path.join(DATA, 'redis-password'))}) ` : ''}redis-cli -h ${redisUrl.hostname} -p ${redisUrl.port || 6379} LLEN build-queue
    data               ${s3 || redis ? path.relative(process.cwd(), DATA) || '.' : '(external Redis and S3)'}
    API token          ${apiToken ? `${apiToken}  (kept in ${path.relative(process.cwd(), tokenFile)}; the web page asks for it once)` : '(from API_TOKENS)'}
  Deploy:  curl -X POST localhost:${port}/deploy -H "authorization: Bearer ${apiToken ?? '<token>'}" -H 'content-type: application/json' -d '{"repoUrl":"https://github.com/owner/site.git"}'
  Ctrl-C stops everything.${note ? `\n  Note: ${note}.` : ''}
`);

function run(name: string, entry: string): void {
  // A process group of its own, so Ctrl-C reaches only this launcher, which then stops each service once.
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, entry)], { env, cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push({ name, child });
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => print(name, line));
  }
  child.on('exit', (code, signal) => {
    if (stopping) return;
    print(name, `exited unexpectedly (${signal ?? `code ${code}`}); stopping the stack`);
    void stop(1);
  });
}

function print(name: string, line: string): void {
  const tag = `[${name}]`.padEnd(18);
  const text = line.startsWith('{') ? pretty(line).trimEnd() : line;
  process.stdout.write(`${tag} ${text}\n`);
}

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log('\nstopping Slipway…');
  await Promise.all(
    children.map(
      ({ child }) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    ),
  );
  await s3?.close();
  await redis?.stop();
  process.exit(code);
}

/** Waits, at most 30 s, until `url` answers 200 (Redis connected, the bucket made); false if it never did. */
async function waitForReady(url: string): Promise<boolean> {
  for (let i = 0; i < 300 && !stopping; i++) {
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok) return true;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** A random secret kept in `file` (0600): read it, or make it on first use. */
async function secret(file: string, bytes = 24): Promise<string> {
  const existing = (await readFile(file, 'utf8').catch(() => '')).trim();
  if (existing) return existing;
  const made = randomBytes(bytes).toString('base64url');
  await writeFile(file, `${made}\n`, { mode: 0o600 });
  return made;
}

function fail(message: string): never {
  console.error(`slipway: ${message}`);
  process.exit(1);
}

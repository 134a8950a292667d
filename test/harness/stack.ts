// A Slipway stack for one test file: its own redis-server, a bucket of its own on the shared
// s3rver, the upload-service app on a free port, and in-process deploy workers — all real.
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { chmod, mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import getPort from 'get-port';
import { Parser, type ReadEntry } from 'tar';
import { inject } from 'vitest';
import { pino } from 'pino';
import {
  FINAL_STATUSES,
  Queue,
  Storage,
  createRedis,
  createS3Client,
  isRedisUnavailable,
  loadConfig,
  prepareSecrets,
  type Config,
  type DeploymentRecord,
  type Redis,
  type Status,
  storageKeys,
} from '@slipway/shared';
import { createApp } from '../../upload-service/src/app';
import { startNotifier } from '../../upload-service/src/notify/notifier';
import { startWorker, type Worker } from '../../deploy-service/src/queue/worker';
import { startRedisServer, type RedisServer } from '../../dev/redis-server';
import { S3RVER_CREDENTIALS } from '../../dev/s3-server';
import { createFixtureRepo } from './git-server';
import { ToolCache } from '../../deploy-service/src/toolchain/tool-cache';

export interface Stack {
  config: Config;
  /** The environment the stack's config was parsed from: what a worker process needs. */
  env: Record<string, string>;
  api: string;
  redis: Redis;
  redisServer: RedisServer;
  queue: Queue;
  storage: Storage;
  workers: Worker[];
  /** POSTs /deploy and returns the status and JSON body. */
  post(path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  get(path: string): Promise<{ status: number; body: any }>;
  /** Any method, a JSON body when given; the answer's JSON (null when it has none). */
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** POSTs a deployment and fails the test unless it is accepted. */
  deploy(body: Record<string, unknown>): Promise<string>;
  waitFor(id: string, statuses?: readonly Status[], timeoutMs?: number): Promise<DeploymentRecord>;
  /** GETs a path of a deployed site through the Host header. */
  site(id: string, urlPath: string, method?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>;
  startWorker(options?: { slots?: number; name?: string }): Promise<Worker>;
  repo(name: string, files: Record<string, string | Buffer>, options?: { branch?: string; extraBranches?: Record<string, Record<string, string | Buffer>> }): Promise<string>;
  close(): Promise<void>;
}

/** The line a worker writes to a deployment's log as each build starts: build id, slot, attempt. */
export const BUILD_START_LINE = /^\[slipway\] build (\S+) started on (\S+) \(attempt (\d+)\)$/;

let bucketCounter = 0;

/** The shared servers a stack runs against: from vitest's global setup, or started by the benchmark. */
export interface Servers {
  s3Endpoint: string;
  gitUrl: string;
  gitRoot: string;
  tmpRoot: string;
}

export interface StackOptions {
  workers?: number;
  slots?: number;
  env?: Record<string, string>;
}

export function startStack(options: StackOptions = {}): Promise<Stack> {
  return startStackOn({ s3Endpoint: inject('s3Endpoint'), gitUrl: inject('gitUrl'), gitRoot: inject('gitRoot'), tmpRoot: inject('tmpRoot') }, options);
}

export async function startStackOn(servers: Servers, options: StackOptions = {}): Promise<Stack> {
  const { tmpRoot } = servers;
  const dir = await mkdtemp(path.join(tmpRoot, 'stack-'));
  // Builds run as an unprivileged user when the tests run as root: it must be able to pass through.
  await chmod(dir, 0o711);
  const redisServer = await startRedisServer({ port: await getPort(), dir: path.join(dir, 'redis') });
  const port = await getPort();
  const env: Record<string, string> = {
    PORT: String(port),
    // One process for everything: the API serves the sites too (test/site-server.test.ts runs the site server on its own).
    SERVE_SITES: '1',
    REDIS_URL: redisServer.url,
    S3_ENDPOINT: servers.s3Endpoint,
    S3_BUCKET: `test-${process.pid}-${++bucketCounter}`,
    AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    ALLOW_PRIVATE_NETWORKS: '1',
    WORK_DIR: dir,
    // Node releases and package managers are fetched once per run, shared by every stack.
    TOOLS_DIR: path.join(tmpRoot, 'tools'),
    BUILD_CONCURRENCY: String(options.slots ?? 1),
    BUILD_TIMEOUT_SECONDS: '60',
    LOG_LEVEL: process.env.SLIPWAY_TEST_LOG ?? 'silent',
    DEPLOY_RATE_LIMIT: '100000',
    // Each stack seals its secrets under a key of its own, as npm start makes one.
    SECRETS_KEY: randomBytes(32).toString('base64'),
    ...options.env,
  };
  const config = loadConfig(env);
  const logger = pino({ level: config.logLevel });
  const redis = createRedis(config.redisUrl, logger);
  await redis.connect();
  await prepareSecrets(redis, config.secrets, logger);
  const storage = new Storage(createS3Client(config.s3, config.uploadConcurrency), config.s3.bucket);
  await storage.ensureBucket();
  const queue = new Queue(redis);
  const app = createApp({ config, queue, storage, logger, redisReady: () => redis.isReady });
  const notifier = startNotifier({ config, redis, queue, logger });
  const server = app.listen(port, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const workers: Worker[] = [];
  let workerCount = 0;
  const stack: Stack = {
    config,
    env,
    api,
    redis,
    redisServer,
    queue,
    storage,
    workers,
    async post(urlPath, body, headers = { 'content-type': 'application/json' }) {
      const res = await fetch(api + urlPath, { method: 'POST', headers, body: typeof body === 'string' ? body : body === undefined ? undefined : JSON.stringify(body) });
      return { status: res.status, body: await res.json().catch(() => null) };
    },
    async get(urlPath) {
      return stack.request('GET', urlPath);
    },
    async request(method, urlPath, body) {
      const res = await fetch(api + urlPath, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: res.status, body: await res.json().catch(() => null) };
    },
    async deploy(body) {
      const res = await stack.post('/deploy', body);
      if (res.status !== 202) throw new Error(`POST /deploy answered ${res.status}: ${JSON.stringify(res.body)}`);
      return res.body.id as string;
    },
    async waitFor(id, statuses = FINAL_STATUSES, timeoutMs = 45_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        // While a test has Redis stopped, keep polling: the client reconnects on its own.
        const record = await queue.get(id).catch((err: unknown) => {
          if (isRedisUnavailable(err)) return null;
          throw err;
        });
        if (record && statuses.includes(record.status)) return record;
        if (Date.now() > deadline) throw new Error(`deployment ${id} did not reach ${statuses.join('/')} within ${timeoutMs} ms; it is ${record?.status} (${record?.error ?? ''})`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    site(id, urlPath, method = 'GET') {
      return new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, headers: { host: `${id}.${config.baseDomain}:${port}` } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        });
        req.on('error', reject);
        req.end();
      });
    },
    async startWorker(opts = {}) {
      const workerConfig = opts.slots ? Object.freeze({ ...config, buildConcurrency: opts.slots }) : config;
      const worker = await startWorker({ config: workerConfig, redis, storage, logger, name: opts.name ?? `test-${process.pid}-${++workerCount}` });
      workers.push(worker);
      return worker;
    },
    repo(name, files, repoOptions) {
      const gitServer = { url: servers.gitUrl, root: servers.gitRoot };
      return createFixtureRepo(gitServer, `${config.s3.bucket}-${name}`, files, repoOptions);
    },
    async close() {
      await Promise.all(workers.map((w) => w.close({ force: true })));
      await notifier.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      redis.destroy();
      await stack.redisServer.stop(); // a test may have restarted it
    },
  };
  for (let i = 0; i < (options.workers ?? 1); i++) await stack.startWorker();
  return stack;
}

/**
 * The Redis keys a test wrote: all but the stack's own (secrets:keys, written at its start, and the
 * events stream the notifier makes at its start, while no event is in it).
 */
export async function storedKeys(stack: Stack): Promise<string[]> {
  const keys = (await stack.redis.keys('*')).filter((k) => k !== 'secrets:keys');
  const quiet = keys.includes('deployment-events') && (await stack.redis.xLen('deployment-events')) === 0;
  return keys.filter((k) => !(quiet && k === 'deployment-events')).sort();
}

/**
 * A deployment's source as stored, path → contents: the archive's regular files (every member listed,
 * so a link or anything else the upload-service should have left out shows up too, under its type).
 */
export async function storedSource(stack: Stack, id: string): Promise<Record<string, string>> {
  const object = await stack.storage.get(storageKeys.sourceArchive(id));
  if (!object) throw new Error(`deployment ${id} has no source archive`);
  const files: Record<string, string> = {};
  const parser = new Parser({ strict: true });
  parser.on('entry', (entry: ReadEntry) => {
    if (entry.type === 'Directory') return void entry.resume();
    const chunks: Buffer[] = [];
    entry.on('data', (c: Buffer) => chunks.push(c));
    entry.on('end', () => (files[entry.type === 'File' ? entry.path : `${entry.path} (${entry.type})`] = Buffer.concat(chunks).toString('utf8')));
  });
  await pipeline(object.body, createGunzip(), parser);
  return files;
}

/** Deploys `files` as repository `name` and waits for the outcome: the id, the record and the whole log. */
export async function deployRepo(stack: Stack, name: string, files: Record<string, string>, body: Record<string, unknown> = {}, timeoutMs = 240_000) {
  const id = await stack.deploy({ repoUrl: await stack.repo(name, files), ...body });
  const record = await stack.waitFor(id, undefined, timeoutMs);
  const log = ((await stack.get(`/deployments/${id}/logs`)).body.lines as string[]).join('\n');
  return { id, record, log };
}

/** The tool cache the stack's workers use (TOOLS_DIR), for fixtures made by running a package manager. */
export function stackTools(stack: Stack): ToolCache {
  return new ToolCache(stack.config.toolsDir!, stack.config.npmRegistry ?? npmRegistry());
}

let registry: string | undefined;
/** The host of the npm registry npm's own configuration names (builds reach it through the egress proxy). */
export function registryHost(): string {
  return new URL(npmRegistry()).hostname;
}

/** The registry npm is configured with (npm's own configuration, never a name written here). */
export function npmRegistry(): string {
  registry ??= execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim().replace(/\/+$/, '');
  return registry;
}

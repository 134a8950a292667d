// Configuration: the environment parsed and validated once at start into a typed, frozen object.
// Nothing else in Slipway reads process.env.
// Over 300 lines: the one schema of every setting (a line each) and its typed, documented result.
import { createHash } from 'node:crypto';
import os from 'node:os';
import { z } from 'zod';
import { ConfigError } from './errors';
import { Secrets, parseSecretsKey } from './secrets/seal';

const whole = (min: number, max: number) =>
  z.coerce
    .number({ error: `must be a whole number from ${min} to ${max}` })
    .int({ error: `must be a whole number from ${min} to ${max}` })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });
const int = (def: number, min: number, max: number) => whole(min, max).default(def);
const flag = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', ''])
  .default('0')
  .transform((v) => v === '1' || v === 'true' || v === 'yes');

const EnvSchema = z.object({
  PORT: int(3000, 0, 65535),
  /** The site server's port (upload-service/src/site-main.ts). */
  SITE_PORT: int(3001, 0, 65535),
  /** 1: the API process serves the sites too (one process for everything, as the tests run it). */
  SERVE_SITES: flag,
  HOST: z
    .string()
    .regex(/^[a-z0-9.:-]+$/i, 'must be an address to listen on, such as 127.0.0.1 or 0.0.0.0')
    .default('0.0.0.0'),
  API_TOKENS: z
    .string()
    .refine((v) => v.split(',').map((t) => t.trim()).filter(Boolean).every((t) => /^sha256:[0-9a-f]{64}$/.test(t) || /^[A-Za-z0-9._~+/=-]{16,}$/.test(t)), {
      error: 'must be comma-separated tokens of 16 or more characters, or sha256:<64 hex digits> of each',
    })
    .optional(),
  ALLOW_ANONYMOUS: flag,
  PRIVATE_READS: flag,
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).default('redis://127.0.0.1:6379'),
  /** The password, when it is not in REDIS_URL (Kubernetes: one Secret key for the services and KEDA). */
  REDIS_PASSWORD: z.string().min(1).max(512).optional(),
  S3_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_FORCE_PATH_STYLE: z.enum(['0', '1'], { error: 'must be 0 or 1' }).optional(),
  S3_TIMEOUT_SECONDS: int(30, 1, 3600),
  S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name')
    .default('slipway'),
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
  BASE_DOMAIN: z
    .string()
    .regex(/^[a-z0-9.-]+$/i, 'must be a host name such as localhost or sites.example.com')
    .default('localhost'),
  SITE_URL_TEMPLATE: z
    .string()
    .regex(/\{id\}/, 'must contain {id}, e.g. https://{id}.sites.example.com/')
    .optional(),
  DEPLOY_WORKERS: int(1, 1, 64),
  BUILD_CONCURRENCY: int(1, 1, 64),
  BUILD_TIMEOUT_SECONDS: int(600, 1, 24 * 3600),
  CLONE_TIMEOUT_SECONDS: int(60, 1, 3600),
  MAX_REPO_MB: int(200, 1, 100_000),
  MAX_REPO_FILES: int(20_000, 1, 10_000_000),
  MAX_LOG_BYTES: int(1_000_000, 1024, 100_000_000),
  MAX_ATTEMPTS: int(8, 1, 100),
  UPLOAD_CONCURRENCY: int(16, 1, 256),
  SHUTDOWN_GRACE_SECONDS: int(30, 0, 3600),
  HEARTBEAT_TTL_SECONDS: int(30, 1, 3600),
  REAPER_INTERVAL_SECONDS: int(10, 1, 3600),
  RETRY_BASE_MS: int(10_000, 1, 3_600_000),
  ALLOW_PRIVATE_NETWORKS: flag,
  /** First wait before a failed commit status, comment or webhook delivery is sent again (tripled each time, at most an hour). */
  NOTIFY_RETRY_BASE_MS: int(2_000, 1, 3_600_000),
  NOTIFY_MAX_ATTEMPTS: int(8, 1, 50),
  /** The forges' API base URLs for projects that set none of their own (GitHub Enterprise: https://<host>/api/v3). */
  GITHUB_API_URL: z.url({ protocol: /^https?$/ }).default('https://api.github.com'),
  GITLAB_API_URL: z.url({ protocol: /^https?$/ }).default('https://gitlab.com/api/v4'),
  TRUST_PROXY: z
    .string()
    .regex(/^(\d{1,2}|[0-9a-f.:/,\s]+|loopback|linklocal|uniquelocal)$/i, 'must be a number of proxy hops (1 for one ingress), or a comma-separated list of proxy addresses or CIDR ranges')
    .optional(),
  /** A known_hosts file: the SSH host keys deploy keys may clone from (none trusted without it). */
  SSH_KNOWN_HOSTS: z.string().min(1).max(4096).optional(),
  GIT_ALLOWED_HOSTS: z
    .string()
    .regex(/^[a-z0-9.,\s:-]+$/i, 'must be a comma-separated list of host names')
    .optional(),
  API_HOSTS: z
    .string()
    .regex(/^[a-z0-9.,\s:-]+$/i, 'must be a comma-separated list of host names')
    .optional(),
  SITE_CACHE_MB: int(64, 0, 100_000),
  SITE_CACHE_FILE_KB: int(256, 1, 1_000_000),
  RETAIN_PREVIEW_DAYS: int(30, 0, 36_500),
  RETAIN_PRODUCTION_DAYS: int(0, 0, 36_500),
  RETAIN_FAILED_DAYS: int(7, 0, 36_500),
  RETAIN_CANCELED_DAYS: int(1, 0, 36_500),
  /** How long a site keeps serving the hashed assets of the builds it served before (0: off). */
  SKEW_PROTECTION_HOURS: int(12, 0, 24 * 30),
  /** How many builds back. */
  SKEW_PROTECTION_BUILDS: int(5, 1, 50),
  JANITOR_INTERVAL_SECONDS: int(3600, 1, 7 * 24 * 3600),
  DEPLOY_RATE_LIMIT: int(30, 1, 1_000_000),
  AUTH_FAILURE_LIMIT: int(20, 1, 1_000_000),
  LOG_STREAMS_PER_CLIENT: int(10, 1, 100_000),
  LOG_STREAMS_MAX: int(1000, 1, 1_000_000),
  LOG_STREAM_SECONDS: int(1800, 1, 7 * 24 * 3600),
  MAX_CONCURRENT_CLONES: int(4, 1, 256),
  MAX_WAITING_CLONES: int(16, 0, 10_000),
  BUILD_SANDBOX: z.enum(['on', 'off'], { error: 'must be on or off' }).default('on'),
  BUILD_MEMORY_MB: whole(64, 1_000_000).optional(),
  BUILD_MEMORY_MAX_MB: whole(64, 1_000_000).optional(),
  BUILD_MAX_PROCS: int(512, 16, 100_000),
  BUILD_MAX_FILE_MB: int(1024, 1, 1_000_000),
  BUILD_DISK_MB: int(10_240, 16, 10_000_000),
  BUILD_DISK_INODES: int(1_000_000, 1000, 100_000_000),
  MAX_OUTPUT_MB: int(1024, 1, 1_000_000),
  MAX_OUTPUT_FILES: int(20_000, 1, 10_000_000),
  BUILD_UIDS: z
    .string()
    .regex(/^\d+-\d+$/, 'must be a range of uids, first-last, such as 2000000-3048575')
    .refine((v) => {
      const [first, last] = v.split('-').map(Number) as [number, number];
      return first >= 1000 && last - first + 1 >= 64 && last < 2 ** 32 - 1;
    }, 'must start at 1000 or above and hold at least 64 uids')
    .default('2000000-3048575'),
  BUILD_EGRESS_ALLOW: z
    .string()
    .regex(/^[a-z0-9.,\s-]+$/i, 'must be a comma-separated list of host names')
    .optional(),
  BUILD_EGRESS_PRIVATE_HOSTS: z
    .string()
    .regex(/^[a-z0-9.,\s-]+$/i, 'must be a comma-separated list of host names')
    .optional(),
  WORK_DIR: z.string().min(1).optional(),
  TOOLS_DIR: z
    .string()
    .regex(/^\/[A-Za-z0-9._/-]+$/, 'must be an absolute path of letters, digits and . _ / -')
    .optional(),
  BUILD_CACHE: z.enum(['on', 'off'], { error: 'must be on or off' }).default('on'),
  CACHE_DIR: z
    .string()
    .regex(/^\/[A-Za-z0-9._/-]+$/, 'must be an absolute path of letters, digits and . _ / -')
    .optional(),
  BUILD_CACHE_MB: int(10_240, 0, 10_000_000),
  BUILD_CACHE_ARCHIVE_MB: int(1024, 1, 100_000),
  /** Unset: the registry npm's own configuration names (read by the worker at start). */
  NPM_REGISTRY: z.url({ protocol: /^https?$/ }).optional(),
  /** Seals git credentials and env values at rest (secrets/seal.ts); the previous key only opens, during a rotation. */
  SECRETS_KEY: z.string().optional(),
  SECRETS_KEY_PREVIOUS: z.string().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Env = z.input<typeof EnvSchema>;

/** Every variable the config reads (deployment files are checked against it). */
export const CONFIG_VARIABLES: readonly string[] = Object.freeze(Object.keys(EnvSchema.shape));

const SECRET_VARIABLES = new Set(['API_TOKENS', 'AWS_SECRET_ACCESS_KEY', 'REDIS_URL', 'REDIS_PASSWORD', 'SECRETS_KEY', 'SECRETS_KEY_PREVIOUS']);

export interface Config {
  readonly port: number;
  /** The site server's port; and whether the API serves the sites itself (SERVE_SITES). */
  readonly sitePort: number;
  readonly serveSites: boolean;
  /** The address the API listens on. */
  readonly host: string;
  /** SHA-256 (hex) of each accepted API token; empty when API_TOKENS is unset (no tokens asked). */
  readonly apiTokenHashes: readonly string[];
  /** Lets the API listen beyond loopback without API_TOKENS. */
  readonly allowAnonymous: boolean;
  /** Reads of records, logs, the queue and metrics need a token too. */
  readonly privateReads: boolean;
  readonly redisUrl: string;
  /** SECRETS_KEY (and SECRETS_KEY_PREVIOUS during a rotation); disabled when unset. */
  readonly secrets: Secrets;
  readonly s3: {
    readonly endpoint: string | undefined;
    /** Buckets addressed by path (MinIO, s3rver, R2) rather than by host name (AWS). */
    readonly forcePathStyle: boolean;
    readonly region: string;
    readonly bucket: string;
    readonly accessKeyId: string | undefined;
    readonly secretAccessKey: string | undefined;
    /** An S3 connection idle this long (no byte either way) ends its request as unavailable. */
    readonly timeoutMs: number;
  };
  readonly baseDomain: string;
  /** The public address of a deployed site; `{id}` stands for the deployment id. */
  readonly siteUrlTemplate: string;
  readonly deployWorkers: number;
  readonly buildConcurrency: number;
  readonly buildTimeoutMs: number;
  readonly cloneTimeoutMs: number;
  readonly maxRepoBytes: number;
  readonly maxRepoFiles: number;
  readonly maxLogBytes: number;
  readonly maxAttempts: number;
  readonly uploadConcurrency: number;
  readonly shutdownGraceMs: number;
  /** A worker slot whose heartbeat is this old is dead; its builds are recovered. */
  readonly heartbeatTtlSeconds: number;
  readonly reaperIntervalMs: number;
  /** First retry delay after a platform failure; doubled for each further attempt, with jitter. */
  readonly retryBaseMs: number;
  readonly allowPrivateNetworks: boolean;
  /** Outgoing deliveries (notify/): the first retry's wait, the attempts, the forges' default API URLs. */
  readonly notify: { readonly retryBaseMs: number; readonly maxAttempts: number; readonly githubApiUrl: string; readonly gitlabApiUrl: string };
  /**
   * Which proxies in front of the API to believe about the client's address (X-Forwarded-For): a hop
   * count, or their addresses; false (the default) believes none, so limits count the socket's address.
   */
  readonly trustProxy: number | string | false;
  /** When set, the only hosts repositories may come from. */
  readonly gitAllowedHosts: readonly string[] | undefined;
  /** SSH_KNOWN_HOSTS: the host keys SSH clones trust; undefined trusts none. */
  readonly sshKnownHosts: string | undefined;
  /** Memory for sites' small files (each at most siteCacheFileBytes); 0 turns the file cache off. */
  readonly siteCacheBytes: number;
  readonly siteCacheFileBytes: number;
  /** The API's own host names: never a project's custom domain, never served as a site. */
  readonly apiHosts: readonly string[];
  /** Days a deployment of each kind is kept after it was created (0: for ever); see deploy-service/src/retention/janitor.ts. */
  readonly retention: { readonly previewDays: number; readonly productionDays: number; readonly failedDays: number; readonly canceledDays: number };
  /** Skew protection: how long (ms, 0 off) and how many builds back a site serves earlier builds' hashed assets. */
  readonly skew: { readonly ms: number; readonly builds: number };
  readonly janitorIntervalMs: number;
  /** POST /deploy requests per client per minute. */
  readonly deployRateLimit: number;
  /** Failed tokens or hook signatures per client in 10 minutes before it is answered 429. */
  readonly authFailureLimit: number;
  /** Live log streams (server-sent events) per client address and in all, and how long one lives. */
  readonly logStreamsPerClient: number;
  readonly logStreamsMax: number;
  readonly logStreamMs: number;
  readonly maxConcurrentClones: number;
  /** Requests that may wait for a clone slot; past that, 429. */
  readonly maxWaitingClones: number;
  /** Run builds under bubblewrap (on), or without a sandbox (off: not isolated, warned at every build). */
  readonly buildSandbox: boolean;
  /** A build's memory when it asks for none (BUILD_MEMORY_MB, else 8 GB within the machine's share per slot). */
  readonly buildMemoryBytes: number;
  /** The most a build may ask for (buildMemoryMb); BUILD_MEMORY_MAX_MB, else the machine's share per slot. */
  readonly buildMemoryMaxBytes: number;
  readonly buildMaxProcs: number;
  readonly buildMaxFileBytes: number;
  /** The build's disk (source, home, /tmp): its size and how many files and folders it may hold. */
  readonly buildDisk: { readonly bytes: number; readonly inodes: number };
  readonly maxOutputBytes: number;
  readonly maxOutputFiles: number;
  /** The uids builds run as when the worker is root, one per running build (BUILD_UIDS first-last). */
  readonly buildUids: { readonly first: number; readonly count: number };
  /** When set, the only hosts (and their subdomains) builds may reach through the egress proxy. */
  readonly buildEgressAllow: readonly string[] | undefined;
  /** Hosts builds may reach even when they resolve to private or reserved addresses (a package mirror on the LAN). */
  readonly buildEgressPrivateHosts: readonly string[] | undefined;
  /** Where temporary clones and build folders go; the OS temp folder when unset. */
  readonly workDir: string | undefined;
  /** Where the worker keeps the Node releases and package managers it fetched (shared by its builds). */
  readonly toolsDir: string | undefined;
  /** Where those come from. */
  readonly npmRegistry: string | undefined;
  /** Keep node_modules, package caches and framework caches between builds of a repository. */
  readonly buildCache: boolean;
  /** The worker's copy of the build caches (also kept in S3); least recently used go past buildCacheBytes. */
  readonly cacheDir: string | undefined;
  readonly buildCacheBytes: number;
  /** One archive larger than this is not kept. */
  readonly buildCacheArchiveBytes: number;
  readonly logLevel: string;
}

/** Parses the environment; throws ConfigError with one line naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable means "unset", as in docker-compose files that pass `FOO: ${FOO:-}`.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(present);
  if (!parsed.success) {
    // A secret's value never reaches the message (it is printed, and logged).
    const shown = (name: string) => (SECRET_VARIABLES.has(name) ? '(hidden)' : JSON.stringify(present[name] ?? ''));
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}=${shown(String(i.path[0]))}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  let redisUrl = e.REDIS_URL;
  if (e.REDIS_PASSWORD !== undefined) {
    const url = new URL(e.REDIS_URL);
    if (url.password !== '') throw new ConfigError('invalid configuration: REDIS_PASSWORD=(hidden): REDIS_URL has a password already; give it in one of them');
    url.password = encodeURIComponent(e.REDIS_PASSWORD);
    redisUrl = url.toString();
  }
  return Object.freeze({
    port: e.PORT,
    sitePort: e.SITE_PORT,
    serveSites: e.SERVE_SITES,
    host: e.HOST,
    apiTokenHashes: Object.freeze(
      (e.API_TOKENS ?? '')
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean)
        // A plain token is hashed at once, so the running config never holds it.
        .map((t) => (t.startsWith('sha256:') ? t.slice(7) : createHash('sha256').update(t).digest('hex'))),
    ),
    allowAnonymous: e.ALLOW_ANONYMOUS,
    privateReads: e.PRIVATE_READS,
    redisUrl,
    secrets: secretsOf(e.SECRETS_KEY, e.SECRETS_KEY_PREVIOUS),
    s3: Object.freeze({
      endpoint: e.S3_ENDPOINT,
      forcePathStyle: e.S3_FORCE_PATH_STYLE === undefined ? e.S3_ENDPOINT !== undefined : e.S3_FORCE_PATH_STYLE === '1',
      region: e.S3_REGION,
      bucket: e.S3_BUCKET,
      accessKeyId: e.AWS_ACCESS_KEY_ID,
      secretAccessKey: e.AWS_SECRET_ACCESS_KEY,
      timeoutMs: e.S3_TIMEOUT_SECONDS * 1000,
    }),
    baseDomain: e.BASE_DOMAIN.toLowerCase(),
    // Sites are where the process that serves them listens: the site server, or the API with SERVE_SITES.
    siteUrlTemplate: e.SITE_URL_TEMPLATE ?? `http://{id}.${e.BASE_DOMAIN.toLowerCase()}:${e.SERVE_SITES ? e.PORT : e.SITE_PORT}/`,
    deployWorkers: e.DEPLOY_WORKERS,
    buildConcurrency: e.BUILD_CONCURRENCY,
    buildTimeoutMs: e.BUILD_TIMEOUT_SECONDS * 1000,
    cloneTimeoutMs: e.CLONE_TIMEOUT_SECONDS * 1000,
    maxRepoBytes: e.MAX_REPO_MB * 1024 * 1024,
    maxRepoFiles: e.MAX_REPO_FILES,
    maxLogBytes: e.MAX_LOG_BYTES,
    maxAttempts: e.MAX_ATTEMPTS,
    uploadConcurrency: e.UPLOAD_CONCURRENCY,
    shutdownGraceMs: e.SHUTDOWN_GRACE_SECONDS * 1000,
    heartbeatTtlSeconds: e.HEARTBEAT_TTL_SECONDS,
    reaperIntervalMs: e.REAPER_INTERVAL_SECONDS * 1000,
    retryBaseMs: e.RETRY_BASE_MS,
    allowPrivateNetworks: e.ALLOW_PRIVATE_NETWORKS,
    notify: { retryBaseMs: e.NOTIFY_RETRY_BASE_MS, maxAttempts: e.NOTIFY_MAX_ATTEMPTS, githubApiUrl: e.GITHUB_API_URL.replace(/\/+$/, ''), gitlabApiUrl: e.GITLAB_API_URL.replace(/\/+$/, '') },
    trustProxy: e.TRUST_PROXY === undefined ? false : /^\d+$/.test(e.TRUST_PROXY) ? Number(e.TRUST_PROXY) : e.TRUST_PROXY.split(',').map((a) => a.trim()).filter(Boolean).join(','),
    gitAllowedHosts: hostList(e.GIT_ALLOWED_HOSTS),
    sshKnownHosts: e.SSH_KNOWN_HOSTS,
    siteCacheBytes: e.SITE_CACHE_MB * 1024 * 1024,
    siteCacheFileBytes: e.SITE_CACHE_FILE_KB * 1024,
    apiHosts: hostList(e.API_HOSTS) ?? [],
    retention: Object.freeze({
      previewDays: e.RETAIN_PREVIEW_DAYS,
      productionDays: e.RETAIN_PRODUCTION_DAYS,
      failedDays: e.RETAIN_FAILED_DAYS,
      canceledDays: e.RETAIN_CANCELED_DAYS,
    }),
    skew: Object.freeze({ ms: e.SKEW_PROTECTION_HOURS * 3_600_000, builds: e.SKEW_PROTECTION_BUILDS }),
    janitorIntervalMs: e.JANITOR_INTERVAL_SECONDS * 1000,
    deployRateLimit: e.DEPLOY_RATE_LIMIT,
    authFailureLimit: e.AUTH_FAILURE_LIMIT,
    logStreamsPerClient: e.LOG_STREAMS_PER_CLIENT,
    logStreamsMax: e.LOG_STREAMS_MAX,
    logStreamMs: e.LOG_STREAM_SECONDS * 1000,
    maxConcurrentClones: e.MAX_CONCURRENT_CLONES,
    maxWaitingClones: e.MAX_WAITING_CLONES,
    buildSandbox: e.BUILD_SANDBOX === 'on',
    ...buildMemory(e.BUILD_MEMORY_MB, e.BUILD_MEMORY_MAX_MB, e.BUILD_CONCURRENCY),
    buildMaxProcs: e.BUILD_MAX_PROCS,
    buildMaxFileBytes: e.BUILD_MAX_FILE_MB * 1024 * 1024,
    // ext4 holds at most one file per 4 KB block (and the inode tables must fit beside them).
    buildDisk: Object.freeze({ bytes: e.BUILD_DISK_MB * 1024 * 1024, inodes: Math.min(e.BUILD_DISK_INODES, e.BUILD_DISK_MB * 256) }),
    maxOutputBytes: e.MAX_OUTPUT_MB * 1024 * 1024,
    maxOutputFiles: e.MAX_OUTPUT_FILES,
    buildUids: uidRange(e.BUILD_UIDS),
    buildEgressAllow: hostList(e.BUILD_EGRESS_ALLOW),
    buildEgressPrivateHosts: hostList(e.BUILD_EGRESS_PRIVATE_HOSTS),
    workDir: e.WORK_DIR,
    toolsDir: e.TOOLS_DIR,
    npmRegistry: e.NPM_REGISTRY,
    buildCache: e.BUILD_CACHE === 'on',
    cacheDir: e.CACHE_DIR,
    buildCacheBytes: e.BUILD_CACHE_MB * 1024 * 1024,
    buildCacheArchiveBytes: e.BUILD_CACHE_ARCHIVE_MB * 1024 * 1024,
    logLevel: e.LOG_LEVEL,
  });
}

const MB = 1024 * 1024;
/** What Netlify and Vercel give a build. */
const DEFAULT_BUILD_MEMORY_MB = 8192;
/** Kept for the worker itself, its uploads and the page cache. */
const WORKER_RESERVE_MB = 1024;

/**
 * A build's memory: the operator's settings, else 8 GB bounded by the machine's share per slot (its
 * memory, or its container's limit, less the worker's own, over BUILD_CONCURRENCY).
 */
function buildMemory(defaultMb: number | undefined, maxMb: number | undefined, slots: number): { buildMemoryBytes: number; buildMemoryMaxBytes: number } {
  const limit = process.constrainedMemory?.() ?? 0;
  const machineMb = Math.floor((limit > 0 && limit < os.totalmem() ? limit : os.totalmem()) / MB);
  const shareMb = Math.max(512, Math.floor((machineMb - WORKER_RESERVE_MB) / slots));
  if (defaultMb !== undefined && maxMb !== undefined && defaultMb > maxMb) {
    throw new ConfigError(`invalid configuration: BUILD_MEMORY_MB=${defaultMb}: more than BUILD_MEMORY_MAX_MB (${maxMb})`);
  }
  const chosen = defaultMb ?? Math.min(DEFAULT_BUILD_MEMORY_MB, maxMb ?? shareMb);
  return { buildMemoryBytes: chosen * MB, buildMemoryMaxBytes: Math.max(chosen, maxMb ?? shareMb) * MB };
}

function uidRange(value: string): { first: number; count: number } {
  const [first, last] = value.split('-').map(Number) as [number, number];
  return Object.freeze({ first, count: last - first + 1 });
}

function hostList(value: string | undefined): readonly string[] | undefined {
  return value ? Object.freeze(value.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean)) : undefined;
}

export function siteUrl(config: Pick<Config, 'siteUrlTemplate'>, id: string): string {
  return config.siteUrlTemplate.replaceAll('{id}', id);
}

/** For a service's main: the config, or one clear line on stderr and exit code 1. */
export function loadConfigOrExit(service: string): Config {
  try {
    return loadConfig();
  } catch (err) {
    console.error(`${service}: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}

function secretsOf(current: string | undefined, previous: string | undefined): Secrets {
  if (previous && !current) throw new ConfigError('invalid configuration: SECRETS_KEY_PREVIOUS=(hidden): is only read during a rotation, beside a new SECRETS_KEY');
  return new Secrets(current ? parseSecretsKey(current, 'SECRETS_KEY') : null, previous ? parseSecretsKey(previous, 'SECRETS_KEY_PREVIOUS') : null);
}

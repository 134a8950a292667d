import os from 'node:os';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, siteUrl } from '../src';

/** A KEY=value file as compose and kustomize read it: comments and blank lines skipped. */
function envFile(file: string): Record<string, string> {
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
  return Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}
const EXAMPLES = path.join(import.meta.dirname, '../../deploy/examples');

describe('config', () => {
  it('gives the documented defaults for an empty environment', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 3000, redisUrl: 'redis://127.0.0.1:6379', baseDomain: 'localhost', deployWorkers: 1, buildConcurrency: 1, allowPrivateNetworks: false });
    expect(c.s3).toMatchObject({ bucket: 'slipway', region: 'us-east-1', endpoint: undefined });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('names every bad variable in one line', () => {
    expect(() => loadConfig({ PORT: 'abc', REDIS_URL: 'http://x', BUILD_TIMEOUT_SECONDS: '0' })).toThrowError(ConfigError);
    try {
      loadConfig({ PORT: 'abc', REDIS_URL: 'http://x' });
    } catch (err) {
      const message = (err as Error).message;
      expect(message).toContain('PORT="abc"');
      expect(message).toContain('REDIS_URL=(hidden)'); // it may hold a password
      expect(message).not.toContain('\n');
    }
  });

  it('reads ALLOW_PRIVATE_NETWORKS=1 as on and treats empty variables as unset', () => {
    expect(loadConfig({ ALLOW_PRIVATE_NETWORKS: '1' }).allowPrivateNetworks).toBe(true);
    expect(loadConfig({ ALLOW_PRIVATE_NETWORKS: '', PORT: '' }).port).toBe(3000);
    expect(() => loadConfig({ ALLOW_PRIVATE_NETWORKS: 'maybe' })).toThrowError(/ALLOW_PRIVATE_NETWORKS/);
  });

  it('builds site URLs from BASE_DOMAIN and the site server\'s port (the API\'s with SERVE_SITES), or from SITE_URL_TEMPLATE', () => {
    expect(siteUrl(loadConfig({ PORT: '8080', BASE_DOMAIN: 'sites.test' }), 'abc')).toBe('http://abc.sites.test:3001/');
    expect(siteUrl(loadConfig({ PORT: '8080', SITE_PORT: '8081', BASE_DOMAIN: 'sites.test' }), 'abc')).toBe('http://abc.sites.test:8081/');
    expect(siteUrl(loadConfig({ PORT: '8080', SERVE_SITES: '1', BASE_DOMAIN: 'sites.test' }), 'abc')).toBe('http://abc.sites.test:8080/');
    expect(siteUrl(loadConfig({ SITE_URL_TEMPLATE: 'https://{id}.example.com/' }), 'abc')).toBe('https://abc.example.com/');
  });

  it('reads the sandbox and its caps, and refuses values that would unseal or break it', () => {
    const c = loadConfig({ BUILD_MEMORY_MB: '512', BUILD_EGRESS_ALLOW: 'example.org, GitHub.com' });
    expect(c).toMatchObject({ buildSandbox: true, buildMemoryBytes: 512 * 1024 * 1024, buildMaxProcs: 512, maxOutputFiles: 20_000 });
    expect(c.buildEgressAllow).toEqual(['example.org', 'github.com']);
    expect(loadConfig({ BUILD_SANDBOX: 'off' }).buildSandbox).toBe(false);
    expect(() => loadConfig({ BUILD_SANDBOX: 'no' })).toThrowError(/BUILD_SANDBOX="no": must be on or off/);
    expect(() => loadConfig({ BUILD_MEMORY_MB: '16' })).toThrowError(/BUILD_MEMORY_MB="16": must be at least 64/);
    expect(() => loadConfig({ BUILD_MEMORY_MB: '4096', BUILD_MEMORY_MAX_MB: '2048' })).toThrowError('BUILD_MEMORY_MB=4096: more than BUILD_MEMORY_MAX_MB (2048)');
    expect(() => loadConfig({ BUILD_EGRESS_ALLOW: 'a.com;rm -rf' })).toThrowError(/BUILD_EGRESS_ALLOW/);
  });

  it('gives a build 8 GB by default, bounded by the machine\'s memory per slot', () => {
    const MB = 1024 * 1024;
    const share = (slots: number) => Math.max(512, Math.floor((Math.floor(os.totalmem() / MB) - 1024) / slots)) * MB;
    const one = loadConfig({});
    expect(one.buildMemoryBytes).toBe(Math.min(8192 * MB, share(1)));
    expect(one.buildMemoryMaxBytes).toBe(Math.max(one.buildMemoryBytes, share(1)));
    expect(loadConfig({ BUILD_CONCURRENCY: '64' }).buildMemoryBytes).toBe(Math.min(8192 * MB, share(64)));
    expect(loadConfig({ BUILD_MEMORY_MAX_MB: '4096' })).toMatchObject({ buildMemoryBytes: 4096 * MB, buildMemoryMaxBytes: 4096 * MB });
  });

  it('reads the build uid range, and refuses one that is inverted, too small, or reaches system accounts', () => {
    expect(loadConfig({}).buildUids).toEqual({ first: 2_000_000, count: 1_048_576 });
    expect(loadConfig({ BUILD_UIDS: '40000-65000' }).buildUids).toEqual({ first: 40_000, count: 25_001 });
    for (const bad of ['0-65535', '50000-40000', '40000-40010', '40000', 'a-b']) {
      expect(() => loadConfig({ BUILD_UIDS: bad })).toThrowError(/BUILD_UIDS/);
    }
  });

  it('accepts each documented storage and Redis example (AWS S3, MinIO, R2; rediss:// with a password)', () => {
    const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.env'));
    expect(files.sort()).toEqual(['aws-s3.env', 'minio.env', 'r2.env']);
    const aws = loadConfig(envFile(path.join(EXAMPLES, 'aws-s3.env')));
    expect(aws.s3).toMatchObject({ endpoint: undefined, forcePathStyle: false, region: 'eu-west-1', bucket: 'slipway-sites' });
    expect(aws.redisUrl).toMatch(/^rediss:\/\/:/);
    const minio = loadConfig(envFile(path.join(EXAMPLES, 'minio.env')));
    expect(minio.s3).toMatchObject({ endpoint: 'https://minio.internal.example.com:9000', forcePathStyle: true });
    const r2 = loadConfig(envFile(path.join(EXAMPLES, 'r2.env')));
    expect(r2.s3).toMatchObject({ region: 'auto', forcePathStyle: true });
    expect(r2.redisUrl).toMatch(/^rediss:\/\/default:/);
    expect(loadConfig({ S3_ENDPOINT: 'https://s3.example.com', S3_FORCE_PATH_STYLE: '0' }).s3.forcePathStyle).toBe(false);
    // The password apart from the URL (Kubernetes: one Secret key for the services and KEDA).
    expect(loadConfig({ REDIS_URL: 'rediss://redis.example.com:6380', REDIS_PASSWORD: 'p@ss/word' }).redisUrl).toBe('rediss://:p%40ss%2Fword@redis.example.com:6380');
    expect(() => loadConfig({ REDIS_URL: 'redis://:a@redis:6379', REDIS_PASSWORD: 'b' })).toThrowError(/REDIS_PASSWORD=\(hidden\): REDIS_URL has a password already/);
  });

  it('refuses each invalid setting with the variable named and why', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ REDIS_URL: 'http://redis:6379' }, /REDIS_URL=\(hidden\)/],
      [{ S3_ENDPOINT: 'ftp://minio' }, /S3_ENDPOINT/],
      [{ S3_BUCKET: 'Not_A_Bucket' }, /S3_BUCKET="Not_A_Bucket".*valid S3 bucket name/],
      [{ S3_FORCE_PATH_STYLE: 'yes' }, /S3_FORCE_PATH_STYLE="yes".*0 or 1/],
      [{ PORT: '70000' }, /PORT="70000"/],
      [{ SHUTDOWN_GRACE_SECONDS: '-1' }, /SHUTDOWN_GRACE_SECONDS/],
      [{ BUILD_CONCURRENCY: '0' }, /BUILD_CONCURRENCY/],
      [{ RETAIN_PREVIEW_DAYS: 'soon' }, /RETAIN_PREVIEW_DAYS/],
      [{ SITE_CACHE_MB: '-5' }, /SITE_CACHE_MB/],
      [{ API_HOSTS: 'https://api.example.com/' }, /API_HOSTS.*comma-separated list of host names/],
      [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    ];
    for (const [env, message] of cases) expect(() => loadConfig(env), JSON.stringify(env)).toThrowError(message);
  });
});

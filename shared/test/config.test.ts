import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, siteUrl } from '../src';

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

  it('builds site URLs from BASE_DOMAIN and PORT, or from SITE_URL_TEMPLATE', () => {
    expect(siteUrl(loadConfig({ PORT: '8080', BASE_DOMAIN: 'sites.test' }), 'abc')).toBe('http://abc.sites.test:8080/');
    expect(siteUrl(loadConfig({ SITE_URL_TEMPLATE: 'https://{id}.example.com/' }), 'abc')).toBe('https://abc.example.com/');
  });

  it('reads the sandbox and its caps, and refuses values that would unseal or break it', () => {
    const c = loadConfig({ BUILD_MEMORY_MB: '512', BUILD_EGRESS_ALLOW: 'registry.npmjs.org, GitHub.com' });
    expect(c).toMatchObject({ buildSandbox: true, buildMemoryBytes: 512 * 1024 * 1024, buildMaxProcs: 512, maxOutputFiles: 20_000 });
    expect(c.buildEgressAllow).toEqual(['registry.npmjs.org', 'github.com']);
    expect(loadConfig({ BUILD_SANDBOX: 'off' }).buildSandbox).toBe(false);
    expect(() => loadConfig({ BUILD_SANDBOX: 'no' })).toThrowError(/BUILD_SANDBOX="no": must be on or off/);
    expect(() => loadConfig({ BUILD_MEMORY_MB: '16' })).toThrowError(/BUILD_MEMORY_MB="16": must be at least 64/);
    expect(() => loadConfig({ BUILD_EGRESS_ALLOW: 'a.com;rm -rf' })).toThrowError(/BUILD_EGRESS_ALLOW/);
  });

  it('reads the build uid range, and refuses one that is inverted, too small, or reaches system accounts', () => {
    expect(loadConfig({}).buildUids).toEqual({ first: 2_000_000, count: 1_048_576 });
    expect(loadConfig({ BUILD_UIDS: '40000-65000' }).buildUids).toEqual({ first: 40_000, count: 25_001 });
    for (const bad of ['0-65535', '50000-40000', '40000-40010', '40000', 'a-b']) {
      expect(() => loadConfig({ BUILD_UIDS: bad })).toThrowError(/BUILD_UIDS/);
    }
  });
});

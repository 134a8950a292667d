// The build cache's bookkeeping on a worker: whose cache a deployment may use, and BUILD_CACHE_MB
// counting archives and kept disks together, the least recently used going first.
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Storage } from '@slipway/shared';
import { BuildCache, cacheScope } from '../src/cache/cache';
import { KeptDisks } from '../src/cache/cache-trees';

describe('cache scopes', () => {
  const repo = { repoUrl: 'https://git.example/site.git', rootDir: undefined };
  it('keeps production, each branch and plain deployments apart; a preview may read production, not the reverse', () => {
    const production = cacheScope({ ...repo, project: 'shop', branch: 'main', production: '1' });
    const preview = cacheScope({ ...repo, project: 'shop', branch: 'evil', production: undefined });
    const other = cacheScope({ ...repo, project: 'shop', branch: 'docs', production: undefined });
    const plain = cacheScope({ ...repo, project: undefined, branch: 'main', production: undefined });
    expect(new Set([production.own, preview.own, other.own, plain.own]).size).toBe(4);
    expect(preview.fallback).toBe(production.own);
    expect(production.fallback).toBeNull();
    expect(plain.fallback).toBeNull();
    expect(cacheScope({ ...repo, rootDir: 'apps/web', project: 'shop', branch: 'main', production: '1' }).own).not.toBe(production.own);
  });
});

describe('BUILD_CACHE_MB', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'slipway-cache-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('counts kept disks by the blocks their images hold, with the archives, and evicts the least recently used of either', async () => {
    const kept = await KeptDisks.open(dir);
    const cache = new BuildCache(dir, 1024 * 1024, {} as Storage, kept);
    const scopes = ['a'.repeat(32), 'b'.repeat(32), 'c'.repeat(32)];
    const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000);
    // Oldest: an archive; then a kept disk; newest: another archive. 600 KB each, 1 MB allowed.
    await mkdir(path.join(dir, scopes[0]!));
    await writeFile(path.join(dir, scopes[0]!, 'build.tgz'), Buffer.alloc(600 * 1024, 1));
    await utimes(path.join(dir, scopes[0]!, 'build.tgz'), at(30), at(30));
    await mkdir(path.join(dir, 'trees', scopes[1]!));
    await writeFile(path.join(dir, 'trees', scopes[1]!, 'disk.img'), Buffer.alloc(600 * 1024, 1));
    await utimes(path.join(dir, 'trees', scopes[1]!), at(20), at(20));
    await mkdir(path.join(dir, scopes[2]!));
    await writeFile(path.join(dir, scopes[2]!, 'build.tgz'), Buffer.alloc(600 * 1024, 1));
    await cache.evict();
    expect(await readdir(path.join(dir, scopes[0]!))).toEqual([]);
    expect(await readdir(path.join(dir, 'trees'))).toEqual([]);
    expect(await readdir(path.join(dir, scopes[2]!))).toEqual(['build.tgz']);
  });
});

// The build cache: a redeploy of a real Vite + React app restores node_modules for its lockfile
// and skips the install; cache: false neither uses nor saves it; another repository never sees it;
// a changed lockfile still starts from the warm package cache.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageKeys } from '@slipway/shared';
import { viteReactApp } from './harness/fixtures';
import { withLockfile } from './harness/lockfiles';
import { stackTools, startStack, type Stack } from './harness/stack';

let stack: Stack;
let app: Record<string, string>;
beforeAll(async () => {
  stack = await startStack({ env: { BUILD_TIMEOUT_SECONDS: '180' } });
  app = await withLockfile('npm', stackTools(stack), viteReactApp('Cached'));
});
afterAll(async () => {
  await stack?.close();
});

async function logOf(id: string): Promise<string> {
  return ((await stack.get(`/deployments/${id}/logs`)).body.lines as string[]).join('\n');
}

async function build(id: string): Promise<string> {
  const record = await stack.waitFor(id, undefined, 240_000);
  const log = await logOf(id);
  expect(record.status, `${record.error}\n${log}`).toBe('deployed');
  return log;
}

describe('build cache', () => {
  let repoUrl: string;

  it('misses on the first build and saves node_modules with the package cache', async () => {
    repoUrl = await stack.repo('cached-app', app);
    const log = await build(await stack.deploy({ repoUrl }));
    expect(log).toContain('[slipway] cache: miss');
    expect(log).toContain('$ npm ci');
    expect(log).toMatch(/\[slipway\] cache: saved deps \(\d+\.\d MB\)/);
    const objects: string[] = [];
    for await (const { key } of stack.storage.list('cache/')) objects.push(key);
    expect(objects.some((k) => /^cache\/[0-9a-f]{32}\/deps-[0-9a-f]{32}\.tgz$/.test(k))).toBe(true);
  });

  it('hits on a redeploy: the node_modules kept on the worker is moved in, the install skipped, the site the same', async () => {
    const id = await stack.deploy({ repoUrl });
    const log = await build(id);
    expect(log).toContain('[slipway] cache: hit (this lockfile, manager and Node; node_modules kept on this worker): the install is skipped');
    expect(log).not.toContain('$ npm ci');
    expect(log).not.toContain('unpacking node_modules');
    expect(log).toContain('$ npm run build');
    expect((await stack.site(id, '/')).body.toString()).toContain('<title>Cached</title>');
  });

  it('hits from S3 on a worker that holds nothing of it (another replica), unpacking the archive', async () => {
    await rm(path.join(stack.config.workDir!, 'slipway-cache'), { recursive: true, force: true });
    const id = await stack.deploy({ repoUrl });
    const log = await build(id);
    expect(log).toContain('[slipway] cache: unpacking node_modules for this lockfile');
    expect(log).toContain('[slipway] cache: hit (this lockfile, manager and Node): the install is skipped');
    expect(log).not.toContain('$ npm ci');
    expect((await stack.site(id, '/')).body.toString()).toContain('<title>Cached</title>');
  });

  it('treats an archive that cannot be unpacked as a miss: removed, installed afresh, saved anew', async () => {
    await rm(path.join(stack.config.workDir!, 'slipway-cache'), { recursive: true, force: true });
    for await (const { key } of stack.storage.list('cache/')) if (key.endsWith('.tgz')) await stack.storage.putText(key, 'not a gzip archive');
    const log = await build(await stack.deploy({ repoUrl }));
    expect(log).toContain('[slipway] cache: node_modules for this lockfile could not be unpacked; removed, the build goes on without it');
    expect(log).toContain('$ npm ci');
    expect(log).toMatch(/\[slipway\] cache: saved deps/);
    await rm(path.join(stack.config.workDir!, 'slipway-cache'), { recursive: true, force: true });
    const again = await build(await stack.deploy({ repoUrl }));
    expect(again).toContain('[slipway] cache: hit (this lockfile, manager and Node): the install is skipped');
  });

  it('a build that fails after its install still saves the install, and the fixed commit skips it', async () => {
    // The same manifests and lockfile (the cache key), and an import of a file the commit forgot.
    const broken = { ...app, 'src/App.jsx': `import theme from './theme.js';\n${app['src/App.jsx']}` };
    const url = await stack.repo('fails-after-install', broken);
    const failed = await stack.waitFor(await stack.deploy({ repoUrl: url }), undefined, 240_000);
    expect(failed.status).toBe('failed');
    const log = await logOf(failed.id);
    expect(log).toContain('[slipway] cache: the build failed after its install; saving the install for the next build');
    expect(log).toMatch(/\[slipway\] cache: saved deps \(\d+\.\d MB\)/);
    expect(failed.error).toMatch(/Could not resolve "\.\/theme\.js"|Failed to resolve import "\.\/theme\.js"|theme\.js/);
    const fixed = await build(await stack.deploy({ repoUrl: await stack.repo('fails-after-install', app) }));
    expect(fixed).toContain('[slipway] cache: hit (this lockfile, manager and Node): the install is skipped');
  });

  it('with cache: false neither restores nor saves', async () => {
    const before = await cacheObjects();
    const log = await build(await stack.deploy({ repoUrl, cache: false }));
    expect(log).toContain('[slipway] cache: off (cache: false)');
    expect(log).toContain('$ npm ci');
    expect(log).not.toMatch(/cache: (hit|saved)/);
    expect(await cacheObjects()).toEqual(before);
  });

  it('is kept per repository: the same lockfile in another repository misses', async () => {
    const log = await build(await stack.deploy({ repoUrl: await stack.repo('other-app', app) }));
    expect(log).toContain('[slipway] cache: miss');
  });

  it('after a lockfile change, installs again from the warm package cache and saves the new one', async () => {
    const pkg = JSON.parse(app['package.json']!);
    pkg.dependencies['is-number'] = '7.0.0';
    const changed = await withLockfile('npm', stackTools(stack), { ...app, 'package.json': JSON.stringify(pkg, null, 2) });
    const url = await stack.repo('cached-app', changed); // a new commit of the same repository
    expect(url).toBe(repoUrl);
    const log = await build(await stack.deploy({ repoUrl }));
    expect(log).toContain('[slipway] cache: partial (an earlier lockfile): installing with a warm cache');
    expect(log).toContain('$ npm ci');
    expect(log).toMatch(/\[slipway\] cache: saved deps/);
  });
});

async function cacheObjects(): Promise<string[]> {
  const keys: string[] = [];
  for await (const { key } of stack.storage.list(`${storageKeys.cache('')}`)) keys.push(key);
  return keys.sort();
}

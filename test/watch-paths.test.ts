// Ignored builds for monorepos, end to end: an npm-workspaces repository whose app (apps/web) depends
// on one workspace package (packages/ui) and not on another (packages/other). A push that changes
// none of what the app's build reads (by default: apps/web, packages/ui, the root manifests) ends
// `skipped` without an upload or a build, says what it compared, and leaves the alias where it was; a
// push that changes packages/ui builds. Every fixture commit is a new one-commit history (like a
// force push, or a shallow clone's view of one), which the comparison does not need.
import { createHmac } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageKeys } from '@slipway/shared';
import { startStack, type Stack } from './harness/stack';
import { startForge, type Forge } from './harness/forge';
import { waitUntil } from './harness/worker-process';

let stack: Stack;
let forge: Forge;
const FORGE_TOKEN = 'ghp_watchPathsForgeToken0123456789';
let secret: string;
let repoUrl: string;
const ids: Record<string, string> = {};

/** The repository at one state: `changes` replaces files of the first state. */
function monorepo(changes: Record<string, string> = {}): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name: 'acme', private: true, workspaces: ['apps/*', 'packages/*'] }),
    'README.md': '# acme\n',
    'apps/web/package.json': JSON.stringify({ name: '@acme/web', private: true, scripts: { build: 'node build.js' }, dependencies: { '@acme/ui': '*' } }),
    'apps/web/build.js': "const fs = require('fs'); fs.mkdirSync('dist'); fs.writeFileSync('dist/index.html', '<h1>' + fs.readFileSync('../../packages/ui/label.txt', 'utf8').trim() + '</h1>');",
    'apps/docs/index.html': '<h1>docs</h1>',
    'packages/ui/package.json': JSON.stringify({ name: '@acme/ui', version: '1.0.0', main: 'index.js' }),
    'packages/ui/index.js': 'module.exports = {};',
    'packages/ui/label.txt': 'ui one',
    'packages/other/package.json': JSON.stringify({ name: '@acme/other', version: '1.0.0' }),
    'packages/other/index.js': 'module.exports = 1;',
    ...changes,
  };
}

async function publish(files: Record<string, string>): Promise<string> {
  repoUrl = await stack.repo('watched-mono', files);
  const { stdout } = await promisify(execFile)('git', ['ls-remote', repoUrl, 'refs/heads/main']);
  return stdout.split('\t')[0]!;
}

async function push(commit: string) {
  const body = JSON.stringify({ ref: 'refs/heads/main', before: '0'.repeat(40), after: commit, deleted: false, repository: { clone_url: repoUrl, full_name: 'acme/mono' }, pusher: { name: 'dev' }, delivery: crypto.randomUUID() });
  const res = await fetch(`${stack.api}/hooks/github?project=mono`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': crypto.randomUUID(), 'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}` },
    body,
  });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  [stack, forge] = await Promise.all([startStack(), startForge(FORGE_TOKEN)]);
  const first = await publish(monorepo());
  const created = await stack.post('/projects', { name: 'mono', repoUrl, rootDir: 'apps/web', forge: { apiUrl: forge.githubUrl, token: FORGE_TOKEN } });
  expect(created.status).toBe(201);
  secret = created.body.hookSecret;
  const pushed = await push(first);
  expect(pushed.status).toBe(202);
  ids.first = pushed.body.id;
  expect((await stack.waitFor(ids.first!, undefined, 240_000)).status).toBe('deployed');
}, 300_000);
afterAll(async () => {
  await stack?.close();
  await forge?.close();
});

const production = async () => (await stack.get('/projects/mono')).body.production?.id as string | undefined;
const productionPage = async () => (await stack.site('mono', '/')).body.toString();

describe('watchPaths', () => {
  it('records what the build reads: the app, the workspace package it depends on, the root manifest', async () => {
    const record = await stack.queue.get(ids.first!);
    expect(record!.watched!.paths).toEqual(['apps/web', 'package.json', 'packages/ui']);
    expect(Object.values(record!.watched!.ids).every((v) => /^[0-9a-f]{40}$/.test(v!))).toBe(true);
    expect(await productionPage()).toBe('<h1>ui one</h1>');
  });

  it('skips a push that changes only other apps, other packages and the README, and keeps the alias', async () => {
    const commit = await publish(monorepo({ 'README.md': '# acme, again\n', 'apps/docs/index.html': '<h1>docs two</h1>', 'packages/other/index.js': 'module.exports = 2;' }));
    const pushed = await push(commit);
    expect(pushed.status).toBe(202);
    expect(pushed.body).toMatchObject({ status: 'skipped', commit, skip: { serving: ids.first, compared: ['apps/web', 'package.json', 'packages/ui'] } });
    expect(pushed.body.skip.message).toMatch(/none of the watched paths \(apps\/web, package\.json, packages\/ui\) changed since commit [0-9a-f]{12}, which deployment \w+ serves/);
    const record = (await stack.get(`/deployments/${pushed.body.id}`)).body;
    expect(record).toMatchObject({ status: 'skipped', commit, skip: { serving: ids.first } });
    expect(record.finishedAt).toBeDefined();
    expect(record.sourceFiles).toBeUndefined();
    // Nothing uploaded, nothing queued; the history lists it; production and its page are as they were.
    const source = [];
    for await (const object of stack.storage.list(`${storageKeys.source(pushed.body.id)}/`)) source.push(object.key);
    expect(source).toEqual([]);
    expect(await stack.redis.lRange('build-queue', 0, -1)).toEqual([]);
    expect((await stack.get('/projects/mono/deployments')).body.items.map((d: { id: string }) => d.id)).toContain(pushed.body.id);
    expect(await production()).toBe(ids.first);
    expect(await productionPage()).toBe('<h1>ui one</h1>');
    // The commit's status says so, and links the site that still serves.
    await waitUntil('the skipped commit\'s status', async () => forge.statuses.get(commit)?.find((s) => s.state === 'success'), 30_000);
    expect(forge.statuses.get(commit)!.at(-1)).toMatchObject({ state: 'success', context: 'slipway/mono', target_url: `http://${ids.first}.${stack.config.baseDomain}:${stack.config.port}/` });
    expect(forge.statuses.get(commit)!.at(-1)!.description).toMatch(/^Skipped: none of the watched paths changed; \w+ still serves$/);
    // It cannot be redeployed: it has no source of its own.
    expect((await stack.post(`/deployments/${pushed.body.id}/redeploy`)).status).toBe(409);
  });

  it('builds a push that changes a workspace package the app depends on', async () => {
    const commit = await publish(monorepo({ 'packages/ui/label.txt': 'ui two' }));
    const pushed = await push(commit);
    expect(pushed.body.status).toBe('queued');
    expect((await stack.waitFor(pushed.body.id, undefined, 240_000)).status).toBe('deployed');
    ids.second = pushed.body.id;
    expect(await production()).toBe(ids.second);
    expect(await productionPage()).toBe('<h1>ui two</h1>');
  });

  it('builds again when the settings changed, and a manual deployment always builds', async () => {
    const manual = await stack.post('/projects/mono/deployments', {});
    expect(manual.body.status).toBe('queued');
    expect((await stack.post(`/deployments/${manual.body.id}/cancel`)).status).toBe(202);
    // The same watched files, another build setting: not the same build.
    expect((await stack.request('PATCH', '/projects/mono', { buildMemoryMb: 512 })).status).toBe(200);
    const commit = await publish(monorepo({ 'packages/ui/label.txt': 'ui two', 'README.md': 'changed only here' }));
    const pushed = await push(commit);
    expect(pushed.body.status).toBe('queued');
    await stack.post(`/deployments/${pushed.body.id}/cancel`);
    await stack.waitFor(pushed.body.id, ['canceled', 'deployed', 'failed']);
    expect((await stack.request('PATCH', '/projects/mono', { buildMemoryMb: null })).status).toBe(200);
  });

  it('watches the paths the project names instead', async () => {
    expect((await stack.request('PATCH', '/projects/mono', { watchPaths: ['apps/web/**', './packages/ui/label.txt'] })).body.watchPaths).toEqual(['apps/web', 'packages/ui/label.txt']);
    // The deployment serving was built watching other paths: this push builds, and records the new ones.
    const same = await publish(monorepo({ 'packages/ui/label.txt': 'ui two', 'packages/ui/index.js': 'module.exports = { two: true };' }));
    const first = await push(same);
    expect(first.body.status).toBe('queued');
    expect((await stack.waitFor(first.body.id, undefined, 240_000)).status).toBe('deployed');
    expect((await stack.queue.get(first.body.id))!.watched!.paths).toEqual(['apps/web', 'packages/ui/label.txt']);
    // packages/ui/index.js is no longer watched: a change there alone is skipped.
    const next = await push(await publish(monorepo({ 'packages/ui/label.txt': 'ui two', 'packages/ui/index.js': 'module.exports = { three: true };' })));
    expect(next.body).toMatchObject({ status: 'skipped', skip: { serving: first.body.id, compared: ['apps/web', 'packages/ui/label.txt'] } });
  });

  it('refuses bad watchPaths with nothing stored', async () => {
    const before = (await stack.get('/projects/mono')).body;
    for (const [watchPaths, message] of [
      [['../outside'], /without \.\. or empty parts/],
      [['/etc'], /relative paths/],
      [['apps/*/src'], /no globs/],
      [['apps/web', 'a\nb'], /control characters/],
      [[], /at least one path/],
      [Array.from({ length: 51 }, (_, i) => `p${i}`), /at most 50/],
      ['apps/web', /expected array/i],
    ] as const) {
      const res = await stack.request('PATCH', '/projects/mono', { watchPaths });
      expect(res.status, JSON.stringify(watchPaths)).toBe(400);
      expect(res.body.error.message).toMatch(message);
    }
    expect((await stack.get('/projects/mono')).body).toEqual(before);
  });
});

// POST a repository URL, get a live site: the whole pipeline on real Redis, S3 and git.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BINARY, buildSite, failingBuild, manyFiles, staticSite, workspaceMonorepo } from './harness/fixtures';
import { EXEC_PREFIX } from './harness/git-server';
import { startStack, storedSource, type Stack } from './harness/stack';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

describe('deploying a repository', () => {
  it('publishes a static site with nested folders, byte for byte, with content types', async () => {
    const repoUrl = await stack.repo('static', staticSite());
    const posted = await stack.post('/deploy', { repoUrl });
    expect(posted.status).toBe(202);
    const { id } = posted.body;
    expect(posted.body).toEqual({ id, status: 'queued', statusUrl: `/deployments/${id}`, logsUrl: `/deployments/${id}/logs`, url: `http://${id}.localhost:${stack.config.port}/` });
    expect(id).toMatch(/^[a-z][a-z0-9]{9,}$/);

    const record = await stack.waitFor(id);
    expect(record).toMatchObject({ status: 'deployed', attempts: 1, sourceFiles: 8, outputFiles: 8, repoUrl });
    expect(record.commit).toMatch(/^[0-9a-f]{40}$/);

    const home = await stack.site(id, '/');
    expect(home.status).toBe(200);
    expect(home.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(home.body.toString()).toContain('<h1>Home</h1>');
    expect((await stack.site(id, '/about/')).body.toString()).toContain('About');
    const css = await stack.site(id, '/css/site.css');
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(css.body.toString()).toBe('body { color: #123456; }');
    const png = await stack.site(id, '/img/logo.png');
    expect(png.headers['content-type']).toBe('image/png');
    expect(Buffer.compare(png.body, BINARY)).toBe(0);
    expect((await stack.site(id, '/docs/guide/deep/page')).body.toString()).toBe('<p>deep page</p>'); // clean URL of page.html
    expect((await stack.site(id, '/js/app.js')).headers['content-type']).toBe('text/javascript; charset=utf-8');

    expect(await stack.get(`/status?id=${id}`)).toEqual({ status: 200, body: { status: 'deployed' } });
    const got = await stack.get(`/deployments/${id}`);
    expect(got.body).toMatchObject({ id, status: 'deployed', url: posted.body.url });
  });

  it('runs the build script and publishes build/, not the source', async () => {
    const id = await stack.deploy({ repoUrl: await stack.repo('build', buildSite('build', 'from build')) });
    const record = await stack.waitFor(id);
    expect(record.status, record.error).toBe('deployed');
    expect((await stack.site(id, '/')).body.toString()).toBe('<h1>from build</h1>');
    expect((await stack.site(id, '/assets/main.js')).status).toBe(200);
    expect((await stack.site(id, '/src/app.txt')).status).toBe(404);
    const log = await stack.get(`/deployments/${id}/logs`);
    expect(log.body.lines).toContain('$ npm run build');
    expect(log.body.lines).toContain('build wrote build/');
    // The log ends with where the time went, phase by phase.
    expect(log.body.lines.at(-1)).toMatch(/^\[slipway\] time: source download \d+\.\d s, detection \d+\.\d s, cache restore \d+\.\d s, install and build \d+\.\d s, output collect \d+\.\d s, publish \d+\.\d s, cache save \d+\.\d s$/);
  });

  it('streams the build log live as server-sent events, ending with the final status', async () => {
    const id = await stack.deploy({ repoUrl: await stack.repo('sse', buildSite('build', 'live log')) });
    const res = await fetch(`${stack.api}/deployments/${id}/logs`, { headers: { accept: 'text/event-stream' } });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text(); // the server ends the stream once the build is over
    const data = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
    expect(data).toContain('$ npm run build');
    expect(data).toContain('build wrote build/');
    expect(text).toMatch(/event: end\ndata: deployed\n/);
  });

  it('builds the app in rootDir and honours outputDir', async () => {
    const files = Object.fromEntries(Object.entries(buildSite('site-out', 'monorepo app')).map(([p, c]) => [`apps/web/${p}`, c]));
    const repoUrl = await stack.repo('monorepo', { ...files, 'README.md': 'root of the monorepo' });
    const id = await stack.deploy({ repoUrl, rootDir: 'apps/web', outputDir: 'site-out' });
    const record = await stack.waitFor(id);
    expect(record.status, record.error).toBe('deployed');
    expect(record.rootDir).toBe('apps/web');
    expect((await stack.site(id, '/')).body.toString()).toBe('<h1>monorepo app</h1>');
  });

  it('with rootDir, uploads the whole repository: an app may import a file from a sibling folder that is no workspace package', async () => {
    const repoUrl = await stack.repo('sibling-import', {
      'apps/docs/package.json': JSON.stringify({ name: 'docs', private: true, scripts: { build: 'node build.js' } }),
      'apps/docs/build.js': "const fs = require('fs'); const theme = require('../../shared/theme.js'); fs.mkdirSync('dist'); fs.writeFileSync('dist/index.html', '<h1 style=\"color:' + theme.color + '\">docs</h1>');",
      'shared/theme.js': "module.exports = { color: 'teal' };",
      'README.md': 'a repository whose docs app reads ../../shared',
    });
    const id = await stack.deploy({ repoUrl, rootDir: 'apps/docs' });
    const record = await stack.waitFor(id);
    expect(record.status, record.error).toBe('deployed');
    expect((await stack.site(id, '/')).body.toString()).toBe('<h1 style="color:teal">docs</h1>');
    expect(record.sourceFiles).toBe(4);
    // The narrow selection (sourceScope rootDir) leaves the sibling folder out, and the build fails on it.
    const narrow = await stack.waitFor(await stack.deploy({ repoUrl, rootDir: 'apps/docs', sourceScope: 'rootDir' }));
    expect(narrow.status).toBe('failed');
    expect(narrow.error).toMatch(/Cannot find module '..\/..\/shared\/theme.js'/);
  });

  it('with rootDir and sourceScope rootDir in a workspace monorepo, uploads only the app, the workspace packages it needs and the manifests', async () => {
    const repoUrl = await stack.repo('workspaces', workspaceMonorepo('Tokens brand'));
    const id = await stack.deploy({ repoUrl, rootDir: 'apps/web', sourceScope: 'rootDir' });
    const record = await stack.waitFor(id);
    expect(record.status, record.error).toBe('deployed');
    expect((await stack.site(id, '/')).body.toString()).toBe('<h1>Tokens brand</h1>');

    const keys = Object.keys(await storedSource(stack, id));
    expect(keys.sort()).toEqual(
      [
        '.nvmrc',
        'README.md',
        'package.json',
        'apps/web/package.json',
        'apps/web/build.js',
        'packages/ui/package.json',
        'packages/ui/index.js',
        'packages/tokens/package.json',
        'packages/tokens/index.js',
        // Other packages' manifests only, so the workspace (and its lockfile) still adds up.
        'packages/admin/package.json',
        'apps/docs/package.json',
      ].sort(),
    );
    expect(record.sourceFiles).toBe(keys.length);
  });

  it('gives the build its env and Slipway\'s variables, hides the values in the log and the API, and keeps them for a redeploy', async () => {
    const repoUrl = await stack.repo('env', {
      'package.json': JSON.stringify({ name: 'env-site', private: true, scripts: { build: 'node build.js' } }),
      'build.js': `
const fs = require('fs');
const e = process.env;
fs.mkdirSync('dist', { recursive: true });
fs.writeFileSync('dist/index.html', JSON.stringify({ greeting: e.VITE_GREETING, ci: e.CI, id: e.SLIPWAY_DEPLOYMENT_ID, commit: e.SLIPWAY_COMMIT, branch: e.SLIPWAY_BRANCH, url: e.SLIPWAY_URL, secretLength: (e.API_SECRET || '').length }));
console.log('using secret ' + e.API_SECRET + ' for the build');
`,
    });
    const secret = 'sk_live_0123456789abcdef';
    const id = await stack.deploy({ repoUrl, env: { VITE_GREETING: 'hello from env', API_SECRET: secret } });
    const record = await stack.waitFor(id);
    expect(record.status, record.error).toBe('deployed');
    const page = JSON.parse((await stack.site(id, '/')).body.toString());
    expect(page).toEqual({ greeting: 'hello from env', ci: '1', id, commit: record.commit, branch: 'main', url: record.url, secretLength: secret.length });

    const log = (await stack.get(`/deployments/${id}/logs`)).body.lines as string[];
    expect(log).toContain('using secret [env API_SECRET] for the build');
    expect(log).toContain('[slipway] env: API_SECRET, VITE_GREETING (values hidden in this log)');
    expect(JSON.stringify(log)).not.toContain(secret);
    const shown = await stack.get(`/deployments/${id}`);
    expect(shown.body.envNames).toEqual(['API_SECRET', 'VITE_GREETING']);
    expect(JSON.stringify(shown.body)).not.toContain(secret);

    expect((await stack.post(`/deployments/${id}/redeploy`, {})).status).toBe(202);
    const again = await stack.waitFor(id);
    expect(again.liveBuild).not.toBe(record.liveBuild);
    expect(JSON.parse((await stack.site(id, '/')).body.toString()).greeting).toBe('hello from env');
  });

  it('keeps execute bits through S3, so a repository script runs as the build command', async () => {
    const repoUrl = await stack.repo('script', { 'build.sh': `${EXEC_PREFIX}#!/bin/sh\nmkdir -p out && echo scripted > out/index.html\n` });
    const record = await stack.waitFor(await stack.deploy({ repoUrl, buildCommand: './build.sh' }));
    expect(record.status, record.error).toBe('deployed');
    expect((await stack.site(record.id, '/')).body.toString()).toBe('scripted\n');
  });

  it('publishes names with spaces, quotes and non-ASCII characters as they are, from a build', async () => {
    const names = ['my page.txt', "it's \"quoted\".txt", 'ünïcødé/名前.txt'];
    const repoUrl = await stack.repo('odd-names', {
      'build.js': `const fs = require('fs'); fs.mkdirSync('dist/ünïcødé', { recursive: true }); fs.writeFileSync('dist/index.html', 'home'); for (const n of ${JSON.stringify(names)}) fs.writeFileSync('dist/' + n, n);`,
    });
    const id = await stack.deploy({ repoUrl, buildCommand: 'node build.js' });
    expect((await stack.waitFor(id)).status).toBe('deployed');
    for (const name of names) {
      const res = await stack.site(id, `/${name.split('/').map(encodeURIComponent).join('/')}`);
      expect(res.status, name).toBe(200);
      expect(res.body.toString()).toBe(name);
    }
  });

  it('deploys the requested branch', async () => {
    const repoUrl = await stack.repo('branches', { 'index.html': 'main branch' }, { extraBranches: { preview: { 'index.html': 'preview branch' } } });
    const id = await stack.deploy({ repoUrl, branch: 'preview' });
    expect((await stack.waitFor(id)).status).toBe('deployed');
    expect((await stack.site(id, '/')).body.toString()).toBe('preview branch');
  });

  it('moves a repository of more than 1,000 files through paged listings', async () => {
    const id = await stack.deploy({ repoUrl: await stack.repo('many', manyFiles(1_200)) });
    const record = await stack.waitFor(id);
    expect(record).toMatchObject({ status: 'deployed', sourceFiles: 1_201, outputFiles: 1_201 });
    expect((await stack.site(id, '/files/11/f1199.txt')).body.toString()).toBe('file 1199\n');
  });

  it('reports a failing build with the line that explains it and its exit code, and the worker goes on to the next job', async () => {
    const broken = await stack.deploy({ repoUrl: await stack.repo('broken', failingBuild(3)) });
    const next = await stack.deploy({ repoUrl: await stack.repo('after-broken', staticSite()) });
    const failed = await stack.waitFor(broken);
    expect(failed.status).toBe('failed');
    // The explaining line, not npm's lifecycle lines that follow it.
    expect(failed.error).toBe('error: something is broken ("npm run build" exited with code 3)');
    expect(failed.attempts).toBe(1);
    expect((await stack.site(broken, '/')).status).toBe(404);
    expect((await stack.waitFor(next)).status).toBe('deployed');
    expect(await stack.queue.stats()).toMatchObject({ waiting: 0, processing: 0, delayed: 0, dead: 0 });
  });

  it('exposes Prometheus metrics: queue lengths, worker slots and deploy outcomes', async () => {
    await stack.post('/deploy', { repoUrl: 'file:///etc/passwd' });
    const res = await fetch(`${stack.api}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^slipway_queue_length\{list="waiting"\} 0$/m);
    expect(text).toMatch(/^slipway_queue_length\{list="dead"\} 0$/m);
    expect(text).toMatch(/^slipway_worker_slots 1$/m);
    expect(text).toMatch(/^slipway_deploy_requests_total\{outcome="accepted"\} [1-9]\d*$/m);
    expect(text).toMatch(/^slipway_deploy_requests_total\{outcome="INVALID_URL"\} 1$/m);
    expect(text).toMatch(/slipway_http_request_duration_seconds_count\{method="POST",route="\/deploy",status="202"\}/);
  });

  it('fails a build that writes no output folder, saying which folders it looked for', async () => {
    const repoUrl = await stack.repo('no-output', { 'package.json': JSON.stringify({ scripts: { build: 'node -e "1"' } }) });
    const record = await stack.waitFor(await stack.deploy({ repoUrl }));
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(/none of dist, build, out, public/);
  });

  it('publishes an output with no index.html when the request names its SPA fallback page, and serves it for routes', async () => {
    const repoUrl = await stack.repo('spa-fallback', { 'dist/200.html': '<div id="app">spa</div>', 'dist/assets/app.js': 'console.log(1)' });
    const id = await stack.deploy({ repoUrl, outputDir: 'dist', spaFallback: '200.html' });
    const record = await stack.waitFor(id);
    expect(record.status, record.error).toBe('deployed');
    for (const route of ['/', '/settings/profile']) expect((await stack.site(id, route)).body.toString()).toBe('<div id="app">spa</div>');
    expect((await stack.site(id, '/assets/app.js')).body.toString()).toBe('console.log(1)');
    expect((await stack.site(id, '/assets/missing.js')).status).toBe(404);
  });

  /** A repository whose build (run by node, dependencies declared but not installed) writes `files`. */
  const writesFiles = (deps: Record<string, string>, files: Record<string, string>) => ({
    'package.json': JSON.stringify({ name: 'app', private: true, scripts: { build: 'node build.js' }, devDependencies: deps }),
    'build.js': `const fs = require('fs'), path = require('path');
for (const [f, text] of Object.entries(${JSON.stringify(files)})) { fs.mkdirSync(path.dirname(f), { recursive: true }); fs.writeFileSync(f, text); }`,
  });
  const distObjects = async (id: string) => {
    let n = 0;
    for await (const _ of stack.storage.list(`dist/${id}/`)) n += 1;
    return n;
  };

  it.each([
    [
      'a SvelteKit app with the node adapter',
      { '@sveltejs/kit': '^2.0.0', '@sveltejs/adapter-node': '^5.0.0' },
      { 'build/handler.js': 'export const handler = 1;', 'build/env.js': 'export const env = process.env;', 'build/index.js': 'import "./handler.js";', 'build/client/_app/start.js': '1' },
      /SvelteKit app builds with @sveltejs\/adapter-node, which makes a server; use @sveltejs\/adapter-static/,
    ],
    ['a Next.js app without static export', { next: '^15.0.0' }, { '.next/BUILD_ID': 'x', '.next/server/app/index.html': '<p>ssr</p>', 'public/favicon.ico': 'x' }, /set `output: 'export'` in next.config/],
    ['a Nuxt server build', { nuxt: '^3.0.0' }, { '.output/server/index.mjs': 'x', '.output/public/favicon.ico': 'x', 'dist/_nuxt/a.js': 'x' }, /run `nuxt generate`/],
    ['an unknown server bundle', {}, { 'dist/server.js': 'require("http").createServer().listen(3000)', 'dist/assets/a.css': 'x' }, /holds server.js and no index.html: it looks like a server bundle/],
    ['an output with no index.html', {}, { 'dist/app.js': 'x', 'dist/style.css': 'x' }, /the output folder dist\/ has no index.html at its root \(it holds app.js, style.css\); set outputDir/],
    ['an spaFallback page the output does not have', {}, { 'dist/index.html': 'x' }, /the output folder dist\/ has no 200.html \(spaFallback\) at its root/, { spaFallback: '200.html' }],
  ] as [string, Record<string, string>, Record<string, string>, RegExp, Record<string, string>?][])('fails %s instead of marking it deployed, and publishes nothing', async (_name, deps, files, reason, extra) => {
    const repoUrl = await stack.repo('not-static', writesFiles(deps, files));
    const id = await stack.deploy({ repoUrl, installCommand: 'node -e 0', ...extra });
    const record = await stack.waitFor(id);
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(reason);
    expect(record.attempts).toBe(1); // the repository's doing: not retried
    expect(await distObjects(id)).toBe(0);
  });
});

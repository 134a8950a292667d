// Framework presets: a real Vite + React app and a real VitePress site with their dependencies from
// the npm registry, and the other frameworks' output layouts (their dependencies declared, their
// builds stood in for by a script that writes what each framework writes, their config files as
// projects have them), each published from the folder it uses, which the log names.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToolCache } from '../deploy-service/src/toolchain/tool-cache';
import { viteReactApp } from './harness/fixtures';
import { withLockfile } from './harness/lockfiles';
import { deployRepo, stackTools, startStack, type Stack } from './harness/stack';

let stack: Stack;
let tools: ToolCache;
beforeAll(async () => {
  stack = await startStack({ env: { BUILD_TIMEOUT_SECONDS: '180' } });
  tools = stackTools(stack);
});
afterAll(async () => {
  await stack?.close();
});

const deploy = (files: Record<string, string>, body: Record<string, unknown> = {}) => deployRepo(stack, 'preset', files, body);

describe('framework presets', () => {
  it('builds a real Vite + React app with default settings and publishes dist/', async () => {
    const { id, record, log } = await deploy(await withLockfile('npm', tools, viteReactApp('Counter')));
    expect(record.status, `${record.error}\n${log}`).toBe('deployed');
    expect(log).toContain("[slipway] framework: Vite (vite in package.json); builds with npm run build, publishes dist/ (Vite's default; no build.outDir in vite.config.js)");
    expect(log).toContain("[slipway] output: dist/ (Vite's default; no build.outDir in vite.config.js)");
    const html = (await stack.site(id, '/')).body.toString();
    expect(html).toContain('<title>Counter</title>');
    const script = /src="(\/assets\/index-[\w-]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const js = await stack.site(id, script!);
    expect(js.status).toBe(200);
    expect(js.body.toString()).toContain('Counter');
  });

  it('builds a real VitePress site with its docs:build script and publishes the outDir its .vitepress/config.mts names', async () => {
    const site = {
      'package.json': JSON.stringify({ name: 'guide', private: true, type: 'module', scripts: { 'docs:dev': 'vitepress dev docs', 'docs:build': 'vitepress build docs', 'docs:preview': 'vitepress preview docs' }, devDependencies: { vitepress: '^1.6.3' } }, null, 2),
      'docs/index.md': '# Harbour guide\n\nEverything about the harbour, built by VitePress.\n',
      'docs/getting-started.md': '# Getting started\n\nRead the [guide](/).\n',
      // '../site' is relative to the project root docs/: the app's site/, none of the usual folders.
      'docs/.vitepress/config.mts': "import { defineConfig } from 'vitepress'\n\nexport default defineConfig({\n  title: 'Harbour',\n  description: 'A VitePress site',\n  outDir: '../site',\n  themeConfig: { nav: [{ text: 'Start', link: '/getting-started' }] },\n})\n",
      '.gitignore': 'node_modules\nsite\ndocs/.vitepress/cache\n',
    };
    const { id, record, log } = await deploy(await withLockfile('npm', tools, site));
    expect(record.status, `${record.error}\n${log}`).toBe('deployed');
    expect(log).toContain('[slipway] framework: VitePress (vitepress in package.json); builds with npm run docs:build, publishes site/ (outDir in docs/.vitepress/config.mts)');
    expect(log).toContain('[slipway] output: site/ (outDir in docs/.vitepress/config.mts)');
    const html = (await stack.site(id, '/')).body.toString();
    expect(html).toContain('Everything about the harbour, built by VitePress.');
    expect((await stack.site(id, '/getting-started')).body.toString()).toContain('Getting started');
  }, 300_000);

  /** A repository declaring `deps` whose build script writes `files`, as the framework's build would. */
  const standIn = (deps: Record<string, string>, files: Record<string, string>, scripts: Record<string, string> = { build: 'node build.js' }, extra: Record<string, string> = {}) => ({
    'package.json': JSON.stringify({ name: 'app', private: true, scripts, dependencies: deps }),
    'build.js': `const fs = require('fs'), path = require('path');
for (const [f, text] of Object.entries(${JSON.stringify(files)})) { fs.mkdirSync(path.dirname(f), { recursive: true }); fs.writeFileSync(f, text); }`,
    ...extra,
  });

  it.each([
    ['Next.js (static export)', { next: '15.0.0', react: '19.0.0' }, { '.next/BUILD_ID': 'x', 'out/index.html': 'next export', 'out/_next/static/a.js': '1' }, {}, {}],
    ['Astro', { astro: '5.0.0' }, { 'dist/index.html': 'astro site' }, {}, {}],
    ['SvelteKit (static adapter)', { '@sveltejs/kit': '2.0.0', '@sveltejs/adapter-static': '3.0.0' }, { '.svelte-kit/output/client/x.js': '1', 'build/index.html': 'sveltekit static' }, {}, {}],
    ['Create React App', { 'react-scripts': '5.0.1' }, { 'build/index.html': 'cra build' }, {}, { 'public/index.html': '<div id="root"></div> (the template, not the site)' }],
    ['Angular', { '@angular/core': '19.0.0', '@angular/cli': '19.0.0' }, { 'dist/shop/browser/index.html': 'angular browser build', 'dist/shop/3rdpartylicenses.txt': 'x' }, {}, { 'angular.json': JSON.stringify({ projects: { shop: { architect: { build: { options: { outputPath: 'dist/shop' } } } } } }) }],
    ['Nuxt (generate)', { nuxt: '3.14.0' }, { '.output/public/index.html': 'nuxt generate', '.output/nitro.json': '{}' }, { build: 'node -e "process.exit(3)"', generate: 'node build.js' }, {}],
    ['Remix / React Router (SPA mode)', { '@react-router/dev': '7.0.0' }, { 'build/client/index.html': 'spa mode', 'build/client/assets/a.js': '1' }, {}, {}],
    ['Docusaurus', { '@docusaurus/core': '3.6.0' }, { 'build/index.html': 'docs' }, {}, {}],
  ])('%s: publishes the folder the framework writes', async (name, deps, files, scripts, extra) => {
    const repo = standIn(deps, files, Object.keys(scripts).length ? scripts : undefined, extra);
    const { id, record, log } = await deploy(repo, { installCommand: 'node -e 0' });
    expect(record.status, `${record.error}\n${log}`).toBe('deployed');
    expect(log).toContain(`[slipway] framework: ${name} (`);
    const index = Object.entries(files).find(([f]) => f.endsWith('/index.html'))!;
    expect((await stack.site(id, '/')).body.toString()).toBe(index[1]);
  });

  it('publishes the pages folder a SvelteKit app\'s adapter-static options name in svelte.config.js', async () => {
    const config = `import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

/** @type {import('@sveltejs/kit').Config} */
const config = {
  preprocess: vitePreprocess(),
  kit: {
    adapter: adapter({ pages: 'docs', assets: 'docs', fallback: undefined, precompress: false, strict: true }),
  },
};

export default config;
`;
    const deps = { '@sveltejs/kit': '2.8.0', '@sveltejs/adapter-static': '3.0.6', svelte: '5.2.0', vite: '5.4.11' };
    // build/ holds a stale copy: the folder the config names wins over SvelteKit's default.
    const repo = standIn(deps, { '.svelte-kit/output/client/x.js': '1', 'docs/index.html': 'pages in docs', 'docs/_app/a.js': '1' }, undefined, { 'svelte.config.js': config, 'build/index.html': 'stale' });
    const { id, record, log } = await deploy(repo, { installCommand: 'node -e 0' });
    expect(record.status, `${record.error}\n${log}`).toBe('deployed');
    expect(log).toContain('[slipway] framework: SvelteKit (static adapter) (@sveltejs/kit in package.json, ahead of Vite); builds with npm run build, publishes docs/ (adapter-static pages in svelte.config.js)');
    expect(log).toContain('[slipway] output: docs/ (adapter-static pages in svelte.config.js)');
    expect((await stack.site(id, '/')).body.toString()).toBe('pages in docs');
  });

  it('names the usual folder it took when no framework is detected', async () => {
    const repo = standIn({ 'left-pad': '1.3.0' }, { 'public/index.html': 'plain build' });
    const { id, record, log } = await deploy(repo, { installCommand: 'node -e 0' });
    expect(record.status, `${record.error}\n${log}`).toBe('deployed');
    expect(log).toContain('[slipway] framework: none detected; builds with npm run build, publishes the first usual output folder the build writes');
    expect(log).toContain('[slipway] output: public/ (the first of dist/, build/, out/, public/ the build wrote)');
    expect((await stack.site(id, '/')).body.toString()).toBe('plain build');
  });

  it('lets the request\'s own buildCommand and outputDir win over the preset', async () => {
    const repo = standIn({ vite: '6.0.0' }, { 'dist/index.html': 'vite dist' });
    const own = ['node', '-e', "require('fs').mkdirSync('site'); require('fs').writeFileSync('site/index.html', 'my own build')"];
    const { id, record, log } = await deploy(repo, { installCommand: 'node -e 0', buildCommand: own, outputDir: 'site' });
    expect(record.status, record.error).toBe('deployed');
    expect(log).toContain("[slipway] framework: Vite (vite in package.json); builds with the request's buildCommand, publishes site/ (outputDir)");
    expect(log).toContain('[slipway] output: site/ (outputDir)');
    expect(log).not.toContain('$ npm run build');
    expect((await stack.site(id, '/')).body.toString()).toBe('my own build');
  });
});

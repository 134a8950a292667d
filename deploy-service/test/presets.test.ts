// Framework detection: which preset an app gets (whatever the table's order), and the output folders
// read from each framework's own config without running it, with the default when a value is not plain.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Manager } from '../src/detect/package-manager';
import { planCommands } from '../src/detect/plan';
import { chooseFramework, describeOutput, detectPreset, outputCandidates } from '../src/detect/presets';
import { FRAMEWORKS } from '../src/detect/frameworks/index';
import { exportedObject, lookup, property, withoutComments } from '../src/detect/frameworks/static-config';
import type { PackageJson } from '../src/detect/package-json';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'slipway-preset-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const apps: string[] = [];
afterEach(async () => {
  for (const d of apps.splice(0)) await rm(d, { recursive: true, force: true });
});
/** An app folder holding `files` (package.json among them, as an object). */
async function app(files: Record<string, string | PackageJson>): Promise<{ dir: string; pkg: PackageJson }> {
  const root = await mkdtemp(path.join(tmpdir(), 'slipway-preset-app-'));
  apps.push(root);
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return { dir: root, pkg: files['package.json'] as PackageJson };
}
const detect = async (files: Record<string, string | PackageJson>) => {
  const a = await app(files);
  return detectPreset(a.dir, a.pkg);
};
const dirs = (preset: Awaited<ReturnType<typeof detectPreset>>) => preset?.outputs.map((o) => o.dir);

describe('framework detection', () => {
  it.each([
    [{ devDependencies: { vite: '^6' } }, 'Vite', ['dist']],
    [{ dependencies: { next: '15', react: '19' } }, 'Next.js (static export)', ['out']],
    [{ devDependencies: { '@docusaurus/core': '3', react: '18' } }, 'Docusaurus', ['build']],
    [{ dependencies: { astro: '5', react: '18', vite: '6' } }, 'Astro', ['dist']],
    [{ devDependencies: { '@sveltejs/kit': '2', vite: '6' } }, 'SvelteKit (static adapter)', ['build']],
    [{ devDependencies: { '@react-router/dev': '7', vite: '6' } }, 'Remix / React Router (SPA mode)', ['build/client']],
    [{ dependencies: { nuxt: '3' } }, 'Nuxt (generate)', ['.output/public', 'dist']],
    [{ dependencies: { gatsby: '5' } }, 'Gatsby', ['public']],
    [{ devDependencies: { '@11ty/eleventy': '3' } }, 'Eleventy', ['_site']],
    [{ dependencies: { 'react-scripts': '5' } }, 'Create React App', ['build']],
    [{ devDependencies: { vitepress: '1', vue: '3' } }, 'VitePress', ['.vitepress/dist']],
    [{ devDependencies: { vuepress: '1' } }, 'VuePress', ['.vuepress/dist']],
    [{ devDependencies: { '@vuepress/cli': '2', vite: '5' } }, 'VuePress', ['.vuepress/dist']],
    [{ dependencies: { 'solid-js': '1' }, devDependencies: { vite: '6' } }, 'Solid (Vite)', ['dist']],
    [{ dependencies: { '@solidjs/start': '1', 'solid-js': '1', vinxi: '0.4', vite: '6' } }, 'SolidStart', ['.output/public']],
    [{ dependencies: { preact: '10' }, devDependencies: { vite: '6' } }, 'Preact (Vite)', ['dist']],
    [{ dependencies: { preact: '10' }, devDependencies: { 'preact-cli': '3' } }, 'Preact CLI', ['build']],
    [{ dependencies: { preact: '10' }, devDependencies: { wmr: '3' } }, 'WMR', ['dist']],
    [{ dependencies: { hexo: '7' } }, 'Hexo', ['public']],
    [{ dependencies: { gridsome: '0.7' } }, 'Gridsome', ['dist']],
    [{ devDependencies: { parcel: '2' } }, 'Parcel', ['dist']],
    [{ devDependencies: { webpack: '5', 'webpack-cli': '5' } }, 'webpack', ['dist', 'build']],
    [{ devDependencies: { gulp: '5' }, scripts: { build: 'gulp' } }, 'gulp', ['dist', 'build', 'public']],
  ])('%j → %s', async (pkg, name, outputs) => {
    const preset = await detectPreset(dir, pkg);
    expect(preset).toMatchObject({ name });
    expect(dirs(preset)).toEqual(outputs);
  });

  it('reads Angular\'s output folder from angular.json, browser/ first', async () => {
    await writeFile(path.join(dir, 'angular.json'), JSON.stringify({ defaultProject: 'b', projects: { a: {}, b: { architect: { build: { options: { outputPath: { base: 'dist/b-app', browser: '' } } } } } } }));
    expect(dirs(await detectPreset(dir, { dependencies: { '@angular/core': '19', '@angular/cli': '19' } }))).toEqual(['dist/b-app']);
    await writeFile(path.join(dir, 'angular.json'), JSON.stringify({ projects: { shop: {} } }));
    expect(dirs(await detectPreset(dir, { dependencies: { '@angular/core': '19', '@angular/cli': '19' } }))).toEqual(['dist/shop/browser', 'dist/shop']);
    await rm(path.join(dir, 'angular.json'));
  });

  it('finds nothing for plain HTML, an unknown toolchain, or gulp with neither a build script nor a gulpfile', async () => {
    expect(await detectPreset(dir, null)).toBeNull();
    expect(await detectPreset(dir, { devDependencies: { typescript: '5' } })).toBeNull();
    expect(await detectPreset(dir, { devDependencies: { gulp: '5' } })).toBeNull();
    expect(await detect({ 'package.json': { devDependencies: { gulp: '5' } }, 'gulpfile.js': "exports.build = () => {};\n" })).toMatchObject({ name: 'gulp', bin: ['gulp', 'build'] });
  });

  it('runs the preset\'s script (Nuxt generate, VitePress docs:build) or its command (Eleventy, Hexo) when there is no build script', async () => {
    const npm: Manager = { name: 'npm', berry: false, version: null, lockfile: 'package-lock.json', root: dir, reason: '' };
    const none = { installCommand: undefined, buildCommand: undefined };
    const nuxtPkg = { dependencies: { nuxt: '3' }, scripts: { build: 'nuxt build', generate: 'nuxt generate' } };
    expect(planCommands(none, nuxtPkg, npm, await detectPreset(dir, nuxtPkg))).toEqual([['npm', 'ci'], ['npm', 'run', 'generate']]);
    const eleventy = await detectPreset(dir, { devDependencies: { '@11ty/eleventy': '3' } });
    expect(planCommands(none, { devDependencies: { '@11ty/eleventy': '3' } }, { ...npm, name: 'pnpm' }, eleventy)).toEqual([['pnpm', 'install', '--frozen-lockfile'], ['pnpm', 'exec', 'eleventy']]);
    const hexo = await detectPreset(dir, { dependencies: { hexo: '7' } });
    expect(planCommands(none, { dependencies: { hexo: '7' } }, npm, hexo)).toEqual([['npm', 'ci'], ['npm', 'exec', '--', 'hexo', 'generate']]);
    const vitepressPkg = { devDependencies: { vitepress: '1' }, scripts: { 'docs:build': 'vitepress build docs', 'docs:dev': 'vitepress dev docs' } };
    expect(planCommands(none, vitepressPkg, npm, await detectPreset(dir, vitepressPkg))).toEqual([['npm', 'ci'], ['npm', 'run', 'docs:build']]);
    // No script at all: VitePress's own command, for the root that holds the .vitepress config.
    const bare = await app({ 'package.json': { devDependencies: { vitepress: '1' } }, 'docs/.vitepress/config.mts': 'export default {}\n' });
    expect((await detectPreset(bare.dir, bare.pkg))?.bin).toEqual(['vitepress', 'build', 'docs']);
  });
});

describe('precedence', () => {
  const byPackages = (packages: string[]) => FRAMEWORKS.filter((f) => f.packages.some((p) => packages.includes(p)) && (f.with ?? []).every((p) => packages.includes(p)));
  it.each([
    [['vitepress', 'vite', 'vue'], 'vitepress'],
    [['astro', 'vite', 'solid-js', 'preact'], 'astro'],
    [['@sveltejs/kit', 'vite'], 'sveltekit'],
    [['next', 'react', 'webpack'], 'next'],
    [['nuxt', 'vue', 'vite', 'webpack'], 'nuxt'],
    [['@docusaurus/core', 'react', 'webpack'], 'docusaurus'],
    [['@solidjs/start', 'solid-js', 'vite'], 'solid-start'],
    [['solid-js', 'vite'], 'solid'],
    [['@react-router/dev', 'vite'], 'remix'],
    [['@11ty/eleventy', 'vite', 'gulp'], 'eleventy'],
    [['hexo', 'gulp'], 'hexo'],
    [['preact-cli', 'preact', 'webpack'], 'preact-cli'],
    [['vuepress', 'vite', 'webpack'], 'vuepress'],
    [['gatsby', 'webpack'], 'gatsby'],
  ])('%j → %s, in every order of the table', (packages, id) => {
    const matched = byPackages(packages);
    // Every rotation and the reverse of each: the choice depends on the rules, not on the list's order.
    for (let r = 0; r < matched.length; r++) {
      const rotated = [...matched.slice(r), ...matched.slice(0, r)];
      expect(chooseFramework(rotated)?.chosen.id).toBe(id);
      expect(chooseFramework(rotated.toReversed())?.chosen.id).toBe(id);
    }
  });

  it('detects the same preset from the table reversed as from the table', async () => {
    const pkg = { devDependencies: { vitepress: '1', vite: '6', vue: '3' } };
    expect((await detectPreset(dir, pkg, FRAMEWORKS.toReversed()))?.id).toBe('vitepress');
    expect((await detectPreset(dir, pkg))?.reason).toBe('vitepress in package.json, ahead of Vite');
  });

  it('excludes only frameworks that exist, and never in a circle', () => {
    const ids = new Set(FRAMEWORKS.map((f) => f.id));
    expect(ids.size).toBe(FRAMEWORKS.length);
    for (const f of FRAMEWORKS) {
      for (const e of f.excludes ?? []) {
        expect(ids.has(e), `${f.id} excludes ${e}`).toBe(true);
        expect(FRAMEWORKS.find((g) => g.id === e)!.excludes ?? [], `${f.id} and ${e} exclude each other`).not.toContain(f.id);
      }
    }
  });
});

describe('output folders from the framework\'s own config', () => {
  it('VitePress: the root from the build script, outDir from its .vitepress/config.mts (relative to the root)', async () => {
    const preset = await detect({
      'package.json': { devDependencies: { vitepress: '^1.5.0' }, scripts: { 'docs:build': 'vitepress build docs' } },
      'docs/.vitepress/config.mts': "import { defineConfig } from 'vitepress'\n\n// outDir: 'ignored'\nexport default defineConfig({\n  title: 'Guide',\n  outDir: '../public',\n  themeConfig: { nav: [{ text: 'Home', link: '/' }] },\n})\n",
    });
    expect(preset?.outputs).toEqual([
      { dir: 'public', why: 'outDir in docs/.vitepress/config.mts' },
      { dir: 'docs/.vitepress/dist', why: "VitePress's default" },
    ]);
    expect(dirs(await detect({ 'package.json': { devDependencies: { vitepress: '1' }, scripts: { build: 'vitepress build site --outDir out' } } }))?.[0]).toBe('out');
    expect(dirs(await detect({ 'package.json': { devDependencies: { vitepress: '1' }, scripts: { 'docs:build': 'vitepress build docs' } }, 'docs/.vitepress/config.js': 'export default { title: "x" }\n' }))).toEqual(['docs/.vitepress/dist']);
  });

  it('SvelteKit: adapter-static\'s pages from svelte.config.js', async () => {
    const preset = await detect({
      'package.json': { devDependencies: { '@sveltejs/kit': '^2.0.0', '@sveltejs/adapter-static': '^3.0.0', vite: '^5' } },
      'svelte.config.js': "import adapter from '@sveltejs/adapter-static';\n\n/** @type {import('@sveltejs/kit').Config} */\nconst config = {\n  kit: {\n    adapter: adapter({ pages: 'docs', assets: 'docs', fallback: undefined }),\n    paths: { base: '/app' },\n  },\n};\n\nexport default config;\n",
    });
    expect(preset?.outputs[0]).toEqual({ dir: 'docs', why: 'adapter-static pages in svelte.config.js' });
    expect(dirs(preset)).toEqual(['docs', 'build']);
    const noOptions = await detect({ 'package.json': { devDependencies: { '@sveltejs/kit': '2' } }, 'svelte.config.js': "import adapter from '@sveltejs/adapter-static';\nexport default { kit: { adapter: adapter() } };\n" });
    expect(dirs(noOptions)).toEqual(['build']);
  });

  it('Next.js: output: \'export\' and distDir from next.config.mjs; without output: \'export\' it says it is a server build', async () => {
    const exported = await detect({ 'package.json': { dependencies: { next: '15', react: '19' } }, 'next.config.mjs': "/** @type {import('next').NextConfig} */\nconst nextConfig = {\n  output: 'export',\n  distDir: 'dist',\n  images: { unoptimized: true },\n};\n\nexport default nextConfig;\n" });
    expect(exported?.outputs[0]).toEqual({ dir: 'dist', why: "output: 'export' and distDir in next.config.mjs" });
    const server = await detect({ 'package.json': { dependencies: { next: '15' } }, 'next.config.js': 'module.exports = { reactStrictMode: true };\n' });
    expect(server?.outputs).toEqual([{ dir: 'out', why: "Next.js's default; next.config.js sets no output: 'export', so next build makes a server unless the script exports" }]);
  });

  it('Vite: build.outDir relative to root from vite.config.ts, or --outDir in the script', async () => {
    const preset = await detect({ 'package.json': { devDependencies: { vite: '6' }, scripts: { build: 'tsc && vite build' } }, 'vite.config.ts': "import { defineConfig } from 'vite';\n\nexport default defineConfig({\n  plugins: [],\n  build: { outDir: 'public/build', sourcemap: true },\n});\n" });
    expect(preset?.outputs[0]).toEqual({ dir: 'public/build', why: 'build.outDir in vite.config.ts' });
    expect(dirs(await detect({ 'package.json': { devDependencies: { vite: '6' } }, 'vite.config.js': "export default { root: 'site/', publicDir: '../public', build: { outDir: '../build' } }\n" }))).toEqual(['build', 'site/dist']);
    expect(dirs(await detect({ 'package.json': { devDependencies: { vite: '6' }, scripts: { build: 'vite build --outDir www' } } }))).toEqual(['www', 'dist']);
  });

  it('Eleventy: dir.output from the object its config returns, setOutputDirectory, or --output', async () => {
    const returned = await detect({ 'package.json': { devDependencies: { '@11ty/eleventy': '2' } }, '.eleventy.js': 'module.exports = function (eleventyConfig) {\n  eleventyConfig.addPassthroughCopy("css");\n  return { dir: { input: "src", output: "public" } };\n};\n' });
    expect(returned?.outputs[0]).toEqual({ dir: 'public', why: 'dir.output in .eleventy.js' });
    expect(dirs(await detect({ 'package.json': { devDependencies: { '@11ty/eleventy': '3' } }, 'eleventy.config.mjs': 'export default function (c) { c.setOutputDirectory("dist"); }\n' }))?.[0]).toBe('dist');
    expect(dirs(await detect({ 'package.json': { devDependencies: { '@11ty/eleventy': '3' }, scripts: { build: 'npx @11ty/eleventy --output=site' } } }))?.[0]).toBe('site');
  });

  it('Astro outDir, Nuxt nitro.output.publicDir, Docusaurus --out-dir, Hexo public_dir, VuePress dest', async () => {
    expect(dirs(await detect({ 'package.json': { dependencies: { astro: '5' } }, 'astro.config.mjs': "import { defineConfig } from 'astro/config';\nexport default defineConfig({ site: 'https://example.com', outDir: './www' });\n" }))?.[0]).toBe('www');
    expect(dirs(await detect({ 'package.json': { dependencies: { nuxt: '3' } }, 'nuxt.config.ts': "export default defineNuxtConfig({ nitro: { output: { publicDir: 'site' } } })\n" }))).toEqual(['site', '.output/public', 'dist']);
    expect(dirs(await detect({ 'package.json': { dependencies: { '@docusaurus/core': '3' }, scripts: { build: 'docusaurus build --out-dir public/docs' } } }))?.[0]).toBe('public/docs');
    expect(dirs(await detect({ 'package.json': { dependencies: { hexo: '7' } }, '_config.yml': "title: Blog\npublic_dir: 'site' # generated\nsource_dir: source\n" }))?.[0]).toBe('site');
    const vuepress = await detect({ 'package.json': { devDependencies: { vuepress: '1' }, scripts: { 'docs:build': 'vuepress build docs' } }, 'docs/.vuepress/config.js': "module.exports = { title: 'Docs', dest: 'public' }\n" });
    expect(vuepress?.outputs).toEqual([{ dir: 'public', why: 'dest in docs/.vuepress/config.js' }, { dir: 'docs/.vuepress/dist', why: "VuePress's default" }]);
  });

  it('falls back to the framework\'s default when the value is not a plain literal, or is absolute or the app folder', async () => {
    const computed = await detect({ 'package.json': { devDependencies: { vite: '6' } }, 'vite.config.js': "import path from 'node:path';\nexport default { build: { outDir: path.resolve(__dirname, 'www') } };\n" });
    expect(computed?.outputs).toEqual([{ dir: 'dist', why: "Vite's default; build.outDir in vite.config.js is not a plain folder name" }]);
    const template = await detect({ 'package.json': { dependencies: { astro: '5' } }, 'astro.config.mjs': 'const out = "x";\nexport default { outDir: `${out}/dist` };\n' });
    expect(dirs(template)).toEqual(['dist']);
    const variable = await detect({ 'package.json': { devDependencies: { '@sveltejs/kit': '2' } }, 'svelte.config.js': "import adapter from '@sveltejs/adapter-static';\nconst options = { pages: 'docs' };\nexport default { kit: { adapter: adapter(options) } };\n" });
    expect(variable?.outputs[0]?.why).toBe("adapter-static's default; adapter-static's options in svelte.config.js are not plain");
    expect(dirs(await detect({ 'package.json': { devDependencies: { vite: '6' } }, 'vite.config.js': "export default { build: { outDir: '/etc' } };\n" }))).toEqual(['dist']);
    expect(dirs(await detect({ 'package.json': { devDependencies: { '@11ty/eleventy': '3' } }, 'eleventy.config.js': "module.exports = () => ({ dir: { output: '.' } });\n" }))).toEqual(['_site']);
    const fn = await detect({ 'package.json': { dependencies: { next: '15' } }, 'next.config.js': "module.exports = (phase) => ({ output: 'export' });\n" });
    expect(fn?.outputs[0]?.why).toMatch(/sets no output: 'export', so next build makes a server/);
  });
});

describe('reading config text', () => {
  it('reads top-level properties only, past comments and strings that look like code', () => {
    const text = withoutComments("// export default { outDir: 'no' }\nconst url = 'https://x/{'; /* { */\nexport default defineConfig({ test: { outDir: 'nested' }, 'outDir': \"yes\", other: 1 })");
    const object = exportedObject(text);
    expect(lookup(object, 'outDir')).toEqual({ kind: 'string', value: 'yes' });
    expect(lookup(object, 'test', 'outDir')).toEqual({ kind: 'string', value: 'nested' });
    expect(property("{ a: 'x' + y, b: `t`, c }", 'a')).toEqual({ kind: 'other' });
    expect(property("{ a: 'x' + y, b: `t`, c }", 'b')).toEqual({ kind: 'string', value: 't' });
    expect(property("{ a: 'x' + y, b: `t`, c }", 'c')).toEqual({ kind: 'other' });
    expect(property("{ a: 'x' }", 'z')).toBeUndefined();
  });
});

describe('the log names the folder published', () => {
  it('says why: outputDir, the framework\'s config, the usual folders, or the app folder', async () => {
    const preset = await detect({ 'package.json': { devDependencies: { '@sveltejs/kit': '2' } }, 'svelte.config.js': "import adapter from '@sveltejs/adapter-static';\nexport default { kit: { adapter: adapter({ pages: 'docs' }) } };\n" });
    const fallback = ['dist', 'build', 'out', 'public'];
    expect(outputCandidates(preset, fallback)).toEqual(['docs', 'build', 'dist', 'out', 'public']);
    expect(describeOutput(preset, null, 'docs', fallback)).toBe('[slipway] output: docs/ (adapter-static pages in svelte.config.js)');
    expect(describeOutput(preset, null, 'build', fallback)).toBe("[slipway] output: build/ (adapter-static's default; docs/ was not written)");
    expect(describeOutput(preset, 'site', 'site', fallback)).toBe('[slipway] output: site/ (outputDir)');
    expect(describeOutput(null, null, 'public', fallback)).toBe('[slipway] output: public/ (the first of dist/, build/, out/, public/ the build wrote)');
    expect(describeOutput(null, null, '', fallback)).toMatch(/the app folder itself/);
  });
});

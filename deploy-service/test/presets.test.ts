import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manager } from '../src/detect/package-manager';
import { planCommands } from '../src/detect/plan';
import { detectPreset } from '../src/detect/presets';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'slipway-preset-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

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
  ])('%j → %s', async (pkg, name, outputs) => {
    expect(await detectPreset(dir, pkg)).toMatchObject({ name, outputs });
  });

  it('reads Angular\'s output folder from angular.json, browser/ first', async () => {
    await writeFile(path.join(dir, 'angular.json'), JSON.stringify({ defaultProject: 'b', projects: { a: {}, b: { architect: { build: { options: { outputPath: { base: 'dist/b-app', browser: '' } } } } } } }));
    expect(await detectPreset(dir, { dependencies: { '@angular/core': '19', '@angular/cli': '19' } })).toMatchObject({ name: 'Angular', outputs: ['dist/b-app'] });
    await writeFile(path.join(dir, 'angular.json'), JSON.stringify({ projects: { shop: {} } }));
    expect(await detectPreset(dir, { dependencies: { '@angular/core': '19', '@angular/cli': '19' } })).toMatchObject({ outputs: ['dist/shop/browser', 'dist/shop'] });
  });

  it('finds nothing for plain HTML or an unknown toolchain', async () => {
    expect(await detectPreset(dir, null)).toBeNull();
    expect(await detectPreset(dir, { devDependencies: { typescript: '5' } })).toBeNull();
  });

  it('runs the preset\'s script (Nuxt generate) or its command (Eleventy) when there is no build script', async () => {
    const npm: Manager = { name: 'npm', berry: false, version: null, lockfile: 'package-lock.json', root: dir, reason: '' };
    const none = { installCommand: undefined, buildCommand: undefined };
    const nuxt = await detectPreset(dir, { dependencies: { nuxt: '3' }, scripts: { build: 'nuxt build', generate: 'nuxt generate' } });
    expect(planCommands(none, { dependencies: { nuxt: '3' }, scripts: { build: 'nuxt build', generate: 'nuxt generate' } }, npm, nuxt)).toEqual([['npm', 'ci'], ['npm', 'run', 'generate']]);
    const eleventy = await detectPreset(dir, { devDependencies: { '@11ty/eleventy': '3' } });
    expect(planCommands(none, { devDependencies: { '@11ty/eleventy': '3' } }, { ...npm, name: 'pnpm' }, eleventy)).toEqual([['pnpm', 'install', '--frozen-lockfile'], ['pnpm', 'exec', 'eleventy']]);
  });
});

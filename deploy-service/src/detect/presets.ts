// Framework presets: which framework an app uses (from its dependencies and config files), the
// script that makes its static site, and the folders that site lands in. A request's own
// buildCommand and outputDir always win over a preset.
import path from 'node:path';
import { readSmallFile } from '@slipway/shared';
import type { PackageJson } from './package-json';

export interface Preset {
  name: string;
  /** Why it was chosen, for the log. */
  reason: string;
  /** The package.json script that builds the static site (default `build`). */
  script: string;
  /** When no such script exists: a command of the framework's own to run through the manager. */
  bin?: string;
  /** Where the site lands, in order of preference, relative to the app folder. */
  outputs: string[];
}

interface Rule {
  name: string;
  /** Any of these packages among the dependencies. */
  packages: string[];
  outputs: string[];
  script?: string;
  bin?: string;
}

/** Most specific first: a Docusaurus or Astro app also depends on React, a Remix app on Vite. */
const RULES: Rule[] = [
  { name: 'Next.js (static export)', packages: ['next'], outputs: ['out'] },
  { name: 'Nuxt (generate)', packages: ['nuxt', 'nuxt3'], outputs: ['.output/public', 'dist'], script: 'generate' },
  { name: 'SvelteKit (static adapter)', packages: ['@sveltejs/kit'], outputs: ['build'] },
  { name: 'Astro', packages: ['astro'], outputs: ['dist'] },
  { name: 'Remix / React Router (SPA mode)', packages: ['@remix-run/dev', '@react-router/dev'], outputs: ['build/client'] },
  { name: 'Gatsby', packages: ['gatsby'], outputs: ['public'] },
  { name: 'Docusaurus', packages: ['@docusaurus/core'], outputs: ['build'] },
  { name: 'Eleventy', packages: ['@11ty/eleventy'], outputs: ['_site'], bin: 'eleventy' },
  { name: 'Create React App', packages: ['react-scripts'], outputs: ['build'] },
  { name: 'Vue CLI', packages: ['@vue/cli-service'], outputs: ['dist'] },
  { name: 'Vite', packages: ['vite'], outputs: ['dist'] },
];

/** The preset for an app, or null (plain HTML, or a build Slipway does not know). */
export async function detectPreset(appDir: string, pkg: PackageJson | null): Promise<Preset | null> {
  if (!pkg) return null;
  const deps = { ...pkg.dependencies, ...pkg.devDependencies };
  const angular = deps['@angular/core'] !== undefined && deps['@angular/cli'] !== undefined ? await angularOutputs(appDir) : null;
  if (angular) return { name: 'Angular', reason: '@angular/core and angular.json', script: 'build', outputs: angular };
  for (const rule of RULES) {
    const found = rule.packages.find((p) => deps[p] !== undefined);
    if (!found) continue;
    const wanted = rule.script ?? 'build';
    // Nuxt's `generate` when the app has that script; its `build` otherwise (a server: refused after the build).
    const script = typeof pkg.scripts?.[wanted] === 'string' ? wanted : 'build';
    return { name: rule.name, reason: `${found} in package.json`, script, bin: rule.bin, outputs: rule.outputs };
  }
  return null;
}

/**
 * Angular writes to angular.json's outputPath for the first (or default) project: since v17 with the
 * site in its `browser/` folder, before that in the folder itself.
 */
async function angularOutputs(appDir: string): Promise<string[] | null> {
  const text = await readSmallFile(path.join(appDir, 'angular.json'));
  if (!text) return null;
  try {
    const doc = JSON.parse(text) as { defaultProject?: string; projects?: Record<string, { architect?: { build?: { options?: { outputPath?: unknown } } } }> };
    const names = Object.keys(doc.projects ?? {});
    const name = doc.defaultProject && doc.projects?.[doc.defaultProject] ? doc.defaultProject : names[0];
    if (!name) return null;
    const outputPath = doc.projects![name]!.architect?.build?.options?.outputPath;
    const base = typeof outputPath === 'string' ? outputPath : typeof outputPath === 'object' && outputPath && typeof (outputPath as { base?: unknown }).base === 'string' ? (outputPath as { base: string }).base : `dist/${name}`;
    const browser = typeof outputPath === 'object' && outputPath && typeof (outputPath as { browser?: unknown }).browser === 'string' ? (outputPath as { browser: string }).browser : 'browser';
    const clean = base.replace(/^\.\//, '').replace(/\/+$/, '');
    return browser === '' ? [clean] : [`${clean}/${browser}`, clean];
  } catch {
    return null;
  }
}

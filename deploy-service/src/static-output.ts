// Whether a build's output is a static site Slipway can serve, and when it is not, a reason that
// says how to make one: a server-rendering build (SvelteKit's node adapter, Next without
// `output: 'export'`, Nuxt build, Astro's server output, Remix) fails instead of being marked deployed.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { BuildFailedError } from '@slipway/shared';
import { existingDir, existingFile } from './workspace';

export interface PackageDeps {
  dependencies?: Record<string, unknown>;
  devDependencies?: Record<string, unknown>;
}

/** Files that mark a server bundle at the top of an output folder. */
const SERVER_ENTRIES = ['handler.js', 'server.js', 'server.mjs', 'entry.mjs', 'index.mjs', 'env.js'];
const SVELTEKIT_SERVER_ADAPTERS = ['@sveltejs/adapter-node', '@sveltejs/adapter-vercel', '@sveltejs/adapter-netlify', '@sveltejs/adapter-cloudflare', '@sveltejs/adapter-cloudflare-workers', '@sveltejs/adapter-auto'];

/**
 * Throws BuildFailedError unless `outputDir` holds an index.html at its root, or the page the
 * request named as its single-page-app fallback.
 */
export async function requireStaticSite(appDir: string, outputDir: string, pkg: PackageDeps | null, spaFallback?: string): Promise<void> {
  if (spaFallback && !(await existingFile(outputDir, spaFallback))) {
    throw new BuildFailedError(`the output folder ${path.relative(appDir, outputDir) || '.'}/ has no ${spaFallback} (spaFallback) at its root`);
  }
  if (spaFallback || (await existingFile(outputDir, 'index.html'))) return;
  const rel = path.relative(appDir, outputDir) || '.';
  const server = await serverBuildReason(appDir, outputDir, pkg);
  if (server) throw new BuildFailedError(`${server}; Slipway publishes static sites only`);
  const names = (await readdir(outputDir).catch(() => [] as string[])).sort();
  const listing = names.length === 0 ? 'it is empty' : `it holds ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', …' : ''}`;
  throw new BuildFailedError(`the output folder ${rel}/ has no index.html at its root (${listing}); set outputDir to the folder that holds the site's index.html`);
}

/**
 * Why this looks like a server-rendering build, with how to make it static; null when it does not.
 * With no output folder, only the frameworks' own signs count.
 */
export async function serverBuildReason(appDir: string, outputDir: string | null, pkg: PackageDeps | null): Promise<string | null> {
  const has = (name: string) => pkg?.dependencies?.[name] !== undefined || pkg?.devDependencies?.[name] !== undefined;
  const adapter = SVELTEKIT_SERVER_ADAPTERS.find(has);
  if (has('@sveltejs/kit') && adapter && !has('@sveltejs/adapter-static')) {
    return `this SvelteKit app builds with ${adapter}, which makes a server; use @sveltejs/adapter-static (with \`export const prerender = true\` in the root layout) for a static site`;
  }
  if (has('next') && (await existingDir(appDir, '.next')) && !(await existingDir(appDir, 'out'))) {
    return "Next.js built a server app (.next/) and no static export; set `output: 'export'` in next.config.js, which writes out/";
  }
  if (has('nuxt') && (await existingDir(appDir, '.output/server'))) {
    return 'Nuxt built a server (.output/server); run `nuxt generate` (buildCommand) for a static site in .output/public';
  }
  if (has('astro') && (await existingDir(appDir, 'dist/server'))) {
    return "Astro built a server (output: 'server' or an adapter); remove the adapter or set output: 'static' for a static site";
  }
  if ((has('@remix-run/dev') || has('@react-router/dev')) && (await existingDir(appDir, 'build/server'))) {
    return 'this Remix / React Router app built a server (build/server); enable SPA mode (`ssr: false`) for a static site in build/client';
  }
  if (outputDir === null) return null;
  const entries = await readdir(outputDir).catch(() => [] as string[]);
  const entry = SERVER_ENTRIES.find((name) => entries.includes(name));
  if (entry) return `the output folder holds ${entry} and no index.html: it looks like a server bundle, not a static site`;
  return null;
}

// Whether a build's output is a static site Slipway can serve, and when it is not, a reason that
// says how to make one: a server-rendering build (SvelteKit's node adapter, Next without
// `output: 'export'`, Nuxt build, Astro's server output, Remix) fails instead of being marked deployed.
// It looks only at the worker's own copy of the output and at what the collect step found in the app
// folder (collect.ts), never at the build's folders.
import { readdir } from 'node:fs/promises';
import { BuildFailedError } from '@slipway/shared';
import { existingFile } from './workspace';

export interface PackageDeps {
  dependencies?: Record<string, unknown>;
  devDependencies?: Record<string, unknown>;
}

/** App folders the collect step looks for: their presence tells a server build. */
export const SERVER_PROBES = ['.next', 'out', '.output/server', 'dist/server', 'build/server'] as const;
type Probes = Readonly<Record<string, boolean>>;

/** Files that mark a server bundle at the top of an output folder. */
const SERVER_ENTRIES = ['handler.js', 'server.js', 'server.mjs', 'entry.mjs', 'index.mjs', 'env.js'];
const SVELTEKIT_SERVER_ADAPTERS = ['@sveltejs/adapter-node', '@sveltejs/adapter-vercel', '@sveltejs/adapter-netlify', '@sveltejs/adapter-cloudflare', '@sveltejs/adapter-cloudflare-workers', '@sveltejs/adapter-auto'];

/**
 * Throws BuildFailedError unless the received output holds an index.html at its root, or the page the
 * request named as its single-page-app fallback. `outputRel` names the folder in messages.
 */
export async function requireStaticSite(output: string, outputRel: string, pkg: PackageDeps | null, probes: Probes, spaFallback?: string): Promise<void> {
  const rel = outputRel || '.';
  if (spaFallback && !(await existingFile(output, spaFallback))) throw new BuildFailedError(`the output folder ${rel}/ has no ${spaFallback} (spaFallback) at its root`);
  if (spaFallback || (await existingFile(output, 'index.html'))) return;
  const names = (await readdir(output).catch(() => [] as string[])).sort();
  const server = serverBuildReason(probes, names, pkg);
  if (server) throw new BuildFailedError(`${server}; Slipway publishes static sites only`);
  const listing = names.length === 0 ? 'it is empty' : `it holds ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', …' : ''}`;
  throw new BuildFailedError(`the output folder ${rel}/ has no index.html at its root (${listing}); set outputDir to the folder that holds the site's index.html`);
}

/**
 * Why this looks like a server-rendering build, with how to make it static; null when it does not.
 * `outputNames` are the output's top-level names (null with no output folder: only the frameworks' signs count).
 */
export function serverBuildReason(probes: Probes, outputNames: readonly string[] | null, pkg: PackageDeps | null): string | null {
  const has = (name: string) => pkg?.dependencies?.[name] !== undefined || pkg?.devDependencies?.[name] !== undefined;
  const adapter = SVELTEKIT_SERVER_ADAPTERS.find(has);
  if (has('@sveltejs/kit') && adapter && !has('@sveltejs/adapter-static')) {
    return `this SvelteKit app builds with ${adapter}, which makes a server; use @sveltejs/adapter-static (with \`export const prerender = true\` in the root layout) for a static site`;
  }
  if (has('next') && probes['.next'] && !probes.out) {
    return "Next.js built a server app (.next/) and no static export; set `output: 'export'` in next.config.js, which writes out/";
  }
  if (has('nuxt') && probes['.output/server']) {
    return 'Nuxt built a server (.output/server); run `nuxt generate` (buildCommand) for a static site in .output/public';
  }
  if (has('astro') && probes['dist/server']) {
    return "Astro built a server (output: 'server' or an adapter); remove the adapter or set output: 'static' for a static site";
  }
  if ((has('@remix-run/dev') || has('@react-router/dev')) && probes['build/server']) {
    return 'this Remix / React Router app built a server (build/server); enable SPA mode (`ssr: false`) for a static site in build/client';
  }
  const entry = outputNames && SERVER_ENTRIES.find((name) => outputNames.includes(name));
  if (entry) return `the output folder holds ${entry} and no index.html: it looks like a server bundle, not a static site`;
  return null;
}

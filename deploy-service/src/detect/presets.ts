// Framework presets: which framework an app uses (frameworks/: one data file each), the script that
// makes its static site, and the folders that site lands in, read from the framework's own config
// where it can be read without running it. A request's own buildCommand and outputDir always win.
import { FRAMEWORKS } from './frameworks/index';
import { KIND_RANK, appFiles, type Framework, type OutputFolder } from './frameworks/framework';
import type { PackageJson } from './package-json';

export type { OutputFolder } from './frameworks/framework';

export interface Preset {
  id: string;
  name: string;
  /** Why it was chosen, for the log. */
  reason: string;
  /** The package.json script that builds the static site (default `build`). */
  script: string;
  /** When no such script exists: a command of the framework's own to run through the manager. */
  bin?: readonly string[];
  /** Where the site lands, preferred first, relative to the app folder, each with why. */
  outputs: OutputFolder[];
}

/** The preset for an app, or null (plain HTML, or a build Slipway does not know). */
export async function detectPreset(appDir: string, pkg: PackageJson | null, frameworks: readonly Framework[] = FRAMEWORKS): Promise<Preset | null> {
  if (!pkg) return null;
  const deps = { ...pkg.dependencies, ...pkg.devDependencies };
  const scripts = pkg.scripts ?? {};
  const matched: { framework: Framework; signal: string }[] = [];
  for (const framework of frameworks) {
    const found = framework.packages.find((p) => deps[p] !== undefined);
    if (!found || !(framework.with ?? []).every((p) => deps[p] !== undefined)) continue;
    if (framework.applies && !(await framework.applies(appFiles(appDir, deps, ''), scripts))) continue;
    matched.push({ framework, signal: [found, ...(framework.with ?? [])].join(' and ') });
  }
  const choice = chooseFramework(matched.map((m) => m.framework));
  if (!choice) return null;
  const { chosen, over } = choice;
  const script = (chosen.scripts ?? ['build']).find((name) => typeof scripts[name] === 'string') ?? 'build';
  const app = appFiles(appDir, deps, typeof scripts[script] === 'string' ? (scripts[script] as string) : '');
  const bin = typeof chosen.bin === 'function' ? await chosen.bin(app) : chosen.bin;
  const outputs = (await chosen.outputs(app)).filter((o, i, all) => all.findIndex((x) => x.dir === o.dir) === i);
  const signal = matched.find((m) => m.framework === chosen)!.signal;
  const reason = `${signal} in package.json${over.length > 0 ? `, ahead of ${over.map((f) => f.name).join(', ')}` : ''}`;
  return { id: chosen.id, name: chosen.name, reason, script, bin, outputs };
}

/**
 * The framework an app gets among those that match, whatever their order: none that another match
 * excludes (it builds on it), then the highest kind, then the id. `over` are the others, for the log.
 */
export function chooseFramework(matched: readonly Framework[]): { chosen: Framework; over: Framework[] } | null {
  const excluded = new Set(matched.flatMap((f) => f.excludes ?? []));
  const left = matched.filter((f) => !excluded.has(f.id));
  const [chosen] = [...(left.length > 0 ? left : matched)].sort((a, b) => KIND_RANK[b.kind] - KIND_RANK[a.kind] || a.id.localeCompare(b.id));
  return chosen ? { chosen, over: matched.filter((f) => f !== chosen) } : null;
}

/** The folders the collect step looks for, in order: the preset's, then the usual ones (`fallback`). */
export function outputCandidates(preset: Preset | null, fallback: readonly string[]): string[] {
  return [...new Set([...(preset?.outputs.map((o) => o.dir) ?? []), ...fallback])];
}

/** The log's line naming the folder collected (`rel`, '' for the app folder itself) and why it is that one. */
export function describeOutput(preset: Preset | null, outputDir: string | null, rel: string, fallback: readonly string[]): string {
  if (outputDir !== null) return `[slipway] output: ${rel}/ (outputDir)`;
  if (rel === '') return "[slipway] output: the app folder itself (no output folder was written; a plain site with its own index.html)";
  const first = preset?.outputs[0];
  const missed = first && first.dir !== rel ? `; ${first.dir}/ was not written` : '';
  const own = preset?.outputs.find((o) => o.dir === rel);
  if (own) return `[slipway] output: ${rel}/ (${own.why}${missed})`;
  return `[slipway] output: ${rel}/ (the first of ${fallback.map((d) => `${d}/`).join(', ')} the build wrote${missed})`;
}

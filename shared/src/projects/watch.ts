// Ignored builds: a project's watchPaths, the paths of its repository a pushed commit must change to be
// built. Without watchPaths they are what its build reads: its rootDir, the workspace packages the app
// depends on, and the repository's top-level manifests, lockfiles and tool settings; with no rootDir, the
// whole tree. Every project deployment records each watched path's git object id (a tree's or a
// blob's, null when missing) and a digest of the settings it builds with; a pushed commit whose ids and
// settings are all the same as the deployment its alias serves ends `skipped`, with no upload and no
// build, and the alias stays. Object ids are compared, not a diff between commits, so no history is
// needed: a shallow clone, a force push or a rebase compares what the two commits hold.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { WORKSPACE_SUPPORT_DIRS } from '../repo/workspaces';

export const MAX_WATCH_PATHS = 50;
/** More default paths than this (an app depending on hundreds of workspace packages): the whole tree is watched. */
const MAX_DEFAULT_PATHS = 200;

/** Top-level files (and folders) whose change may change any app's build. */
export const ROOT_BUILD_FILES = [
  'package.json', 'package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml', 'pnpm-workspace.yaml', 'bun.lock', 'bun.lockb',
  '.npmrc', '.yarnrc', '.yarnrc.yml', '.nvmrc', '.node-version', '.tool-versions', 'turbo.json', 'nx.json', 'lerna.json', 'tsconfig.json', 'tsconfig.base.json',
  ...WORKSPACE_SUPPORT_DIRS,
] as const;

/** One watched path: a folder or a file of the repository, `.` for all of it; a trailing `/**` means the folder. */
export const WatchPathSchema = z
  .string({ error: 'watchPaths are paths of the repository, such as apps/web or packages/ui' })
  .max(500)
  .transform((p) => p.replace(/\/\*\*$/, '').replace(/^\.\/+/, '').replace(/\/+$/, '') || '.')
  .refine((p) => !/[\x00-\x1f\x7f]/.test(p), 'watchPaths have no control characters')
  .refine((p) => !p.startsWith('/') && !p.split('/').some((part) => part === '..' || part === ''), 'watchPaths are relative paths inside the repository, without .. or empty parts')
  .refine((p) => !/[*?[\]]/.test(p), 'watchPaths name folders or files: no globs but a trailing /** (apps/web/** is apps/web)');

export const WatchPathsSchema = z
  .array(WatchPathSchema)
  .min(1, 'watchPaths holds at least one path (null restores the defaults)')
  .max(MAX_WATCH_PATHS, `a project watches at most ${MAX_WATCH_PATHS} paths`)
  .transform((list) => [...new Set(list)].sort());

export type Watched = { paths: string[]; ids: Record<string, string | null>; settings: string };

/** The default watched paths (see the file comment), sorted; `topLevel` is the commit's top-level entries. */
export function defaultWatchPaths(rootDir: string | undefined, packages: readonly string[], topLevel: readonly string[]): string[] {
  if (!rootDir) return ['.'];
  const roots = topLevel.filter((name) => (ROOT_BUILD_FILES as readonly string[]).includes(name));
  const paths = [...new Set([rootDir, ...packages, ...roots])].sort();
  // A repository's folder names are its own: one git cannot be asked about line by line, or more than a
  // record should hold, and the whole tree is watched instead (a change anywhere builds).
  return paths.length > MAX_DEFAULT_PATHS || paths.some((p) => /[\x00-\x1f\x7f]/.test(p)) ? ['.'] : paths;
}

/** A digest of what a deployment builds with besides its source: a change of any of these builds again. */
export function settingsDigest(settings: Record<string, unknown>): string {
  const sorted = Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined).sort(([a], [b]) => a.localeCompare(b)));
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex').slice(0, 32);
}

/** Whether `next` holds at its watched paths what `previous` did, with the same settings (same paths watched, too). */
export function sameWatched(previous: Watched | undefined, next: Watched): boolean {
  if (!previous || previous.settings !== next.settings) return false;
  if (previous.paths.length !== next.paths.length || previous.paths.some((p, i) => p !== next.paths[i])) return false;
  return next.paths.every((p) => (previous.ids[p] ?? null) === (next.ids[p] ?? null));
}

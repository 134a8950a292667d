// Monorepo workspaces (npm, Yarn, Bun `workspaces` in package.json; pnpm's pnpm-workspace.yaml):
// which folders are workspace packages, and which of them an app folder needs, through its
// dependencies, transitively. Pure functions over manifests; the callers read the files.
import picomatch from 'picomatch';
import { parse as parseYaml } from 'yaml';

/** A manifest larger than this is not read (a hostile repository could ship a huge one). */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

/** Files at a workspace root that installs and builds read: always kept with an app folder. */
export const WORKSPACE_SUPPORT_DIRS = ['.yarn', 'patches'] as const;

export interface PackageManifest {
  name?: string;
  dependencies: string[];
}

/**
 * The workspace globs a repository root declares, or null when it is not a workspace root.
 * `packageJson` is the root package.json text (or null); `pnpmWorkspace` the pnpm-workspace.yaml text.
 */
export function workspacePatterns(packageJson: string | null, pnpmWorkspace: string | null): string[] | null {
  const patterns: string[] = [];
  if (pnpmWorkspace !== null) {
    const doc = safe(() => parseYaml(pnpmWorkspace) as unknown);
    const packages = isObject(doc) ? doc.packages : undefined;
    if (Array.isArray(packages)) patterns.push(...packages.filter((p): p is string => typeof p === 'string'));
  }
  const pkg = packageJson === null ? null : safe(() => JSON.parse(packageJson) as unknown);
  if (isObject(pkg)) {
    // npm, Bun and Yarn take an array; Yarn classic also takes {packages: [...], nohoist: [...]}.
    const ws = pkg.workspaces;
    const list = Array.isArray(ws) ? ws : isObject(ws) && Array.isArray(ws.packages) ? ws.packages : [];
    patterns.push(...list.filter((p): p is string => typeof p === 'string'));
  }
  return patterns.length > 0 ? patterns : null;
}

/** The folders (repository-relative, POSIX) among `dirs` that the workspace globs select. */
export function workspaceMembers(dirs: Iterable<string>, patterns: readonly string[]): string[] {
  const clean = (p: string) => p.replace(/^\.\//, '').replace(/\/+$/, '');
  const include = patterns.filter((p) => !p.startsWith('!')).map(clean);
  const exclude = patterns.filter((p) => p.startsWith('!')).map((p) => clean(p.slice(1)));
  if (include.length === 0) return [];
  const matches = picomatch(include, { ignore: exclude });
  return [...dirs].filter((dir) => dir !== '' && dir !== '.' && matches(dir)).sort();
}

/** The name and every dependency name (all kinds) of a package.json text; null when unreadable. */
export function readManifest(text: string): PackageManifest | null {
  const pkg = safe(() => JSON.parse(text) as unknown);
  if (!isObject(pkg)) return null;
  const dependencies = new Set<string>();
  for (const field of ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies']) {
    const deps = pkg[field];
    if (isObject(deps)) for (const name of Object.keys(deps)) dependencies.add(name);
  }
  return { name: typeof pkg.name === 'string' ? pkg.name : undefined, dependencies: [...dependencies] };
}

/**
 * The workspace packages `app` needs: those it depends on by name, and theirs, transitively.
 * `members` maps each package folder to its manifest; `app` is the app's own manifest (it may be
 * a member or a folder outside the globs). The result never includes the app's own folder.
 */
export function neededMembers(app: PackageManifest, appDir: string, members: ReadonlyMap<string, PackageManifest>): string[] {
  const byName = new Map<string, string>();
  for (const [dir, manifest] of members) if (manifest.name) byName.set(manifest.name, dir);
  const needed = new Set<string>();
  const queue = [...app.dependencies];
  while (queue.length > 0) {
    const dir = byName.get(queue.pop()!);
    if (dir === undefined || dir === appDir || needed.has(dir)) continue;
    needed.add(dir);
    queue.push(...(members.get(dir)?.dependencies ?? []));
  }
  return [...needed].sort();
}

function safe<T>(fn: () => T): T | null {
  try {
    return fn();
  } catch {
    return null;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Which files of a commit become a deployment's source. Every regular file, unless the request names
// a rootDir with sourceScope rootDir: then the app folder, the repository's top-level files
// (package.json, lockfiles, .npmrc, .nvmrc ...), and, in a workspace monorepo, every package's
// package.json (so a frozen-lockfile install still matches) plus the sources of the workspace packages
// the app depends on. Links and submodules never are. Chosen from git's listing of the commit and the
// few manifests read from git's objects: nothing is checked out.
import path from 'node:path';
import {
  InvalidInputError,
  WORKSPACE_SUPPORT_DIRS,
  neededMembers,
  readManifest,
  workspaceMembers,
  workspacePatterns,
  type PackageManifest,
} from '@slipway/shared';

export interface TreeEntry {
  /** POSIX path inside the repository. */
  path: string;
  /** `100644`, `100755`, `120000` (a symbolic link), `160000` (a submodule). */
  mode: string;
  /** The git object id (a blob's, or a submodule's commit). */
  oid: string;
  /** Bytes; 0 for a submodule. */
  size: number;
}

export interface SourceSelection {
  /** The workspace packages the app needs, besides its own folder. */
  packages: string[];
  /** What is selected: files, or folders with everything under them. */
  paths: string[];
}

export interface TreeReader {
  /** A regular file's text at the commit, or null: missing, a link, or over MAX_MANIFEST_BYTES. */
  read(rel: string): Promise<string | null>;
}

/** Entries of `git ls-tree -r -l -z` output. */
export function parseTree(listing: string): TreeEntry[] {
  const entries: TreeEntry[] = [];
  for (const entry of listing.split('\0')) {
    // <mode> SP <type> SP <object> SP+ <size or -> TAB <path>
    const match = /^(\d+) (blob|commit) ([0-9a-f]+) +(\d+|-)\t(.+)$/s.exec(entry);
    if (match) entries.push({ mode: match[1]!, oid: match[3]!, path: match[5]!, size: match[4] === '-' ? 0 : Number(match[4]) });
  }
  return entries;
}

/** The regular files of `entries` that `paths` select (null: all of them). */
export function selectedFiles(entries: readonly TreeEntry[], paths: readonly string[] | null): TreeEntry[] {
  if (paths === null) return entries.filter(isFile);
  const exact = new Set(paths);
  const folders = paths.map((p) => `${p}/`);
  return entries.filter((e) => isFile(e) && (exact.has(e.path) || folders.some((f) => e.path.startsWith(f))));
}

/** Refuses a rootDir that is not a folder of the commit. */
export function requireRootDir(entries: readonly TreeEntry[], rootDir: string): void {
  const prefix = `${rootDir}/`;
  if (!entries.some((e) => e.path.startsWith(prefix))) {
    throw new InvalidInputError(`rootDir ${JSON.stringify(rootDir)} is not a folder in the repository`);
  }
}

/** The part of the commit that `rootDir` needs (see the file comment). */
export async function selectRootDir(entries: readonly TreeEntry[], rootDir: string, tree: TreeReader): Promise<SourceSelection> {
  requireRootDir(entries, rootDir);
  const topLevel = entries.filter((e) => !e.path.includes('/') && e.mode !== '160000').map((e) => e.path);
  const { packages, members } = await workspace(entries, rootDir, tree);
  const support = WORKSPACE_SUPPORT_DIRS.filter((name) => entries.some((e) => e.path.startsWith(`${name}/`)));
  return { packages, paths: [...topLevel, rootDir, ...members.map((dir) => `${dir}/package.json`), ...packages, ...support] };
}

/** The workspace packages the app in `rootDir` depends on, read from the commit's manifests. */
export async function workspaceDependencies(entries: readonly TreeEntry[], rootDir: string, tree: TreeReader): Promise<string[]> {
  return (await workspace(entries, rootDir, tree)).packages;
}

/** The workspace's members (besides the app) and the ones the app depends on. */
async function workspace(entries: readonly TreeEntry[], rootDir: string, tree: TreeReader): Promise<{ packages: string[]; members: string[] }> {
  const prefix = `${rootDir}/`;
  const patterns = workspacePatterns(await tree.read('package.json'), await tree.read('pnpm-workspace.yaml'));
  if (!patterns) return { packages: [], members: [] };

  const manifestDirs = entries.filter((e) => e.path.endsWith('/package.json') && isFile(e)).map((e) => path.posix.dirname(e.path));
  const members = workspaceMembers(manifestDirs, patterns).filter((dir) => dir !== rootDir && !dir.startsWith(prefix));
  const manifests = new Map<string, PackageManifest>();
  for (const dir of members) {
    const manifest = readManifestText(await tree.read(`${dir}/package.json`));
    if (manifest) manifests.set(dir, manifest);
  }
  const app = readManifestText(await tree.read(`${rootDir}/package.json`));
  return { packages: app ? neededMembers(app, rootDir, manifests) : [], members };
}

export function isFile(entry: TreeEntry): boolean {
  return entry.mode === '100644' || entry.mode === '100755';
}

function readManifestText(text: string | null): PackageManifest | null {
  return text === null ? null : readManifest(text);
}


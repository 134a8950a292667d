// Which files of a clone become a deployment's source. Everything, unless the request names a
// rootDir: then the app folder, the repository's top-level files (package.json, lockfiles, .npmrc,
// .nvmrc ...), and, in a workspace monorepo, every package's package.json (so a frozen-lockfile
// install still matches) plus the sources of the workspace packages the app depends on.
import path from 'node:path';
import {
  InvalidInputError,
  MAX_MANIFEST_BYTES,
  WORKSPACE_SUPPORT_DIRS,
  neededMembers,
  pathInside,
  readSmallFile,
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
  /** Bytes; 0 for a submodule. */
  size: number;
}

export interface SourceSelection {
  /** The workspace packages the app needs, besides its own folder. */
  packages: string[];
}

export interface CheckoutOps {
  /** Writes these paths (files, or folders with everything under them) of the commit. */
  checkout(paths: readonly string[]): Promise<void>;
  /** The clone's folder. */
  dir: string;
}

/** Entries of `git ls-tree -r -l -z` output. */
export function parseTree(listing: string): TreeEntry[] {
  const entries: TreeEntry[] = [];
  for (const entry of listing.split('\0')) {
    // <mode> SP <type> SP <object> SP+ <size or -> TAB <path>
    const match = /^(\d+) (blob|commit) [0-9a-f]+ +(\d+|-)\t(.+)$/s.exec(entry);
    if (match) entries.push({ mode: match[1]!, path: match[4]!, size: match[3] === '-' ? 0 : Number(match[3]) });
  }
  return entries;
}

/** Refuses a rootDir that is not a folder of the commit. */
export function requireRootDir(entries: readonly TreeEntry[], rootDir: string): void {
  const prefix = `${rootDir}/`;
  if (!entries.some((e) => e.path.startsWith(prefix))) {
    throw new InvalidInputError(`rootDir ${JSON.stringify(rootDir)} is not a folder in the repository`);
  }
}

/** Checks out the part of the commit that `rootDir` needs (see the file comment). */
export async function checkoutRootDir(entries: readonly TreeEntry[], rootDir: string, ops: CheckoutOps): Promise<SourceSelection> {
  requireRootDir(entries, rootDir);
  const prefix = `${rootDir}/`;
  const topLevel = entries.filter((e) => !e.path.includes('/') && e.mode !== '160000').map((e) => e.path);
  await ops.checkout([...topLevel, rootDir]);
  const packages = await workspaceDependencies(entries, rootDir, ops);
  const support = WORKSPACE_SUPPORT_DIRS.filter((name) => entries.some((e) => e.path.startsWith(`${name}/`)));
  await ops.checkout([...packages, ...support]);
  return { packages };
}

/**
 * The workspace packages the app in `rootDir` depends on, read from the clone (the top-level files and
 * the app's folder checked out already; the members' package.json files are checked out here).
 */
export async function workspaceDependencies(entries: readonly TreeEntry[], rootDir: string, ops: CheckoutOps): Promise<string[]> {
  const prefix = `${rootDir}/`;
  const patterns = workspacePatterns(await readCloneFile(ops.dir, 'package.json'), await readCloneFile(ops.dir, 'pnpm-workspace.yaml'));
  if (!patterns) return [];

  const manifestDirs = entries.filter((e) => e.path.endsWith('/package.json') && isFile(e)).map((e) => path.posix.dirname(e.path));
  const members = workspaceMembers(manifestDirs, patterns).filter((dir) => dir !== rootDir && !dir.startsWith(prefix));
  await ops.checkout(members.map((dir) => `${dir}/package.json`));
  const manifests = new Map<string, PackageManifest>();
  for (const dir of members) {
    const manifest = readManifestText(await readCloneFile(ops.dir, `${dir}/package.json`));
    if (manifest) manifests.set(dir, manifest);
  }
  const app = readManifestText(await readCloneFile(ops.dir, `${rootDir}/package.json`));
  return app ? neededMembers(app, rootDir, manifests) : [];
}

function isFile(entry: TreeEntry): boolean {
  return entry.mode === '100644' || entry.mode === '100755';
}

function readManifestText(text: string | null): PackageManifest | null {
  return text === null ? null : readManifest(text);
}

/** A regular file's text inside the clone, or null: missing, a link (never followed) or over MAX_MANIFEST_BYTES. */
function readCloneFile(dir: string, rel: string): Promise<string | null> {
  return readSmallFile(pathInside(dir, rel), MAX_MANIFEST_BYTES);
}

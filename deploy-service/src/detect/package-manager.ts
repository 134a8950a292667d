// Which package manager a repository uses, and how to install and run scripts with it. The
// `packageManager` field (Corepack's) decides first, then `devEngines.packageManager`, then the
// lockfile (with `engines.<manager>` narrowing its version), looking from the app's folder up to the
// repository root (a workspace keeps them at its root). Each manager comes from the npm registry at
// the version asked for, else the newest release that reads the lockfile as its writer meant.
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import { BuildFailedError, readSmallFile } from '@slipway/shared';
import type { ToolCache, ToolPackage } from '../toolchain/tool-cache';

export type ManagerName = 'npm' | 'pnpm' | 'yarn' | 'bun';

export interface Manager {
  name: ManagerName;
  /** Yarn 2+ (Berry): `--immutable` instead of `--frozen-lockfile`. */
  berry: boolean;
  /** The version range or exact version to run; null: the npm that comes with the worker's Node. */
  version: string | null;
  /** The lockfile found (repository-relative), or null. */
  lockfile: string | null;
  /** The folder holding the lockfile or packageManager field: the project (workspace) root. */
  root: string;
  /** For the log: what was found. */
  reason: string;
}

const LOCKFILES: [string, ManagerName][] = [
  ['pnpm-lock.yaml', 'pnpm'],
  ['yarn.lock', 'yarn'],
  ['bun.lock', 'bun'],
  ['bun.lockb', 'bun'],
  ['package-lock.json', 'npm'],
  ['npm-shrinkwrap.json', 'npm'],
];

/** Finds the manager from `appDir` up to `srcRoot`. */
export async function detectManager(srcRoot: string, appDir: string): Promise<Manager> {
  for (let dir = appDir; ; dir = path.dirname(dir)) {
    const rel = (name: string) => path.relative(srcRoot, path.join(dir, name)) || name;
    const declared = declarations(await readSmallFile(path.join(dir, 'package.json')));
    const lock = await firstLockfile(dir);
    const asked = declared.field ? { ...parseField(declared.field, rel('package.json')), source: `packageManager "${declared.field.split('+')[0]}" in ${rel('package.json')}` } : declared.devEngines ? { ...declared.devEngines, source: `devEngines.packageManager in ${rel('package.json')}` } : null;
    if (asked) {
      const { name, version } = asked;
      const berry = name === 'yarn' && semver.major(semver.minVersion(version) ?? '1.0.0') >= 2;
      return { name, berry, version, lockfile: lock ? rel(lock[0]) : null, root: dir, reason: asked.source };
    }
    if (lock) {
      const [file, name] = lock;
      const text = await readSmallFile(path.join(dir, file), 64 * 1024 * 1024);
      const found = await versionFromLockfile(name, file, text ?? '', dir);
      // engines.pnpm (or .yarn, .bun) narrows the lockfile's line when the two agree.
      const engine = declared.engines[name];
      if (engine && found.version && semver.validRange(engine) && semver.intersects(engine, found.version)) {
        return { name, lockfile: rel(file), root: dir, ...found, version: `${found.version} ${engine}`, reason: `${rel(file)} (${found.note ?? name}), engines.${name} "${engine}" in ${rel('package.json')}` };
      }
      if (engine && semver.validRange(engine)) return { name, lockfile: rel(file), root: dir, ...found, version: engine, berry: name === 'yarn' && semver.major(semver.minVersion(engine) ?? '1.0.0') >= 2, reason: `engines.${name} "${engine}" in ${rel('package.json')}` };
      return { name, lockfile: rel(file), root: dir, ...found, reason: `${rel(file)}${found.note ? ` (${found.note})` : ''}` };
    }
    if (dir === srcRoot || !dir.startsWith(srcRoot)) break;
  }
  return { name: 'npm', berry: false, version: null, lockfile: null, root: appDir, reason: 'no lockfile and no packageManager field' };
}

/** The install command: the frozen-lockfile form when there is a lockfile. */
export function installCommand(m: Manager): string[] {
  const frozen = m.lockfile !== null;
  switch (m.name) {
    case 'npm':
      return frozen ? ['npm', 'ci'] : ['npm', 'install'];
    case 'pnpm':
      return frozen ? ['pnpm', 'install', '--frozen-lockfile'] : ['pnpm', 'install'];
    case 'yarn':
      return frozen ? ['yarn', 'install', m.berry ? '--immutable' : '--frozen-lockfile'] : ['yarn', 'install'];
    case 'bun':
      return frozen ? ['bun', 'install', '--frozen-lockfile'] : ['bun', 'install'];
  }
}

export function runScript(m: Manager, script: string): string[] {
  return [m.name, 'run', script];
}

/** Runs a command installed by a dependency (node_modules/.bin), with its arguments. */
export function execBin(m: Manager, bin: string, ...args: string[]): string[] {
  switch (m.name) {
    case 'npm':
      return ['npm', 'exec', '--', bin, ...args];
    case 'pnpm':
      return ['pnpm', 'exec', bin, ...args];
    case 'yarn':
      return ['yarn', 'run', bin, ...args];
    case 'bun':
      return ['bun', 'x', bin, ...args];
  }
}

/** The exact release a build runs, from the registry, with what it needs of Node. */
export interface ManagerRelease {
  /** The registry package that runs (the platform's native package for pnpm 12 and later). */
  name: string;
  version: string;
  /** Its own engines.node, or null. */
  nodeRange: string | null;
  /** Commands to give launchers when the package declares none. */
  commands?: Record<string, string>;
}

/**
 * The release to fetch for the manager, or null when the worker's own npm serves (npm with no
 * version asked). Read before the Node is chosen: its engines.node may narrow that choice.
 */
export async function resolveManager(m: Manager, tools: ToolCache): Promise<ManagerRelease | null> {
  if (m.name === 'npm' && m.version === null) return null;
  const name = m.name === 'yarn' ? (m.berry ? '@yarnpkg/cli-dist' : 'yarn') : m.name === 'bun' ? bunPackageName() : m.name;
  const range = m.version ?? '*';
  const version = semver.valid(range) ?? (await tools.newest(name, range));
  if (!version) throw new BuildFailedError(`${m.name} ${range} (${m.reason}) is not published on the npm registry`);
  const meta = await tools.manifest(name, version);
  if (!meta) throw new BuildFailedError(`${m.name} ${version} (${m.reason}) is not published on the npm registry`);
  const nodeRange = typeof meta.engines?.node === 'string' && semver.validRange(meta.engines.node) ? meta.engines.node : null;
  // pnpm 12 and later is a native program: its registry package holds a placeholder that its own
  // install step replaces with the binary from this platform's package, so that package is the one to run.
  const native = `@pnpm/exe.${process.arch === 'arm64' ? 'linux-arm64' : 'linux-x64'}`;
  if (m.name === 'pnpm' && meta.optionalDependencies?.[native] === version) {
    return { name: native, version, nodeRange: null, commands: { pnpm: 'pnpm', pn: 'pnpm' } };
  }
  return { name, version, nodeRange };
}

/** Fetches the release; for the worker's own npm (null), npm 10 when the build's Node is older than its npm allows. */
export async function managerPackage(release: ManagerRelease | null, tools: ToolCache, nodeVersion: string): Promise<ToolPackage | null> {
  if (release) return tools.install(release.name, release.version, release.commands);
  // The worker's npm (11 with Node 20.17+) does not run on Node 18: builds there get npm 10.
  if (semver.satisfies(nodeVersion, '>=20.17')) return null;
  const version = await tools.newest('npm', '10.x');
  if (!version) throw new BuildFailedError('npm 10.x is not published on the npm registry');
  return tools.install('npm', version);
}

function bunPackageName(): string {
  return process.arch === 'arm64' ? '@oven/bun-linux-aarch64' : '@oven/bun-linux-x64';
}

interface Declarations {
  /** Corepack's `packageManager` field, as written. */
  field: string | null;
  /** `devEngines.packageManager` (an object, or the first of a list) naming a manager Slipway runs. */
  devEngines: { name: ManagerName; version: string } | null;
  /** `engines.pnpm`, `engines.yarn`, `engines.bun`. */
  engines: Partial<Record<ManagerName, string>>;
}

/** What a package.json declares of its package manager. */
function declarations(text: string | null): Declarations {
  const none: Declarations = { field: null, devEngines: null, engines: {} };
  if (!text) return none;
  let doc: { packageManager?: unknown; devEngines?: { packageManager?: unknown }; engines?: Record<string, unknown> };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    return none;
  }
  const str = (v: unknown) => (typeof v === 'string' && v.trim() ? v.trim() : null);
  const dev = [doc.devEngines?.packageManager].flat()[0] as { name?: unknown; version?: unknown } | undefined;
  const devName = str(dev?.name);
  const devEngines = devName && ['npm', 'pnpm', 'yarn', 'bun'].includes(devName) ? { name: devName as ManagerName, version: semver.validRange(str(dev?.version) ?? '*') ? (str(dev?.version) ?? '*') : '*' } : null;
  const engines: Declarations['engines'] = {};
  for (const name of ['pnpm', 'yarn', 'bun'] as const) {
    const range = str(doc.engines?.[name]);
    if (range) engines[name] = range;
  }
  return { field: str(doc.packageManager), devEngines, engines };
}

/** "pnpm@9.12.0+sha512.…" → pnpm, 9.12.0. */
function parseField(field: string, where: string): { name: ManagerName; version: string } {
  const match = /^(npm|pnpm|yarn|bun)@([^+\s]+)(?:\+.*)?$/.exec(field);
  if (!match || semver.validRange(match[2]!) === null) {
    throw new BuildFailedError(`packageManager "${field}" in ${where} is not one Slipway can run; write npm@x.y.z, pnpm@x.y.z, yarn@x.y.z or bun@x.y.z`);
  }
  return { name: match[1] as ManagerName, version: match[2]! };
}

async function firstLockfile(dir: string): Promise<[string, ManagerName] | null> {
  for (const entry of LOCKFILES) {
    const stat = await lstat(path.join(dir, entry[0])).catch(() => null);
    if (stat?.isFile()) return entry;
  }
  return null;
}

/** The manager version a lockfile calls for, when the repository names none. */
async function versionFromLockfile(name: ManagerName, file: string, text: string, dir: string): Promise<{ berry: boolean; version: string | null; note?: string }> {
  if (name === 'pnpm') {
    const v = /^lockfileVersion:\s*'?([\d.]+)'?/m.exec(text)?.[1];
    const major = v ? Number.parseInt(v, 10) : 9;
    // lockfile 9.x: pnpm 9 and 10 write it (10 also reads a settings-only pnpm-workspace.yaml, which 9
    // refuses); 6.x: pnpm 8; 5.x: pnpm 7. pnpm 11 changed how settings are read: a repository asks for it.
    const line = major >= 9 ? '10.x' : major >= 6 ? '8.x' : '7.x';
    return { berry: false, version: line, note: `lockfile v${v ?? '?'}: pnpm ${line}` };
  }
  if (name === 'yarn') {
    const yarnrc = await readSmallFile(path.join(dir, '.yarnrc.yml'));
    const berry = yarnrc !== null || /^__metadata:/m.test(text);
    if (!berry) return { berry: false, version: '1.x', note: 'Yarn classic' };
    const pinned = /^yarnPath:\s*['"]?\S*yarn-(\d+\.\d+\.\d+)\.c?js/m.exec(yarnrc ?? '')?.[1];
    return { berry: true, version: pinned ?? '4.x', note: pinned ? `Yarn ${pinned} from yarnPath` : 'Yarn Berry' };
  }
  if (name === 'bun') return { berry: false, version: '1.x' };
  return { berry: false, version: null };
}

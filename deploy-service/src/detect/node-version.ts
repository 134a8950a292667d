// Which Node a build runs with: the request's nodeVersion, else .nvmrc or .node-version, else
// volta.node, else engines.node (the app's folder first, then up to the repository root). The newest
// release of the newest supported line that satisfies the ask (and the package manager's own
// engines.node) is used, from the npm registry's node-linux-* packages; with no ask, the newest
// release of DEFAULT_NODE_LINE.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import { BuildFailedError, readSmallFile } from '@slipway/shared';
import type { ToolCache, ToolPackage } from '../toolchain/tool-cache';

/** The release lines builds may use. */
export const NODE_LINES = [18, 20, 22, 24, 26] as const;
/**
 * With nothing asked: Node 24, an LTS line supported until April 2028 and the one today's tools
 * expect (pnpm 11 needs 22.13 or later). 26 reached LTS only in October 2026; a repository asks for it.
 */
export const DEFAULT_NODE_LINE = 24;

const LTS_NAMES: Record<string, number> = { hydrogen: 18, iron: 20, jod: 22, krypton: 24 };

export interface NodeAsk {
  /** The text as written. */
  text: string;
  /** Where it was written: "nodeVersion", ".nvmrc", "engines.node in apps/web/package.json". */
  source: string;
}

export interface NodeChoice {
  version: string;
  /** The downloaded release, or null: the worker's own Node. */
  tool: ToolPackage | null;
  /** For the log: what was asked and why this version. */
  reason: string;
}

/** The first ask found, looking from `appDir` up to `srcRoot`; null when nothing asks. */
export async function readNodeAsk(srcRoot: string, appDir: string, requested: string | undefined): Promise<NodeAsk | null> {
  if (requested) return { text: requested, source: 'nodeVersion' };
  for (let dir = appDir; ; dir = path.dirname(dir)) {
    const rel = (name: string) => path.relative(srcRoot, path.join(dir, name)) || name;
    for (const name of ['.nvmrc', '.node-version']) {
      const text = await readSmallFile(path.join(dir, name));
      const line = text?.split('\n').map((l) => l.replace(/#.*/, '').trim()).find(Boolean);
      if (line) return { text: line, source: rel(name) };
    }
    const pkg = await readSmallFile(path.join(dir, 'package.json'));
    // Volta's pin is an exact version chosen for the project; engines.node is what it tolerates.
    const pins = pkg ? nodeFields(pkg) : null;
    if (pins?.volta) return { text: pins.volta, source: `volta.node in ${rel('package.json')}` };
    if (pins?.engines) return { text: pins.engines, source: `engines.node in ${rel('package.json')}` };
    if (dir === srcRoot || !dir.startsWith(srcRoot)) return null;
  }
}

/** The ask as a semver range over Node versions; BuildFailedError when it cannot be read. */
export function askRange(ask: NodeAsk): string {
  const text = ask.text.trim().toLowerCase().replace(/^v(?=\d)/, '');
  if (['node', 'latest', 'current', 'stable', 'lts/*', 'lts'].includes(text)) return '*';
  const lts = /^lts\/(\w+)$/.exec(text);
  if (lts) {
    const line = LTS_NAMES[lts[1]!];
    if (!line) throw new BuildFailedError(`Node "${ask.text}" (${ask.source}) is not a release line Slipway knows; use one of ${NODE_LINES.join(', ')}`);
    return semver.validRange(`${line}.x`)!;
  }
  const range = semver.validRange(text);
  if (range === null) throw new BuildFailedError(`Node "${ask.text}" (${ask.source}) is not a version or range that can be read; write e.g. 22, 22.x or >=20`);
  return range;
}

/** What the package manager that runs the build needs of Node (its own engines.node). */
export interface NodeNeed {
  /** "pnpm 11.28.10" */
  who: string;
  range: string;
}

/**
 * Picks (and fetches, when it is not the worker's own) the Node for an ask: the newest release that
 * satisfies the ask (DEFAULT_NODE_LINE with none) and what the package manager needs. With no ask, a
 * manager needing a newer line than the default moves it; an ask it cannot run with fails, naming both.
 */
export async function chooseNode(ask: NodeAsk | null, tools: ToolCache, need: NodeNeed | null = null, packageName = nodePackageName()): Promise<NodeChoice> {
  const own = process.versions.node;
  const asked = ask ? askRange(ask) : `${DEFAULT_NODE_LINE}.x`;
  const needed = need && semver.validRange(need.range) ? need.range : null;
  const supported = (v: string) => NODE_LINES.includes(semver.major(v) as (typeof NODE_LINES)[number]);
  let published: string[];
  try {
    published = (await tools.versions(packageName)).filter(supported);
  } catch (err) {
    if (err instanceof BuildFailedError) throw err;
    // The registry is out of reach: what this worker already holds may still do.
    published = [];
  }
  const usable = [own, ...(published.length > 0 ? published : await tools.cachedVersions(packageName))].filter(supported);
  const newest = (test: (v: string) => boolean) => semver.rsort(usable.filter(test))[0] ?? null;
  const fitsAsk = (v: string) => semver.satisfies(v, asked);
  const fitsNeed = (v: string) => needed === null || semver.satisfies(v, needed);
  let version = newest((v) => fitsAsk(v) && fitsNeed(v));
  let reason = ask ? `${ask.source} asks for "${ask.text}"` : `the default (Node ${DEFAULT_NODE_LINE} LTS); nothing asks for a version (nodeVersion, .nvmrc, .node-version, volta.node, engines.node)`;
  if (needed && version && !semver.satisfies(newest(fitsAsk) ?? version, needed)) reason += `, and ${need!.who} needs Node ${needed}`;
  if (!version && !ask && needed) {
    version = newest(fitsNeed);
    reason = `nothing asks for a version, and ${need!.who} needs Node ${needed}`;
  }
  if (!version) {
    if (ask && needed && newest(fitsAsk)) {
      throw new BuildFailedError(`Node "${ask.text}" (${ask.source}) cannot run ${need!.who}, which needs Node ${needed} (its engines.node); ask for a Node both allow, or another version of ${need!.who.split(' ')[0]}`);
    }
    if (!ask) {
      // Nothing asked and no default release at hand (the registry out of reach, nothing cached).
      if (needed && !semver.satisfies(own, needed)) throw new BuildFailedError(`${need!.who} needs Node ${needed}, and no such release could be fetched from the npm registry`);
      return { version: own, tool: null, reason: `the worker's own: nothing asks for a version and Node ${DEFAULT_NODE_LINE} could not be fetched from the npm registry` };
    }
    const any = published.length > 0 ? semver.maxSatisfying(await tools.versions(packageName), asked) : null;
    const why = any ? `the newest release it allows is ${any}, on a line Slipway does not build with` : 'no Node release satisfies it';
    throw new BuildFailedError(`Node "${ask.text}" (${ask.source}) cannot be used: ${why}; Slipway builds with Node ${NODE_LINES.join(', ')}`);
  }
  if (ask || reason.startsWith('nothing')) reason += ': the newest release that satisfies it';
  if (version === own) return { version, tool: null, reason };
  return { version, tool: await tools.install(packageName, version), reason };
}

export function nodePackageName(): string {
  return `node-linux-${process.arch === 'arm64' ? 'arm64' : 'x64'}`;
}

function nodeFields(text: string): { volta: string | null; engines: string | null } | null {
  const value = (v: unknown) => (typeof v === 'string' && v.trim() ? v.trim() : null);
  try {
    const doc = JSON.parse(text) as { engines?: { node?: unknown }; volta?: { node?: unknown } };
    return { volta: value(doc.volta?.node), engines: value(doc.engines?.node) };
  } catch {
    return null;
  }
}


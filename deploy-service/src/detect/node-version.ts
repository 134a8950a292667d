// Which Node a build runs with: the request's nodeVersion, else .nvmrc or .node-version, else
// engines.node (the app's folder first, then up to the repository root). The newest release of
// the newest supported line that satisfies the ask is used, from the npm registry's node-linux-*
// packages; with no ask, the worker's own Node.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import { BuildFailedError, readSmallFile } from '@slipway/shared';
import type { ToolCache, ToolPackage } from '../toolchain/tool-cache';

/** The release lines builds may use. */
export const NODE_LINES = [18, 20, 22, 24] as const;

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
    const engines = pkg ? engineOf(pkg) : null;
    if (engines) return { text: engines, source: `engines.node in ${rel('package.json')}` };
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

/** Picks (and fetches, when it is not the worker's own) the Node for an ask. */
export async function chooseNode(ask: NodeAsk | null, tools: ToolCache, packageName = nodePackageName()): Promise<NodeChoice> {
  const own = process.versions.node;
  if (!ask) return { version: own, tool: null, reason: `the worker's own; nothing asks for a version (nodeVersion, .nvmrc, .node-version, engines.node)` };
  const range = askRange(ask);
  const supported = (v: string) => NODE_LINES.includes(semver.major(v) as (typeof NODE_LINES)[number]);
  let published: string[];
  try {
    published = (await tools.versions(packageName)).filter(supported);
  } catch (err) {
    if (err instanceof BuildFailedError) throw err;
    // The registry is out of reach: what this worker already holds may still do.
    published = [];
  }
  const usable = published.length > 0 ? published : await tools.cachedVersions(packageName);
  const version = semver.maxSatisfying([own, ...usable].filter(supported), range);
  if (!version) {
    const any = published.length > 0 ? semver.maxSatisfying(await tools.versions(packageName), range) : null;
    const why = any ? `the newest release it allows is ${any}, on a line Slipway does not build with` : 'no Node release satisfies it';
    throw new BuildFailedError(`Node "${ask.text}" (${ask.source}) cannot be used: ${why}; Slipway builds with Node ${NODE_LINES.join(', ')}`);
  }
  const reason = `${ask.source} asks for "${ask.text}": the newest release that satisfies it`;
  if (version === own) return { version, tool: null, reason };
  return { version, tool: await tools.install(packageName, version), reason };
}

export function nodePackageName(): string {
  return `node-linux-${process.arch === 'arm64' ? 'arm64' : 'x64'}`;
}

function engineOf(text: string): string | null {
  try {
    const engines = (JSON.parse(text) as { engines?: { node?: unknown } }).engines;
    return typeof engines?.node === 'string' && engines.node.trim() ? engines.node.trim() : null;
  } catch {
    return null;
  }
}


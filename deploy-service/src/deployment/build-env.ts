// What a build is given besides its sandbox: its memory (what it asks for, up to the worker's
// maximum) and its commands' environment (the request's variables, Slipway's own, and Node's heap
// limit matched to the memory).
import type { Config, DeploymentRecord } from '@slipway/shared';

/** The share of a build's memory Node's heap may grow to (the rest: native memory, other processes). */
const HEAP_SHARE = 0.75;

/** The build's memory: what it asks for (buildMemoryMb) up to the worker's maximum, else the default. */
export function buildMemory(config: Pick<Config, 'buildMemoryBytes' | 'buildMemoryMaxBytes'>, askedMb: number | undefined): { bytes: number; note: string | null } {
  if (askedMb === undefined) return { bytes: config.buildMemoryBytes, note: null };
  const asked = askedMb * 1024 * 1024;
  if (asked <= config.buildMemoryMaxBytes) return { bytes: asked, note: null };
  const most = Math.floor(config.buildMemoryMaxBytes / 1024 / 1024);
  return { bytes: config.buildMemoryMaxBytes, note: `[slipway] memory: buildMemoryMb asks for ${askedMb} MB; this worker gives a build at most ${most} MB (BUILD_MEMORY_MAX_MB)` };
}

/**
 * What every command of the build gets besides the sandbox's own settings: the request's env and
 * Slipway's, and Node's heap limit matched to the build's memory (a heap that outgrows the cap is
 * killed without a word; at its limit Node says it ran out) unless the request sets its own.
 */
export function buildEnv(record: Pick<DeploymentRecord, 'id' | 'commit' | 'branch' | 'url'>, own: Readonly<Record<string, string>>, memoryBytes: number): Record<string, string> {
  const system: Record<string, string> = { SLIPWAY_DEPLOYMENT_ID: record.id, SLIPWAY_URL: record.url };
  if (record.commit) system.SLIPWAY_COMMIT = record.commit;
  if (record.branch) system.SLIPWAY_BRANCH = record.branch;
  const options = own.NODE_OPTIONS ?? '';
  const heap = /--max-old-space-size[= ]/.test(options) ? options : `${options} --max-old-space-size=${Math.floor((memoryBytes / 1024 / 1024) * HEAP_SHARE)}`.trim();
  return { ...own, NODE_OPTIONS: heap, ...system };
}


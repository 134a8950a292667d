// What a build runs: its Node, its package manager, and its commands, each choice with the reason
// the log gives for it. The request's own commands always win over what is detected.
import type { DeploymentRecord } from '@slipway/shared';
import { chooseNode, readNodeAsk, type NodeChoice } from './node-version';
import { detectManager, execBin, installCommand, managerPackage, resolveManager, runScript, type Manager } from './package-manager';
import { detectPreset, type Preset } from './presets';
import type { ToolCache } from '../toolchain/tool-cache';
import type { PackageJson } from './package-json';

export interface BuildPlan {
  steps: string[][];
  /** The framework found, or null. */
  preset: Preset | null;
  node: NodeChoice;
  /** The package manager, when a detected command uses it, with the version that runs. */
  manager: { found: Manager; version: string } | null;
  /** The detected install command among the steps (a cache hit may skip it); null for the request's own. */
  install: string[] | null;
  /** Folders to put first on PATH (the chosen Node, then the package manager). */
  toolPath: string[];
  /** Lines for the build log: what was detected and why. */
  notes: string[];
}

export async function planBuild(
  record: Pick<DeploymentRecord, 'installCommand' | 'buildCommand' | 'nodeVersion' | 'outputDir'>,
  srcRoot: string,
  appDir: string,
  pkg: PackageJson | null,
  tools: ToolCache,
): Promise<BuildPlan> {
  if (!pkg && !record.installCommand && !record.buildCommand) {
    // Nothing of the repository's runs, so no Node is fetched for it (Slipway's own steps are sh).
    const node = { version: process.versions.node, tool: null, reason: 'none is fetched' };
    return { steps: [], preset: null, node, manager: null, install: null, toolPath: [], notes: ['[slipway] nothing to build (no package.json, installCommand or buildCommand): the files are published as they are'] };
  }
  const ask = await readNodeAsk(srcRoot, appDir, record.nodeVersion);

  const manager = await detectManager(srcRoot, appDir);
  const preset = await detectPreset(appDir, pkg);
  const steps = planCommands(record, pkg, manager, preset);
  // Only fetched when a detected command uses it (a request's own commands may not); its release is
  // read first, as its own engines.node may narrow the Node chosen.
  const uses = steps.some((argv) => argv[0] === manager.name);
  const release = uses ? await resolveManager(manager, tools) : null;
  const need = release?.nodeRange ? { who: `${manager.name} ${release.version}`, range: release.nodeRange } : null;
  const node = await chooseNode(ask, tools, need);
  const notes = [nodeNote(node)];
  const toolPath = node.tool ? [node.tool.bin] : [];
  const build = record.buildCommand ? "the request's buildCommand" : (steps.at(-1)?.join(' ') ?? 'no build');
  // The folder named is the one the collect step looks for first; the output line after it names the one it took.
  const publishes = record.outputDir ? `${record.outputDir}/ (outputDir)` : preset?.outputs[0] ? `${preset.outputs[0].dir}/ (${preset.outputs[0].why})` : 'the first usual output folder the build writes';
  if (preset) notes.push(`[slipway] framework: ${preset.name} (${preset.reason}); builds with ${build}, publishes ${publishes}`);
  else if (steps.length > 0 || record.outputDir) notes.push(`[slipway] framework: none detected; builds with ${build}, publishes ${publishes}`);
  let used: BuildPlan['manager'] = null;
  if (uses) {
    const tool = await managerPackage(release, tools, node.version);
    used = { found: manager, version: tool?.version ?? `worker-node-${process.versions.node}` };
    notes.push(`[slipway] package manager: ${manager.name} ${tool?.version ?? "(the worker's npm)"}, from ${manager.reason}`);
    if (tool) toolPath.push(tool.bin);
    if (manager.name === 'npm' && manager.lockfile === null && hasDependencies(pkg)) {
      notes.push('[slipway] no lockfile: dependencies are resolved afresh (commit a lockfile for repeatable builds)');
    }
  }
  const install = record.installCommand ? null : (steps.find((argv) => argv.join(' ') === installCommand(manager).join(' ')) ?? null);
  return { steps, preset, node, manager: used, install, toolPath, notes };
}

/**
 * The commands to run, as argument vectors: the request's own, else the manager's install (frozen
 * with a lockfile) when there is something to install, and its `run build` when there is a build script.
 */
export function planCommands(record: Pick<DeploymentRecord, 'installCommand' | 'buildCommand'>, pkg: PackageJson | null, manager: Manager, preset: Preset | null = null): string[][] {
  const steps: string[][] = [];
  if (record.installCommand) steps.push(record.installCommand);
  else if (pkg && (hasDependencies(pkg) || manager.lockfile !== null)) steps.push(installCommand(manager));
  const script = preset?.script ?? 'build';
  if (record.buildCommand) steps.push(record.buildCommand);
  else if (pkg && typeof pkg.scripts?.[script] === 'string') steps.push(runScript(manager, script));
  else if (preset?.bin?.[0]) steps.push(execBin(manager, preset.bin[0], ...preset.bin.slice(1)));
  return steps;
}

function nodeNote(node: NodeChoice): string {
  return `[slipway] node ${node.version}: ${node.reason}`;
}

function hasDependencies(pkg: PackageJson | null): boolean {
  return Object.keys(pkg?.dependencies ?? {}).length + Object.keys(pkg?.devDependencies ?? {}).length > 0;
}

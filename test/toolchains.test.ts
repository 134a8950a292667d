// Real repositories build: each package manager from its lockfile (frozen), the Node version a
// repository asks for, and clear failures for what cannot be honoured. Dependencies come from the
// npm registry through the build's egress proxy; the managers and Node releases through the
// worker's tool cache.
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseNode } from '../deploy-service/src/detect/node-version';
import { managerPackage, resolveManager, type Manager, type ManagerName } from '../deploy-service/src/detect/package-manager';
import { ToolCache } from '../deploy-service/src/toolchain/tool-cache';
import { projectWithLockfile, withLockfile, type FixtureManager } from './harness/lockfiles';
import { deployRepo, stackTools, startStack, type Stack } from './harness/stack';

let stack: Stack;
let tools: ToolCache;
beforeAll(async () => {
  // Yarn classic's registry, which its lockfiles name, resolves to a reserved address on the test
  // machines (npm's own needs no entry: the worker trusts the registry it is configured with).
  stack = await startStack({ env: { BUILD_EGRESS_PRIVATE_HOSTS: 'registry.yarnpkg.com', BUILD_TIMEOUT_SECONDS: '180' } });
  tools = stackTools(stack);
});
afterAll(async () => {
  await stack?.close();
});

const deployed = (files: Record<string, string>, body: Record<string, unknown> = {}) => deployRepo(stack, 'toolchain', files, body);

describe('package managers', () => {
  it.each([
    ['npm', /^npm\/\d+/, '$ npm ci', /package manager: npm .*from package-lock.json/],
    ['pnpm', /^pnpm\/10\./, '$ pnpm install --frozen-lockfile', /package manager: pnpm 10\.\d+\.\d+, from pnpm-lock.yaml \(lockfile v9.0: pnpm 10.x\)/],
    ['yarn-classic', /^yarn\/1\.22/, '$ yarn install --frozen-lockfile', /package manager: yarn 1\.22\.\d+, from yarn.lock \(Yarn classic\)/],
    ['yarn-berry', /^yarn\/4\./, '$ yarn install --immutable', /package manager: yarn 4\.\d+\.\d+, from yarn.lock \(Yarn Berry\)/],
    ['bun', /^bun\/1\./, '$ bun install --frozen-lockfile', /package manager: bun 1\.\d+\.\d+, from bun.lock/],
  ] as const)('%s: installs from the lockfile, frozen, and runs the build with the same manager', async (manager, agent, install, detected) => {
    const { id, record, log } = await deployed(await projectWithLockfile(manager as FixtureManager, tools));
    expect(record.status, `${record.error}\n${log}`).toBe('deployed');
    expect(log).toMatch(detected);
    expect(log).toContain(install);
    const page = JSON.parse((await stack.site(id, '/')).body.toString());
    expect(page.isNumber).toBe('7.0.0');
    expect(page.agent).toMatch(agent);
  });

  it('honours packageManager over the lockfile, at the exact version asked', async () => {
    const files = await projectWithLockfile('pnpm', tools, { packageManager: 'pnpm@9.15.0' });
    const { id, record, log } = await deployed(files);
    expect(record.status, record.error).toBe('deployed');
    expect(log).toContain('[slipway] package manager: pnpm 9.15.0, from packageManager "pnpm@9.15.0" in package.json');
    expect(JSON.parse((await stack.site(id, '/')).body.toString()).agent).toMatch(/^pnpm\/9\.15\.0 /);
  });

  it('builds one app of a pnpm monorepo from its rootDir, with its workspace package, from the root lockfile', async () => {
    const pkg = (value: object) => JSON.stringify(value, null, 2);
    const files = await withLockfile('pnpm', tools, {
      'package.json': pkg({ name: 'mono', private: true, packageManager: 'pnpm@9.15.0' }),
      'pnpm-workspace.yaml': "packages:\n  - 'apps/*'\n  - 'packages/*'\n",
      'apps/web/package.json': pkg({ name: '@mono/web', private: true, scripts: { build: 'node build.js' }, dependencies: { '@mono/ui': 'workspace:*', 'is-number': '7.0.0' } }),
      'apps/web/build.js': "const fs = require('fs'); fs.mkdirSync('dist'); fs.writeFileSync('dist/index.html', require('@mono/ui')(require('is-number')(7)));",
      'packages/ui/package.json': pkg({ name: '@mono/ui', version: '1.0.0', main: 'index.js' }),
      'packages/ui/index.js': "module.exports = (ok) => '<h1>ui says ' + ok + '</h1>';",
      'apps/admin/package.json': pkg({ name: '@mono/admin', private: true, dependencies: { 'is-number': '7.0.0' } }),
    });
    const { id, record, log } = await deployed(files, { rootDir: 'apps/web' });
    expect(record.status, `${record.error}\n${log}`).toBe('deployed');
    expect(log).toContain('[slipway] package manager: pnpm 9.15.0, from packageManager "pnpm@9.15.0" in package.json');
    expect((await stack.site(id, '/')).body.toString()).toBe('<h1>ui says true</h1>');
  });

  it('builds a pnpm 10 repository whose pnpm-workspace.yaml holds settings only (pnpm 9 refuses it)', async () => {
    const files = await projectWithLockfile('pnpm', tools);
    files['pnpm-workspace.yaml'] = '# settings only, as pnpm 10 writes them\nonlyBuiltDependencies:\n  - esbuild\nstrictPeerDependencies: false\n';
    const { id, record, log } = await deployed(files);
    expect(record.status, `${record.error}\n${log}`).toBe('deployed');
    expect(JSON.parse((await stack.site(id, '/')).body.toString()).agent).toMatch(/^pnpm\/10\./);
  });

  it('runs pnpm 12, a native program, from its platform package (not the placeholder its install step replaces)', async () => {
    // Asked for by engines.pnpm: pnpm 12 records a packageManager pin in its lockfile only when the
    // registry publishes what it checks the pin against, which the test machines' registry does not.
    const files = await projectWithLockfile('pnpm', tools, { engines: { pnpm: '12.x' } });
    const { id, record, log } = await deployed(files);
    expect(record.status, `${record.error}\n${log}`).toBe('deployed');
    expect(log).toMatch(/\[slipway\] package manager: pnpm 12\.\d+\.\d+, from engines.pnpm "12.x" in package.json/);
    expect(JSON.parse((await stack.site(id, '/')).body.toString()).agent).toMatch(/^pnpm\/12\.\d+\.\d+ /);
  });

  it('a failed Yarn install ends the deployment, frees the slot and leaves no build folder (the hang issue 21 saw)', async () => {
    // Yarn keeps its registry tunnels open when it gives up: the worker hung on them for good.
    const failing = await deployed({
      'package.json': JSON.stringify({ name: 'yarn-fails', private: true, packageManager: 'yarn@1.22.22', scripts: { build: 'node build.js' }, dependencies: { 'is-number': '7.0.0', '@slipway-test/no-such-package': '1.0.0' } }),
      'build.js': "require('fs').mkdirSync('dist'); require('fs').writeFileSync('dist/index.html', 'never');",
    });
    expect(failing.record.status).toBe('failed');
    expect(failing.record.error).toMatch(/no-such-package/);
    expect(Date.parse(failing.record.finishedAt!) - Date.parse(failing.record.startedAt!)).toBeLessThan(60_000);
    expect((await readdir(stack.config.workDir!)).filter((name) => name.startsWith(`slipway-build-${failing.id}-`))).toEqual([]);
    // The same slot builds the next one.
    const next = await deployed(await projectWithLockfile('yarn-classic', tools));
    expect(next.record.status, next.record.error).toBe('deployed');
  });

  it('fails a lockfile that does not match package.json with the manager\'s own reason', async () => {
    const files = await projectWithLockfile('pnpm', tools);
    const pkg = JSON.parse(files['package.json']!);
    pkg.dependencies['is-odd'] = '3.0.1'; // added without updating the lockfile
    const { record } = await deployed({ ...files, 'package.json': JSON.stringify(pkg) });
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(/^ERR_PNPM_OUTDATED_LOCKFILE Cannot install with "frozen-lockfile" because pnpm-lock.yaml is not up to date with .*package.json \("pnpm install --frozen-lockfile" exited with code 1\)$/);
  });
});

describe('Node versions', () => {
  const nodeSite = (pkg: Record<string, unknown>, extra: Record<string, string> = {}) => ({
    'package.json': JSON.stringify({ name: 'node-site', private: true, scripts: { build: 'node build.js' }, ...pkg }),
    'build.js': "require('fs').mkdirSync('dist'); require('fs').writeFileSync('dist/index.html', process.version);",
    ...extra,
  });

  it('builds with the newest release of the line engines.node asks for, fetched and verified', async () => {
    const { id, record, log } = await deployed(nodeSite({ engines: { node: '22.x' } }));
    expect(record.status, record.error).toBe('deployed');
    const version = (await stack.site(id, '/')).body.toString();
    expect(version).toMatch(/^v22\.\d+\.\d+$/);
    expect(log).toContain(`[slipway] node ${version.slice(1)}: engines.node in package.json asks for "22.x": the newest release that satisfies it`);
  });

  it('builds with the newest Node 24 when nothing asks, and with volta.node when it is set', async () => {
    const plain = await deployed(nodeSite({}));
    expect(plain.record.status, plain.record.error).toBe('deployed');
    const version = (await stack.site(plain.id, '/')).body.toString();
    expect(version).toMatch(/^v24\.\d+\.\d+$/);
    expect(plain.log).toContain(`[slipway] node ${version.slice(1)}: the default (Node 24 LTS); nothing asks for a version`);
    const volta = await deployed(nodeSite({ volta: { node: '22.11.0' }, engines: { node: '>=18' } }));
    expect((await stack.site(volta.id, '/')).body.toString()).toBe('v22.11.0');
    expect(volta.log).toContain('[slipway] node 22.11.0: volta.node in package.json asks for "22.11.0"');
  });

  it('lets nodeVersion in the request win over .nvmrc, and .nvmrc over engines', async () => {
    const files = nodeSite({ engines: { node: '>=18' } }, { '.nvmrc': '20\n' });
    const fromNvmrc = await deployed(files);
    expect((await stack.site(fromNvmrc.id, '/')).body.toString()).toMatch(/^v20\./);
    expect(fromNvmrc.log).toMatch(/\[slipway\] node 20\.\d+\.\d+: \.nvmrc asks for "20"/);
    const requested = await deployed(files, { nodeVersion: '22' });
    expect((await stack.site(requested.id, '/')).body.toString()).toMatch(/^v22\./);
  });

  it.each([
    ['a line Slipway does not build with', '14.x', /^Node "14.x" \(engines.node in package.json\) cannot be used: the newest release it allows is 14\.\d+\.\d+, on a line Slipway does not build with; Slipway builds with Node 18, 20, 22, 24, 26$/],
    ['an ask that cannot be read', 'the latest please', /^Node "the latest please" \(engines.node in package.json\) is not a version or range that can be read/],
  ])('fails %s with the reason', async (_name, ask, reason) => {
    const { record } = await deployed(nodeSite({ engines: { node: ask } }));
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(reason);
  });
});

describe('every release line of every package manager runs from its registry package', () => {
  const run = promisify(execFile);
  const lines: [ManagerName, boolean, string, string][] = [
    ['npm', false, '9', 'npm'], ['npm', false, '10', 'npm'], ['npm', false, '11', 'npm'], ['npm', false, '12', 'npm'],
    ['pnpm', false, '7', 'pnpm'], ['pnpm', false, '8', 'pnpm'], ['pnpm', false, '9', 'pnpm'], ['pnpm', false, '10', 'pnpm'], ['pnpm', false, '11', 'pnpm'], ['pnpm', false, '12', 'pnpm'],
    ['yarn', false, '1', 'yarn'], ['yarn', true, '2', 'yarn'], ['yarn', true, '3', 'yarn'], ['yarn', true, '4', 'yarn'],
    ['bun', false, '1', 'bun'],
  ];
  it.each(lines)('%s %s: the newest %s.x answers --version', async (name, berry, line, command) => {
    const manager: Manager = { name, berry, version: `${line}.x`, lockfile: null, root: '/', reason: 'the test' };
    const release = await resolveManager(manager, tools);
    const need = release?.nodeRange ? { who: `${name} ${release.version}`, range: release.nodeRange } : null;
    const node = await chooseNode(null, tools, need);
    const tool = await managerPackage(release, tools, node.version);
    const PATH = [node.tool?.bin, tool!.bin, '/usr/bin', '/bin'].filter(Boolean).join(':');
    const { stdout } = await run(`${tool!.bin}/${command}`, ['--version'], { env: { PATH, HOME: stack.config.workDir!, COREPACK_ENABLE_STRICT: '0' }, cwd: stack.config.workDir!, timeout: 60_000 });
    expect(stdout.trim()).toMatch(new RegExp(`^v?${line}\\.\\d+\\.\\d+`));
  }, 180_000);
});

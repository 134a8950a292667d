// Real repositories build: each package manager from its lockfile (frozen), the Node version a
// repository asks for, and clear failures for what cannot be honoured. Dependencies come from the
// npm registry through the build's egress proxy; the managers and Node releases through the
// worker's tool cache.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToolCache } from '../deploy-service/src/toolchain/tool-cache';
import { projectWithLockfile, withLockfile, type FixtureManager } from './harness/lockfiles';
import { deployRepo, stackTools, registryHost, startStack, type Stack } from './harness/stack';

let stack: Stack;
let tools: ToolCache;
beforeAll(async () => {
  // npm's registry (and Yarn classic's, which its lockfiles name) resolve to reserved addresses on the test machines.
  stack = await startStack({ env: { BUILD_EGRESS_PRIVATE_HOSTS: `${registryHost()},registry.yarnpkg.com`, BUILD_TIMEOUT_SECONDS: '180' } });
  tools = stackTools(stack);
});
afterAll(async () => {
  await stack?.close();
});

const deployed = (files: Record<string, string>, body: Record<string, unknown> = {}) => deployRepo(stack, 'toolchain', files, body);

describe('package managers', () => {
  it.each([
    ['npm', /^npm\/\d+/, '$ npm ci', /package manager: npm .*from package-lock.json/],
    ['pnpm', /^pnpm\/9\./, '$ pnpm install --frozen-lockfile', /package manager: pnpm 9\.\d+\.\d+, from pnpm-lock.yaml \(lockfile v9.0: pnpm 9.x\)/],
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

  it('lets nodeVersion in the request win over .nvmrc, and .nvmrc over engines', async () => {
    const files = nodeSite({ engines: { node: '>=18' } }, { '.nvmrc': '20\n' });
    const fromNvmrc = await deployed(files);
    expect((await stack.site(fromNvmrc.id, '/')).body.toString()).toMatch(/^v20\./);
    expect(fromNvmrc.log).toMatch(/\[slipway\] node 20\.\d+\.\d+: \.nvmrc asks for "20"/);
    const requested = await deployed(files, { nodeVersion: '22' });
    expect((await stack.site(requested.id, '/')).body.toString()).toMatch(/^v22\./);
  });

  it.each([
    ['a line Slipway does not build with', '14.x', /^Node "14.x" \(engines.node in package.json\) cannot be used: the newest release it allows is 14\.\d+\.\d+, on a line Slipway does not build with; Slipway builds with Node 18, 20, 22, 24$/],
    ['an ask that cannot be read', 'the latest please', /^Node "the latest please" \(engines.node in package.json\) is not a version or range that can be read/],
  ])('fails %s with the reason', async (_name, ask, reason) => {
    const { record } = await deployed(nodeSite({ engines: { node: ask } }));
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(reason);
  });
});

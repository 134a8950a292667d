// Fixture projects with real dependencies from the npm registry and the lockfile each package
// manager writes for them, made by running that manager (fetched through the worker's own tool
// cache, so the tests and the builds share one download).
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ToolCache } from '../../deploy-service/src/toolchain/tool-cache';
import { resolveManager } from '../../deploy-service/src/detect/package-manager';
import { npmRegistry } from './stack';

const run = promisify(execFile);

export type FixtureManager = 'npm' | 'pnpm' | 'yarn-classic' | 'yarn-berry' | 'bun';

/** The manager's package and version range, and the files of its lockfile. */
const MANAGERS: Record<FixtureManager, { pkg: string | null; range: string; lockfiles: string[]; install: string[] }> = {
  npm: { pkg: null, range: '', lockfiles: ['package-lock.json'], install: ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'] },
  pnpm: { pkg: 'pnpm', range: '10.x', lockfiles: ['pnpm-lock.yaml'], install: ['install', '--lockfile-only', '--ignore-scripts'] },
  'yarn-classic': { pkg: 'yarn', range: '1.x', lockfiles: ['yarn.lock'], install: ['install', '--ignore-scripts', '--no-progress', '--non-interactive'] },
  'yarn-berry': { pkg: '@yarnpkg/cli-dist', range: '4.x', lockfiles: ['yarn.lock', '.yarnrc.yml'], install: ['install', '--mode=update-lockfile'] },
  bun: { pkg: process.arch === 'arm64' ? '@oven/bun-linux-aarch64' : '@oven/bun-linux-x64', range: '1.x', lockfiles: ['bun.lock'], install: ['install', '--lockfile-only'] },
};

/**
 * A project that depends on is-number (no dependencies of its own, so installs stay small) and whose
 * build writes dist/index.html with the dependency's version, the Node version and the user agent
 * of the manager that ran the script. Returns its files, lockfile included.
 */
export async function projectWithLockfile(manager: FixtureManager, tools: ToolCache, extra: Record<string, unknown> = {}): Promise<Record<string, string>> {
  const packageJson = JSON.stringify({ name: `fixture-${manager}`, version: '1.0.0', private: true, scripts: { build: 'node build.js' }, dependencies: { 'is-number': '7.0.0' }, ...extra }, null, 2);
  return withLockfile(manager, tools, {
    'package.json': packageJson,
    'build.js': `const fs = require('fs');
const isNumber = require('is-number');
fs.mkdirSync('dist', { recursive: true });
fs.writeFileSync('dist/index.html', JSON.stringify({ isNumber: isNumber(42) && require('is-number/package.json').version, node: process.version, agent: process.env.npm_config_user_agent || '' }));
`,
  });
}

/** `files` plus the lockfile `manager` writes for them (run in a scratch folder, scripts off). */
export async function withLockfile(manager: FixtureManager, tools: ToolCache, files: Record<string, string>): Promise<Record<string, string>> {
  const spec = MANAGERS[manager];
  const out = { ...files };
  const dir = await mkdtemp(path.join(tmpdir(), `slipway-lock-${manager}-`));
  try {
    for (const [rel, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await writeFile(path.join(dir, rel), text);
    }
    // The registry npm is configured with (Berry's own default would be another host).
    if (manager === 'yarn-berry') await writeFile(path.join(dir, '.yarnrc.yml'), `enableTelemetry: false\nnpmRegistryServer: "${npmRegistry()}"\n`);
    let argv: string[];
    if (spec.pkg === null) argv = ['npm', ...spec.install];
    else {
      // The release a packageManager field or engines.pnpm asks for writes its lockfile (pnpm 11 and later record themselves in it).
      const manifest = JSON.parse(files['package.json'] ?? '{}') as { packageManager?: string; engines?: { pnpm?: string } };
      const pinned = manager === 'pnpm' ? (/^pnpm@(\d+\.\d+\.\d+)/.exec(manifest.packageManager ?? '')?.[1] ?? manifest.engines?.pnpm) : undefined;
      const release = manager === 'pnpm' ? await resolveManager({ name: 'pnpm', berry: false, version: pinned ?? spec.range, lockfile: null, root: dir, reason: 'the fixture' }, tools) : null;
      const tool = release ? await tools.install(release.name, release.version, release.commands) : await tools.install(spec.pkg, (await tools.newest(spec.pkg, spec.range))!);
      argv = [path.join(tool.bin, manager.startsWith('yarn') ? 'yarn' : manager), ...spec.install];
    }
    await run(argv[0]!, argv.slice(1), { cwd: dir, env: { ...process.env, CI: '1', YARN_ENABLE_TELEMETRY: '0', COREPACK_ENABLE_STRICT: '0', npm_config_manage_package_manager_versions: 'false' }, timeout: 120_000 });
    for (const name of spec.lockfiles) out[name] = await readFile(path.join(dir, name), 'utf8');
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// Containment, round 3: what a build leaves behind is hostile data. Each case is a repository an
// attacker would push, built by a real worker process running as root: a rootDir swapped for a link
// to a root-only host folder, a FIFO where the cache archive goes, one 700 MB log line, a build that
// fills the disk or its inodes, a preview branch that rewrites node_modules for production's next
// build, and a cancel that must reach the publish.
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageKeys } from '@slipway/shared';
import { staticSite } from './harness/fixtures';
import { withLockfile } from './harness/lockfiles';
import { stackTools, startStack, type Stack } from './harness/stack';
import { spawnWorkerProcess, waitUntil, type WorkerProcess } from './harness/worker-process';

const CANARY = `canary-${Math.random().toString(36).slice(2)}`;
let stack: Stack;
let worker: WorkerProcess;

beforeAll(async () => {
  stack = await startStack({
    workers: 0,
    env: {
      BUILD_TIMEOUT_SECONDS: '120',
      // Large enough that the 700 MB line is read whole (the flood stop is 100 × this).
      MAX_LOG_BYTES: '10000000',
      BUILD_DISK_MB: '256',
      BUILD_DISK_INODES: '20000',
    },
  });
  worker = spawnWorkerProcess(stack.env);
  await worker.ready();
}, 120_000);
afterAll(async () => {
  await worker?.kill('SIGKILL');
  await stack?.close();
});

async function logOf(id: string): Promise<string> {
  return (await stack.queue.readLog(id, '-', 100_000)).lines.join('\n');
}

async function published(id: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const { key } of stack.storage.list(`${storageKeys.dist(id)}/`)) keys.push(key);
  return keys;
}

/** A root-only folder on the host (0700, its files 0600), as the worker's own secrets would be. */
async function rootOnlyFolder(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(stack.config.workDir!, 'root-only-'));
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), text, { mode: 0o600 });
  }
  await chmod(dir, 0o700);
  return dir;
}

describe('nothing a build leaves behind reaches root', () => {
  it('a rootDir swapped for a link to a root-only host folder publishes nothing of it, and the error names nothing there', async () => {
    const withSite = await rootOnlyFolder({ 'dist/index.html': '<h1>host</h1>', 'dist/secret.txt': CANARY });
    const withNames = await rootOnlyFolder({ 'dist/other-tenant-build-7f3a.txt': 'x', 'dist/credentials.json': CANARY });
    for (const target of [withSite, withNames, '/etc/ssl']) {
      const repoUrl = await stack.repo(`swap-root-${path.basename(target)}`, {
        'app/package.json': JSON.stringify({ name: 'app', private: true, scripts: { build: 'node build.js' } }),
        'app/build.js': `const fs = require('fs'); fs.renameSync('/build/src/app', '/build/src/app-moved'); fs.symlinkSync(${JSON.stringify(target)}, '/build/src/app'); console.log('swapped');`,
      });
      const id = await stack.deploy({ repoUrl, rootDir: 'app', outputDir: 'dist' });
      const record = await stack.waitFor(id);
      expect(record.status).toBe('failed');
      expect(record.error).toMatch(/rootDir "app" is no longer a folder of the repository after the build/);
      expect(await published(id)).toEqual([]);
      const all = `${record.error}\n${await logOf(id)}`;
      for (const leak of [CANARY, 'other-tenant-build-7f3a', 'credentials.json', path.basename(target), 'ca-certificates']) expect(all).not.toContain(leak);
    }
  });

  it('a FIFO where the cache archive goes does not hang the slot: the deployment ends and the next one builds', async () => {
    const repoUrl = await stack.repo('fifo-cache', {
      'package.json': JSON.stringify({ name: 'fifo', private: true, scripts: { build: 'node build.js' } }),
      'package-lock.json': JSON.stringify({ name: 'fifo', lockfileVersion: 3, requires: true, packages: { '': { name: 'fifo' } } }),
      'build.js': `
const fs = require('fs');
const { execFileSync } = require('child_process');
fs.rmSync('node_modules', { recursive: true, force: true });
for (const name of ['deps', 'packages', 'build']) execFileSync('mkfifo', ['/build/home/.slipway-cache-' + name + '.tgz']);
fs.mkdirSync('dist');
fs.writeFileSync('dist/index.html', 'fifo');
`,
    });
    const id = await stack.deploy({ repoUrl });
    const next = await stack.deploy({ repoUrl: await stack.repo('after-fifo', staticSite()) });
    const record = await stack.waitFor(id, undefined, 60_000);
    expect(record.status, record.error).toBe('deployed');
    expect((await stack.waitFor(next, undefined, 60_000)).status).toBe('deployed');
  });

  it('one 700 MB log line without a newline is cut; the worker lives, its memory bounded', async () => {
    const repoUrl = await stack.repo('long-line', {
      'build.js': `
const fs = require('fs');
const chunk = Buffer.alloc(1 << 20, 'y');
for (let i = 0; i < 700; i++) process.stdout.write(chunk);
process.stdout.write('\\nafter the line\\n');
fs.mkdirSync('dist');
fs.writeFileSync('dist/index.html', 'long line');
`,
    });
    const id = await stack.deploy({ repoUrl, buildCommand: 'node build.js' });
    const record = await stack.waitFor(id, undefined, 120_000);
    expect(worker.child.exitCode).toBeNull();
    expect(record.status, record.error).toBe('deployed');
    // Every byte read counts: the line alone is 70 times MAX_LOG_BYTES, so the log is cut at it.
    const log = await logOf(id);
    expect(log).toContain('[slipway] log cut here: it passed 10,000,000 bytes (MAX_LOG_BYTES); the build goes on');
    expect(log).not.toMatch(/y{4001}/);
    const status = await readFile(`/proc/${worker.pid}/status`, 'utf8');
    const peakMb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)![1]) / 1024;
    console.log(`worker peak RSS after a 700 MB line: ${peakMb.toFixed(0)} MB`);
    expect(peakMb).toBeLessThan(400);
  });

  it.each([
    ['BUILD_DISK_MB', "const b = Buffer.alloc(1 << 20); const fd = fs.openSync('big.bin', 'w'); for (let i = 0; i < 400; i++) fs.writeSync(fd, b);", /wrote more than 256 MB to its disk \(BUILD_DISK_MB\)/],
    ['BUILD_DISK_INODES', "fs.mkdirSync('many'); for (let i = 0; i < 40000; i++) fs.writeFileSync('many/' + i, '');", /made more than 20,000 files and folders \(BUILD_DISK_INODES\)/],
  ])('a build that writes past %s fails naming it, and its space is freed', async (_setting, script, reason) => {
    const repoUrl = await stack.repo(`fill-${_setting}`, { 'build.js': `const fs = require('fs'); ${script} fs.mkdirSync('dist'); fs.writeFileSync('dist/index.html', 'full');` });
    const id = await stack.deploy({ repoUrl, buildCommand: 'node build.js' });
    const record = await stack.waitFor(id, undefined, 120_000);
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(reason);
    expect(await published(id)).toEqual([]);
    // Nothing of it stays: no build folder, no mounted disk.
    await waitUntil('the build folder removed', async () => ((await readdir(stack.config.workDir!)).some((n) => n.startsWith(`slipway-build-${id}`)) ? undefined : true));
    expect(execFileSync('cat', ['/proc/mounts'], { encoding: 'utf8' })).not.toContain(`slipway-build-${id}`);
  });
});

describe('one build cannot change what another gets', () => {
  it("a preview branch cannot poison production's build cache, nor can a plain POST /deploy of the same repository", async () => {
    const tools = stackTools(stack);
    const base = {
      'package.json': JSON.stringify({ name: 'poison', version: '1.0.0', private: true, scripts: { build: 'node build.js' }, dependencies: { 'is-number': '7.0.0' } }, null, 2),
    };
    const clean = await withLockfile('npm', tools, {
      ...base,
      'build.js': "const fs = require('fs'); fs.mkdirSync('dist', { recursive: true }); fs.writeFileSync('dist/index.html', 'is-number says ' + require('is-number')(5));",
    });
    const evil = {
      ...clean,
      'build.js': "const fs = require('fs'); fs.writeFileSync(require.resolve('is-number'), 'module.exports = () => \"POISONED\";'); fs.mkdirSync('dist', { recursive: true }); fs.writeFileSync('dist/index.html', 'evil');",
    };
    const repoUrl = await stack.repo('poison', clean, { extraBranches: { evil } });
    expect((await stack.request('POST', '/projects', { name: 'poison', repoUrl, productionBranch: 'main' })).status).toBe(201);
    const deployProject = async (body: Record<string, unknown>) => {
      const res = await stack.request('POST', '/projects/poison/deployments', body);
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      const record = await stack.waitFor(res.body.id, undefined, 180_000);
      expect(record.status, `${record.error}\n${await logOf(res.body.id)}`).toBe('deployed');
      return res.body.id as string;
    };
    await deployProject({});
    expect((await stack.site('poison', '/')).body.toString()).toBe('is-number says true');
    // The preview may start from production's cache; what it does to node_modules stays its own.
    const preview = await deployProject({ branch: 'evil' });
    const plain = await stack.deploy({ repoUrl, branch: 'evil' });
    expect((await stack.waitFor(plain, undefined, 180_000)).status).toBe('deployed');
    const again = await deployProject({});
    expect((await stack.site('poison', '/')).body.toString()).toBe('is-number says true');
    expect(await logOf(preview)).toMatch(/cache: .*production's/);
    expect(await logOf(again)).toMatch(/cache: hit/);
  });
});

describe('cancel reaches every phase', () => {
  it('a deployment canceled while it publishes stops there, and nothing of it is served', async () => {
    const repoUrl = await stack.repo('slow-publish', {
      'build.js': "const fs = require('fs'); fs.mkdirSync('dist/files', { recursive: true }); fs.writeFileSync('dist/index.html', 'many'); for (let i = 0; i < 3000; i++) fs.writeFileSync('dist/files/' + i + '.txt', 'file ' + i);",
    });
    const id = await stack.deploy({ repoUrl, buildCommand: 'node build.js' });
    await waitUntil('the publish to start', async () => ((await logOf(id)).includes('[slipway] publishing') ? true : undefined), 60_000);
    expect((await stack.post(`/deployments/${id}/cancel`)).status).toBe(202);
    const record = await stack.waitFor(id, undefined, 20_000);
    expect(record.status).toBe('canceled');
    expect((await stack.site(id, '/')).status).toBe(404);
    // What was uploaded before the cancel is removed right after it is recorded.
    await waitUntil('the partial upload removed', async () => ((await published(id)).length === 0 ? true : undefined), 20_000);
  });
});

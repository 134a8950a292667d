// Hostile repositories: builds that try to read the worker's secrets, write outside their folder,
// publish host files through symlinks, never exit, or print without end. Each is contained, and the
// test proves it by looking for the secret values in the log, the output and everything in S3.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupKeys, siteKeys, storageKeys } from '@slipway/shared';
import { SYMLINK_PREFIX } from './harness/git-server';
import { startStack, storedSource, type Stack } from './harness/stack';
import { spawnWorkerProcess, type WorkerProcess } from './harness/worker-process';

const CANARY = `canary-${Math.random().toString(36).slice(2)}`;
const asRoot = process.getuid?.() === 0;
let stack: Stack;
let worker: WorkerProcess;

beforeAll(async () => {
  stack = await startStack({ workers: 0, env: { BUILD_TIMEOUT_SECONDS: '4', MAX_LOG_BYTES: '65536' } });
  // A real worker process whose environment holds the service secrets a build must never see.
  worker = spawnWorkerProcess({ ...stack.env, SLIPWAY_CANARY: CANARY });
  await worker.ready();
});
afterAll(async () => {
  await worker?.kill('SIGKILL');
  await stack?.close();
});

/** Every secret the worker holds: the canary, the S3 secret key, the Redis URL. */
const secrets = () => [CANARY, stack.env.AWS_SECRET_ACCESS_KEY!, stack.env.REDIS_URL!];

/** The deployment's log lines, and the text of every object in the bucket. */
async function everything(id: string): Promise<string> {
  const parts = [(await stack.queue.readLog(id, '-', 100_000)).lines.join('\n')];
  for await (const { key } of stack.storage.list('')) {
    const object = await stack.storage.get(key);
    if (!object) continue;
    const chunks: Buffer[] = [];
    for await (const chunk of object.body) chunks.push(chunk as Buffer);
    parts.push(`${key}\n${Buffer.concat(chunks).toString('latin1')}`);
  }
  return parts.join('\n');
}

/** The files published for a deployment; every object under dist/<id>/ must belong to its live build. */
async function distKeys(id: string): Promise<string[]> {
  const live = await stack.queue.liveBuild(id);
  const keys: string[] = [];
  for await (const { key } of stack.storage.list(`${storageKeys.dist(id)}/`)) {
    if (key === backupKeys.facts(id, live!)) continue; // the build's facts (backup.ts), never served
    const [, , folder, ...rest] = key.split('/');
    // The build's own folder, or its variants' and manifest's beside it.
    expect(siteKeys.buildOf(folder!), `${key} is not in the live build`).toBe(live);
    if (folder === live) keys.push(rest.join('/'));
  }
  return keys.sort();
}

async function deployScript(name: string, script: string, extra: Record<string, string> = {}): Promise<string> {
  const repoUrl = await stack.repo(name, { 'build.js': script, ...extra });
  return stack.deploy({ repoUrl, buildCommand: 'node build.js' });
}

describe('hostile builds are contained', () => {
  it('a build sees none of the worker’s secrets, in its environment or in /proc', async () => {
    const id = await deployScript(
      'steal',
      `
const fs = require('fs');
const loot = ['ENV ' + JSON.stringify(process.env)];
for (const pid of ['self', String(process.ppid), ...fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p))]) {
  try { loot.push('PROC ' + pid + ' ' + fs.readFileSync('/proc/' + pid + '/environ', 'utf8').split('\\0').join(' ')); } catch (e) { loot.push('PROC ' + pid + ' ' + e.code); }
}
console.log(loot.join('\\n'));
fs.mkdirSync('dist');
fs.writeFileSync('dist/index.html', loot.join('\\n'));
`,
    );
    const record = await stack.waitFor(id);
    expect(record.status, record.error).toBe('deployed');
    const all = await everything(id);
    expect(all).toContain('ENV {'); // the build did run and publish what it found…
    for (const secret of secrets()) expect(all).not.toContain(secret); // …and found nothing
    // The sandbox has a /proc of its own: the worker is not even there to try.
    expect(all).not.toMatch(new RegExp(`^PROC ${worker.pid} `, 'm'));
  });

  it('a build cannot write outside its folder or signal the worker', async () => {
    const marker = `escape-${Math.random().toString(36).slice(2)}`;
    const targets = [path.join(stack.config.workDir!, marker), path.join(process.cwd(), marker)];
    const id = await deployScript(
      'escape',
      `
const fs = require('fs');
for (const target of ${JSON.stringify([...targets, `../../${marker}`])}) {
  try { fs.writeFileSync(target, 'pwned'); console.log('WROTE ' + target); } catch (e) { console.log('refused ' + target + ' ' + e.code); }
}
try { process.kill(${worker.pid}, 'SIGKILL'); console.log('KILLED worker'); } catch (e) { console.log('kill refused ' + e.code); }
fs.mkdirSync('dist');
fs.writeFileSync('dist/index.html', 'done');
`,
    );
    const record = await stack.waitFor(id);
    expect(record.status, record.error).toBe('deployed');
    for (const target of targets) expect(existsSync(target)).toBe(false);
    const { lines } = await stack.queue.readLog(id);
    expect(lines.some((l) => l.startsWith('WROTE') || l === 'KILLED worker')).toBe(false);
    expect(worker.child.exitCode).toBeNull();
  });

  it('symlinks to host files are never published, from the repository or from the build', async () => {
    const id = await deployScript(
      'links',
      `
const fs = require('fs');
fs.mkdirSync('dist');
fs.writeFileSync('dist/index.html', 'links');
fs.symlinkSync('/etc/passwd', 'dist/passwd.txt');
fs.symlinkSync('/proc/' + process.ppid + '/environ', 'dist/environ.txt');
fs.symlinkSync('/etc', 'dist/etc');
`,
      { 'committed-passwd.txt': `${SYMLINK_PREFIX}/etc/passwd`, 'committed-root': `${SYMLINK_PREFIX}/` },
    );
    const record = await stack.waitFor(id);
    expect(record.status, record.error).toBe('deployed');
    expect(await distKeys(id)).toEqual(['index.html']);
    expect(Object.keys(await storedSource(stack, id))).toEqual(['build.js']);
    expect((await stack.site(id, '/passwd.txt')).status).toBe(404);
    const all = await everything(id);
    expect(all).not.toContain('root:x:0:0');
    for (const secret of secrets()) expect(all).not.toContain(secret);
  });

  it('a build cannot publish host folders through a linked parent or by swapping its own folder', async () => {
    const repoUrl = await stack.repo('swap', {
      'build.js': `
const fs = require('fs');
fs.symlinkSync('/', 'hostroot');
try { fs.renameSync('..', '../../moved'); } catch (e) { console.log('rename refused ' + e.code); }
try { fs.renameSync(process.cwd(), process.cwd() + '-moved'); console.log('MOVED src'); } catch (e) { console.log('move refused ' + e.code); }
`,
    });
    const id = await stack.deploy({ repoUrl, buildCommand: 'node build.js', outputDir: 'hostroot/etc' });
    const record = await stack.waitFor(id);
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(/output folder "hostroot\/etc" \(outputDir\) leads outside the repository/);
    expect(await distKeys(id)).toEqual([]);
    // src/ is a mount point inside the sandbox (and not the build's to rename outside it).
    expect((await stack.queue.readLog(id)).lines).toEqual(expect.arrayContaining([expect.stringMatching(/^move refused (EACCES|EBUSY|EPERM|EROFS)$/)]));
  });

  it('a build that never exits is stopped at BUILD_TIMEOUT_SECONDS with everything it started', async () => {
    const marker = `forever-${Math.random().toString(36).slice(2)}`;
    const id = await deployScript(
      'forever',
      `
require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '${marker}'], { stdio: 'ignore' });
console.log('sleeping forever');
setInterval(() => {}, 1000);
`,
    );
    const record = await stack.waitFor(id);
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(/"node build.js" was stopped after 4 s \(BUILD_TIMEOUT_SECONDS\)/);
    const processes = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    expect(processes).not.toContain(marker);
    expect(worker.child.exitCode).toBeNull();
  });

  it('a build that prints without end has its log cut at MAX_LOG_BYTES, and is stopped at 100 times that', async () => {
    // yes writes as fast as the pipe takes it (a tight loop of console.log in node mostly fills node's own memory).
    const id = await stack.deploy({ repoUrl: await stack.repo('flood', { 'index.html': 'flood' }), buildCommand: `yes ${'y'.repeat(900)}` });
    const record = await stack.waitFor(id);
    expect(record.status).toBe('failed');
    const { lines } = await stack.queue.readLog(id, '-', 100_000);
    const bytes = lines.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
    expect(bytes).toBeLessThan(65_536 + 2_000);
    expect(lines).toContain('[slipway] log cut here: it passed 65,536 bytes (MAX_LOG_BYTES); the build goes on');
    expect(record.error).toMatch(/"yes y+" printed more than 6,553,600 bytes \(100 × MAX_LOG_BYTES\) and was stopped/);
  });
});

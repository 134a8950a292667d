// The build sandbox, red-teamed: hostile builds run by a real worker process (as root in CI, so with
// a uid of their own) try to reach the platform's Redis, S3 and API, leave a setsid child behind
// to tamper with later builds, and blow through memory, process, file, /tmp and output caps. Each
// attack must fail, with the victim intact and the failure naming the cap it hit.
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { staticSite } from './harness/fixtures';
import { npmRegistry, registryHost, startStack, type Stack } from './harness/stack';
import { spawnWorkerProcess, type WorkerProcess } from './harness/worker-process';

const CAPS = { BUILD_MEMORY_MB: '128', BUILD_MEMORY_MAX_MB: '320', BUILD_MAX_PROCS: '48', BUILD_MAX_FILE_MB: '8', BUILD_DISK_MB: '64', MAX_OUTPUT_MB: '5', BUILD_TIMEOUT_SECONDS: '30' };
let stack: Stack;
let worker: WorkerProcess;

beforeAll(async () => {
  stack = await startStack({ workers: 0, env: CAPS });
  worker = spawnWorkerProcess(stack.env);
  await worker.ready();
});
afterAll(async () => {
  await worker?.kill('SIGKILL');
  await stack?.close();
});

/** Deploys a repository whose build is `script` (node build.js) and waits for the outcome. */
async function build(name: string, script: string, files: Record<string, string> = {}, body: Record<string, unknown> = {}) {
  const repoUrl = await stack.repo(name, { 'build.js': script, ...files });
  const id = await stack.deploy({ repoUrl, buildCommand: 'node build.js', ...body });
  const record = await stack.waitFor(id, ['deployed', 'failed', 'canceled'], 60_000);
  const { lines } = await stack.queue.readLog(id, '-', 10_000);
  return { id, record, log: lines.join('\n') };
}

const port = (url: string) => Number(new URL(url).port);

describe('the sandbox seals a build off from the platform', () => {
  it('cannot reach Redis, S3, the API or any other local service, directly or through the egress proxy', async () => {
    const victim = await stack.deploy({ repoUrl: await stack.repo('victim', staticSite()) });
    expect((await stack.waitFor(victim)).status).toBe('deployed');
    await stack.redis.set('canary', 'alive');
    const targets = [port(stack.env.REDIS_URL!), port(stack.env.S3_ENDPOINT!), port(stack.api), 6379, 5432];
    const { record, log } = await build(
      'reach-platform',
      `
const net = require('net'), http = require('http'), fs = require('fs');
const results = [];
const tryConnect = (host, port) => new Promise((done) => {
  const s = net.connect({ host, port, timeout: 2000 }, () => { results.push('CONNECTED ' + host + ':' + port); s.write('FLUSHALL\\r\\n'); s.end(); done(); });
  s.on('error', (e) => { results.push('blocked ' + host + ':' + port + ' ' + e.code); done(); });
  s.on('timeout', () => { results.push('blocked ' + host + ':' + port + ' timeout'); s.destroy(); done(); });
});
const viaProxy = (target) => new Promise((done) => {
  const req = http.request({ host: '127.0.0.1', port: 3128, method: 'CONNECT', path: target });
  req.on('connect', (res, socket) => { results.push((res.statusCode === 200 ? 'CONNECTED via proxy ' : 'blocked via proxy ') + target + ' ' + res.statusCode); socket.destroy(); done(); });
  req.on('error', (e) => { results.push('blocked via proxy ' + target + ' ' + e.code); done(); });
  req.end();
});
(async () => {
  for (const p of ${JSON.stringify(targets)}) await tryConnect('127.0.0.1', p);
  for (const p of ${JSON.stringify(targets)}) await viaProxy('127.0.0.1:' + p);
  await viaProxy('127.0.0.1:443');
  await viaProxy('169.254.169.254:80');
  await viaProxy('localhost:80');
  console.log(results.join('\\n'));
  fs.mkdirSync('dist');
  fs.writeFileSync('dist/index.html', results.join('\\n'));
})();
`,
    );
    expect(record.status, record.error).toBe('deployed');
    expect(log).not.toContain('CONNECTED');
    expect(log.match(/^blocked /gm)).toHaveLength(targets.length * 2 + 3);
    expect(log).toMatch(/egress refused: 127\.0\.0\.1:443: 127\.0\.0\.1 is a loopback address/);
    expect(log).toMatch(/egress refused: 169\.254\.169\.254:80: .*linkLocal/);
    expect(await stack.redis.get('canary')).toBe('alive');
    expect((await stack.site(victim, '/')).body.toString()).toContain('<h1>Home</h1>');
  });

  it('sees only its own folder and processes, as a uid of its own', async () => {
    const { record, log } = await build(
      'look-around',
      `
const fs = require('fs');
const procs = fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p));
console.log('ROOT ' + fs.readdirSync('/').sort().join(','));
console.log('BUILD ' + fs.readdirSync('/build').sort().join(','));
console.log('PROCS ' + procs.length);
console.log('UID ' + process.getuid());
console.log('PASSWD ' + fs.readFileSync('/etc/passwd', 'utf8').split('\\n').map((l) => l.split(':')[0]).join(','));
for (const p of ['${stack.config.workDir}', '/root', '/etc/shadow', '/var/lib/redis']) { try { fs.readdirSync(p); console.log('SAW ' + p); } catch (e) { console.log('hidden ' + p + ' ' + e.code); } }
fs.mkdirSync('dist'); fs.writeFileSync('dist/index.html', 'ok');
`,
    );
    expect(record.status, record.error).toBe('deployed');
    expect(log).toMatch(/^BUILD home,src$/m);
    expect(log).not.toMatch(/^SAW /m);
    // init, the build's node, and nothing of the host's.
    expect(Number(/^PROCS (\d+)$/m.exec(log)?.[1])).toBeLessThanOrEqual(3);
    if (process.getuid?.() === 0) expect(Number(/^UID (\d+)$/m.exec(log)?.[1])).toBeGreaterThanOrEqual(2_000_000);
    expect(log).toMatch(/^PASSWD root,builder,nobody,$/m);
  });

  it('a setsid child is gone when its deployment ends, and cannot touch a later build', async () => {
    const marker = `lingerer-${Math.random().toString(36).slice(2)}`;
    const first = await build(
      'setsid',
      `
const { spawn } = require('child_process'), fs = require('fs');
// Outlive the build, then try to rewrite any later build's output that is visible.
const child = spawn('setsid', ['node', '-e', "setInterval(() => { for (const d of ['/build/src/dist', '/tmp']) { try { require('fs').writeFileSync(d + '/index.html', 'TAMPERED'); } catch {} } }, 50); setTimeout(() => {}, 60000)", '${marker}'], { detached: true, stdio: 'ignore' });
child.unref();
fs.mkdirSync('dist'); fs.writeFileSync('dist/index.html', 'first');
`,
    );
    expect(first.record.status, first.record.error).toBe('deployed');
    expect(() => execFileSync('pgrep', ['-f', marker])).toThrow(); // exit status 1: no such process
    const second = await build('after-setsid', `setTimeout(() => { require('fs').mkdirSync('dist'); require('fs').writeFileSync('dist/index.html', 'second'); }, 500);`);
    expect(second.record.status).toBe('deployed');
    expect((await stack.site(second.id, '/')).body.toString()).toBe('second');
  });
});

describe('refused egress', () => {
  it('an install retrying a refused host stops at once, naming the host and the setting, not at the time limit', async () => {
    // What `npm ci` does against a registry the policy refuses: the same request again and again
    // (on main it went on until BUILD_TIMEOUT_SECONDS: one install wrote 3,525 refusal lines in 11 minutes).
    const started = Date.now();
    const { record, log } = await build(
      'retrying-install',
      `
const http = require('http');
const once = () => new Promise((done) => {
  const req = http.request({ host: '127.0.0.1', port: 3128, method: 'CONNECT', path: '10.0.0.1:443' });
  req.on('connect', (res, socket) => { socket.destroy(); done(); });
  req.on('error', () => done());
  req.end();
});
(async () => { for (;;) { await once(); await new Promise((r) => setTimeout(r, 20)); } })();
`,
    );
    expect(record.status).toBe('failed');
    expect(record.error).toBe('the build tried to reach 10.0.0.1:443 20 times and was refused each time (10.0.0.1 is a private address (10.0.0.1); builds may reach public hosts only); a host on a private or reserved address (a registry mirror on the LAN) is allowed by BUILD_EGRESS_PRIVATE_HOSTS; loopback and link-local never are');
    expect(log.match(/egress refused: 10\.0\.0\.1:443/g)!.length).toBeGreaterThanOrEqual(20);
    expect(Date.now() - started).toBeLessThan(25_000); // BUILD_TIMEOUT_SECONDS is 30 here
  });
});

describe('the output upload cannot be raced', () => {
  it('a child that swaps output folders for links to a root-only host folder during the upload publishes nothing of it', async () => {
    // A folder only root (the worker) may read, holding a secret: the target the swapped link names.
    const vault = path.join(stack.config.workDir!, `vault-${Math.random().toString(36).slice(2)}`);
    await mkdir(vault, { mode: 0o700 });
    await writeFile(path.join(vault, 'secret.txt'), 'ROOT-ONLY SECRET');
    await chmod(vault, 0o700);
    const script = `
const fs = require('fs');
for (let i = 0; i < 40; i++) { fs.mkdirSync('dist/d' + i, { recursive: true }); fs.writeFileSync('dist/d' + i + '/f.txt', 'file ' + i); }
fs.writeFileSync('dist/index.html', 'home');
// For five seconds after the build "ends", keep replacing each folder with a link to the vault.
require('child_process').spawn('setsid', ['node', '-e', \`
  const fs = require('fs'); const end = Date.now() + 5000;
  (function swap() { for (let i = 0; i < 40; i++) { try { fs.rmSync('dist/d' + i, { recursive: true, force: true }); fs.symlinkSync(${JSON.stringify(vault)}, 'dist/d' + i); } catch {} } if (Date.now() < end) setTimeout(swap, 1); })();
\`], { detached: true, stdio: 'ignore' }).unref();
`;
    const { id, record } = await build('swap-race', script);
    expect(record.status, record.error).toBe('deployed');
    const published: string[] = [];
    for await (const { key } of stack.storage.list(`dist/${id}/${record.liveBuild}/`)) published.push(key.split('/').slice(3).join('/'));
    // How many folders the swapper replaced before the build's sandbox was torn down depends on the
    // machine's load (it starts swapping as it is spawned); what is published is never the vault's.
    expect(published).toContain('index.html');
    for (const key of published) expect(key).toMatch(/^(index\.html|d\d+\/f\.txt)$/);
    expect((await stack.site(id, '/d0/secret.txt')).status).toBe(404);
    for (const key of published) expect((await stack.site(id, `/${key}`)).body.toString()).not.toContain('ROOT-ONLY');
  });
});

describe('caps fail the deployment with a reason that names the cap', () => {
  it('memory (BUILD_MEMORY_MB)', async () => {
    const { record, log } = await build('memory-hog', `const keep = []; for (let i = 0; i < 1024; i++) keep.push(Buffer.alloc(1 << 20, 1)); console.log('allocated', keep.length);`);
    expect(record.status).toBe('failed');
    // With a cgroup the worker knows the OOM killer struck; under rlimits only the allocation fails.
    if (/caps by cgroup/.test(log)) expect(record.error).toMatch(/ran out of memory: this build may use 128 MB \(buildMemoryMb asks for more, up to BUILD_MEMORY_MAX_MB\)/);
    expect(log).not.toMatch(/^allocated 1024$/m);
  });

  it('memory a deployment asks for (buildMemoryMb), up to BUILD_MEMORY_MAX_MB, with Node\'s heap limit to match', async () => {
    const script = `const fs = require('fs'); fs.mkdirSync('dist'); fs.writeFileSync('dist/index.html', process.env.NODE_OPTIONS + ' ' + require('v8').getHeapStatistics().heap_size_limit);`;
    const asked = await build('memory-asked', script, {}, { buildMemoryMb: 256 });
    expect(asked.record.status, asked.record.error).toBe('deployed');
    expect(asked.log).toMatch(/caps by [\w-]+: memory 256 MB/);
    const [options, limit] = (await stack.site(asked.id, '/')).body.toString().split(' ');
    expect(options).toBe('--max-old-space-size=192');
    // V8's whole heap limit (old space and young generations): far below the 4 GB it takes by default.
    expect(Number(limit)).toBeLessThan(512 * 1024 * 1024);
    const capped = await build('memory-capped', script, {}, { buildMemoryMb: 4096, env: { NODE_OPTIONS: '--max-old-space-size=100 --no-warnings' } });
    expect(capped.record.status, capped.record.error).toBe('deployed');
    expect(capped.log).toContain('[slipway] memory: buildMemoryMb asks for 4096 MB; this worker gives a build at most 320 MB (BUILD_MEMORY_MAX_MB)');
    expect(capped.log).toMatch(/caps by [\w-]+: memory 320 MB/);
    expect((await stack.site(capped.id, '/')).body.toString()).toMatch(/^--max-old-space-size=100 --no-warnings /);
  });

  it('processes (BUILD_MAX_PROCS)', async () => {
    const { record } = await build(
      'fork-bomb',
      `const { spawn } = require('child_process'); let failed = 0;
for (let i = 0; i < 200; i++) { try { const c = spawn('sleep', ['5']); c.on('error', () => failed++); } catch { failed++; } }
setTimeout(() => { console.log('failed spawns', failed); process.exit(failed ? 1 : 0); }, 1000);`,
    );
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(/BUILD_MAX_PROCS/);
  });

  it('file size (BUILD_MAX_FILE_MB)', async () => {
    const { record } = await build('big-file', `require('fs').mkdirSync('dist'); require('fs').writeFileSync('dist/big.bin', Buffer.alloc(20 << 20));`);
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(/BUILD_MAX_FILE_MB/);
  });

  it('disk (BUILD_DISK_MB), /tmp included: the write fails inside the build', async () => {
    const { record, log } = await build('tmp-filler', `for (let i = 0; i < 14; i++) require('fs').writeFileSync('/tmp/fill' + i, Buffer.alloc(6 << 20));`);
    expect(record.status).toBe('failed');
    expect(log).toContain('ENOSPC');
    expect(record.error).toMatch(/wrote more than 64 MB to its disk \(BUILD_DISK_MB\)/);
  });

  it('output size (MAX_OUTPUT_MB), and nothing of it is served', async () => {
    const { id, record } = await build('big-output', `const fs = require('fs'); fs.mkdirSync('dist'); fs.writeFileSync('dist/index.html', 'big'); for (let i = 0; i < 4; i++) fs.writeFileSync('dist/part' + i + '.bin', Buffer.alloc(2 << 20, i));`);
    expect(record.status).toBe('failed');
    expect(record.error).toMatch(/MAX_OUTPUT_MB/);
    expect((await stack.site(id, '/part0.bin')).status).toBe(404);
  });
});

describe('real package installs go through the egress proxy', () => {
  // On the machines this project is developed on, the npm registry resolves to a reserved address
  // (203.0.113.0/24, behind the workplace's gateway): it is trusted by name, as a LAN mirror would be.
  // Everywhere else it is a public address and needs no setting.
  it('Node\'s own fetch, which reads no proxy variable unless asked, reaches the registry through the same egress rule', { timeout: 120_000 }, async () => {
    const { record, log, id } = await build(
      'ignores-proxy',
      `const fs = require('fs');
(async () => {
  const out = [];
  const res = await fetch(${JSON.stringify(npmRegistry())} + '/is-number', { headers: { accept: 'application/vnd.npm.install-v1+json' } });
  out.push('registry ' + res.status + ' ' + (await res.json()).name);
  try { await fetch('https://refused.slipway-test.invalid/'); out.push('REACHED'); } catch (e) { out.push('refused host: ' + (e.cause?.code || e.message)); }
  fs.mkdirSync('dist'); fs.writeFileSync('dist/index.html', out.join('\\n'));
})().catch((e) => { console.error(e); process.exit(1); });`,
    );
    expect(record.status, `${record.error}\n${log}`).toBe('deployed');
    const page = (await stack.site(id, '/')).body.toString().split('\n');
    expect(page[0]).toBe('registry 200 is-number');
    expect(page[1]).toMatch(/^refused host: /);
    // Refused at the lookup where names resolve in the sandbox (as here), else at the proxy.
    expect(log).toMatch(/\[slipway\] egress refused: refused\.slipway-test\.invalid( \(name lookup\)|:443): refused\.slipway-test\.invalid does not resolve/);
  });

  it('a tool that ignores every proxy setting resolves the registry itself and reaches it; other names and ports lead nowhere', { timeout: 120_000 }, async () => {
    // Like wmr or a Go binary: a process with no proxy variable at all, resolving and connecting on
    // its own (trusting the system's CAs, as those do: this workplace's gateway re-signs TLS).
    const tool = `const dns = require('dns').promises, https = require('https'), net = require('net');
(async () => {
  const out = [];
  const { address } = await dns.lookup(${JSON.stringify(registryHost())});
  out.push('resolved to ' + (address.startsWith('127.') ? 'loopback' : address));
  out.push(await new Promise((ok, bad) => https.get(${JSON.stringify(npmRegistry())} + '/is-number', { agent: false, headers: { accept: 'application/vnd.npm.install-v1+json' } }, (res) => {
    let body = ''; res.on('data', (c) => (body += c)); res.on('end', () => ok('registry ' + res.statusCode + ' ' + JSON.parse(body).name));
  }).on('error', bad)));
  try { await dns.lookup('refused.slipway-test.invalid'); out.push('RESOLVED'); } catch (e) { out.push('refused name: ' + e.code); }
  out.push(await new Promise((done) => net.connect(22, address).on('connect', () => done('PORT 22 OPEN')).on('error', (e) => done('port 22: ' + e.code))));
  out.push(await new Promise((done) => net.connect(443, '127.100.200.1').on('connect', () => done('UNGIVEN ADDRESS OPEN')).on('error', (e) => done('other address: ' + e.code))));
  process.stdout.write(out.join('\\n'));
})().catch((e) => { console.error(e); process.exit(1); });`;
    const { record, log, id } = await build(
      'ignores-every-proxy',
      `const { execFileSync } = require('child_process'), fs = require('fs');
const out = execFileSync(process.execPath, ['tool.js'], { env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS } });
fs.mkdirSync('dist'); fs.writeFileSync('dist/index.html', out);`,
      { 'tool.js': tool },
    );
    expect(record.status, `${record.error}\n${log}`).toBe('deployed');
    expect((await stack.site(id, '/')).body.toString().split('\n')).toEqual([
      'resolved to loopback',
      'registry 200 is-number',
      'refused name: ENOTFOUND',
      'port 22: ECONNREFUSED',
      'other address: ECONNREFUSED',
    ]);
    expect(log).toContain('[slipway] egress refused: refused.slipway-test.invalid (name lookup): refused.slipway-test.invalid does not resolve');
  });

  it('npm installs a dependency from the registry inside the sandbox', { timeout: 120_000 }, async () => {
    const repoUrl = await stack.repo('with-dependency', {
      'package.json': JSON.stringify({ name: 'uses-is-number', private: true, scripts: { build: 'node build.js' }, dependencies: { 'is-number': '7.0.0' } }),
      'build.js': "const isNumber = require('is-number'); require('fs').mkdirSync('dist'); require('fs').writeFileSync('dist/index.html', 'is 42 a number? ' + isNumber(42));",
    });
    const id = await stack.deploy({ repoUrl });
    const record = await stack.waitFor(id, ['deployed', 'failed'], 110_000);
    expect(record.status, (await stack.queue.readLog(id)).lines.join('\n')).toBe('deployed');
    expect((await stack.site(id, '/')).body.toString()).toBe('is 42 a number? true');
  });
});

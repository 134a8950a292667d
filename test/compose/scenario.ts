// What CI proves against the real docker-compose.yml (run by test/compose/run.sh once the stack is up,
// scaled to three workers): deployments go in through the API, `LLEN build-queue` drains, sites are
// served by the site server, a worker container SIGKILLed mid-build loses nothing (another finishes the
// deployment), and a hostile build inside a worker container reaches none of what the container holds.
//   node --import tsx test/compose/scenario.ts <env file> <compose project name>
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildSite, slowBuild } from '../harness/fixtures';
import { createFixtureRepo, startGitServer } from '../harness/git-server';

const run = promisify(execFile);
const [envFile, project] = process.argv.slice(2);
if (!envFile || !project) throw new Error('usage: scenario.ts <env file> <compose project name>');
const env = Object.fromEntries(
  readFileSync(envFile, 'utf8')
    .split('\n')
    .filter((line) => /^[A-Z_0-9]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
) as Record<string, string>;
const api = `http://127.0.0.1:${env.CI_API_PORT}`;
const token = env.API_TOKENS!.split(',')[0]!;
const started = Date.now();

function step(message: string): void {
  console.log(`compose: [${((Date.now() - started) / 1000).toFixed(1)} s] ${message}`);
}

function check(ok: unknown, message: string): asserts ok {
  if (!ok) throw new Error(`compose check failed: ${message}`);
}

async function call(method: string, route: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${api}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** A page from the site server, by host name (fetch would drop a Host header of its own). */
function site(host: string, route = '/'): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: Number(env.CI_SITE_PORT), path: route, headers: { host }, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${host}${route}: no answer in 30 s`)));
    req.on('error', reject);
  });
}

/** What operators run: `redis-cli LLEN build-queue`, against the compose Redis. */
async function queueLength(): Promise<number> {
  const { stdout } = await run('redis-cli', ['-p', env.CI_REDIS_PORT!, 'LLEN', 'build-queue'], { env: { ...process.env, REDISCLI_AUTH: env.REDIS_PASSWORD }, timeout: 10_000 });
  const n = Number(stdout.trim());
  check(Number.isInteger(n), `LLEN build-queue answered ${JSON.stringify(stdout)}`);
  return n;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`compose check failed: ${what} within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function deploy(repoUrl: string): Promise<string> {
  const res = await call('POST', '/deploy', { repoUrl });
  check(res.status === 202, `POST /deploy answered ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id as string;
}

const FINAL = new Set(['deployed', 'failed', 'canceled', 'skipped']);
async function finished(id: string, timeoutMs = 300_000): Promise<any> {
  return until(`deployment ${id} finishes`, timeoutMs, async () => {
    const { body } = await call('GET', `/deployments/${id}`);
    return FINAL.has(body?.status) ? body : null;
  });
}

async function logOf(id: string): Promise<string> {
  return ((await call('GET', `/deployments/${id}/logs`)).body.lines as string[]).join('\n');
}

/** The slots whose start lines the log holds, in order (`[slipway] build … started on <slot> (attempt n)`). */
function startedOn(log: string): string[] {
  return [...log.matchAll(/^\[slipway\] build \S+ started on (\S+) \(attempt \d+\)$/gm)].map((m) => m[1]!);
}

/**
 * The deploy-service container a slot runs in. On the host's network every container has the host's
 * name, which slot names start with, so it is found by the slot its worker logged at start.
 */
async function containerOf(slot: string): Promise<string> {
  const { stdout } = await run('docker', ['ps', '--quiet', '--filter', `label=com.docker.compose.project=${project}`, '--filter', 'label=com.docker.compose.service=deploy-service'], { timeout: 30_000 });
  for (const id of stdout.split('\n').filter(Boolean)) {
    const logs = await run('docker', ['logs', id], { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 });
    if ((logs.stdout + logs.stderr).includes(`"${slot}"`)) return id;
  }
  throw new Error(`compose check failed: no running deploy-service container logged slot ${slot}`);
}

/** A build that tries, from inside a worker container's sandbox, what an attacker would. */
function hostileBuild(targets: { ports: number[]; hostAddress: string; apiPort: number }): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name: 'curious', private: true, scripts: { build: 'node probe.js' } }),
    'probe.js': `
const fs = require('fs'), net = require('net');
const out = { uid: process.getuid(), env: process.env, environs: {}, connects: {}, writes: {}, reads: {} };
for (const pid of fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p))) {
  try { out.environs[pid] = fs.readFileSync('/proc/' + pid + '/environ', 'utf8'); } catch (e) { out.environs[pid] = 'refused: ' + e.code; }
}
for (const file of ['/proc/1/root/app/package.json', '/var/cache/slipway', '/app/deploy-service/src/main.ts', '/etc/shadow']) {
  try { out.reads[file] = fs.statSync(file).isDirectory() ? fs.readdirSync(file) : fs.readFileSync(file, 'utf8').slice(0, 200); } catch (e) { out.reads[file] = 'refused: ' + e.code; }
}
for (const file of ['/app/owned', '/etc/owned', '/var/cache/slipway/owned', '/usr/bin/owned', '/tmp/../owned']) {
  try { fs.writeFileSync(file, 'owned'); out.writes[file] = 'written'; } catch (e) { out.writes[file] = 'refused: ' + e.code; }
}
function connect(host, port) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 3000 }, () => { s.destroy(); resolve('connected'); });
    s.on('error', (e) => resolve('refused: ' + e.code));
    s.on('timeout', () => { s.destroy(); resolve('refused: timeout'); });
  });
}
/** A tunnel through the build's egress proxy to a platform address: the proxy must refuse it. */
function tunnel(host, port) {
  return new Promise((resolve) => {
    const proxy = new URL(process.env.HTTPS_PROXY);
    const s = net.connect({ host: proxy.hostname, port: Number(proxy.port), timeout: 5000 }, () => s.write('CONNECT ' + host + ':' + port + ' HTTP/1.1\\r\\nHost: ' + host + ':' + port + '\\r\\n\\r\\n'));
    s.once('data', (d) => { s.destroy(); resolve(String(d).split('\\r\\n')[0]); });
    s.on('error', (e) => resolve('refused: ' + e.code));
    s.on('timeout', () => { s.destroy(); resolve('refused: timeout'); });
  });
}
(async () => {
  for (const port of ${JSON.stringify(targets.ports)}) {
    out.connects['127.0.0.1:' + port] = await connect('127.0.0.1', port);
    out.connects[${JSON.stringify(targets.hostAddress)} + ':' + port] = await connect(${JSON.stringify(targets.hostAddress)}, port);
  }
  out.tunnel = await tunnel('127.0.0.1', ${targets.apiPort});
  out.tunnelHost = await tunnel(${JSON.stringify(targets.hostAddress)}, ${targets.apiPort});
  fs.mkdirSync('dist', { recursive: true });
  fs.writeFileSync('dist/index.html', JSON.stringify(out));
  console.log('probe done');
})();
`,
  };
}

/** The machine's first non-loopback IPv4 address: the platform's ports are open on it too (host networking). */
function hostAddress(): string {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}

const gitRoot = await mkdtemp(path.join(tmpdir(), 'slipway-compose-git-'));
const git = await startGitServer(gitRoot);
try {
  // 1. Three workers, each a container of its own, are live on the one list.
  const workers = await until('three worker slots are live', 120_000, async () => {
    const { body } = await call('GET', '/queue');
    const slots = new Set<string>((body?.workers ?? []).map((w: { id: string }) => w.id));
    return slots.size >= 3 ? slots : null;
  });
  const containers = new Set(await Promise.all([...workers].map(containerOf)));
  check(containers.size === 3, `the three slots run in ${containers.size} container(s)`);
  step(`GET /queue: ${workers.size} worker slots, one in each of 3 containers`);

  // 2. A burst of deployments through the API: the list fills, drains, and every site is served.
  const burst = 6;
  const repos = await Promise.all(Array.from({ length: burst }, (_, i) => createFixtureRepo(git, `site-${i}`, buildSite('dist', `compose site ${i}`))));
  const ids = await Promise.all(repos.map(deploy));
  let peak = 0;
  await until('build-queue drains', 300_000, async () => {
    const n = await queueLength();
    peak = Math.max(peak, n);
    return n === 0;
  });
  const records = await Promise.all(ids.map((id) => finished(id)));
  for (const r of records) check(r.status === 'deployed', `deployment ${r.id} ended ${r.status}: ${r.error ?? ''}`);
  const builtBy = new Set<string>();
  for (const [i, id] of ids.entries()) {
    const page = await site(`${id}.${env.BASE_DOMAIN ?? 'localhost'}`);
    check(page.status === 200 && page.text.includes(`compose site ${i}`), `site of ${id} answered ${page.status} ${page.text.slice(0, 200)}`);
    for (const slot of startedOn(await logOf(id))) builtBy.add(await containerOf(slot));
  }
  check(builtBy.size >= 2, `the burst was built in ${builtBy.size} container(s); expected the work spread over the workers`);
  step(`${burst} deployments: LLEN build-queue peaked at ${peak} and drained to 0; all deployed and served; built in ${builtBy.size} containers`);

  // 3. A worker container SIGKILLed mid-build: the deployment finishes on another worker.
  const slowId = await deploy(await createFixtureRepo(git, 'slow', slowBuild(20_000)));
  const victim = await until('the slow build starts', 120_000, async () => {
    const { body } = await call('GET', '/queue');
    return (body?.workers ?? []).find((w: { current: string | null }) => w.current === slowId)?.id as string | undefined;
  });
  await until('the slow build is past its start', 60_000, async () => (await logOf(slowId)).includes('building for 20000 ms'));
  const victimContainer = await containerOf(victim);
  await run('docker', ['kill', '--signal', 'KILL', victimContainer], { timeout: 30_000 });
  step(`SIGKILLed worker container ${victimContainer.slice(0, 12)} (slot ${victim}) while it built ${slowId}`);
  const slow = await finished(slowId, 240_000);
  check(slow.status === 'deployed', `the killed build ended ${slow.status}: ${slow.error ?? ''}`);
  const slots = startedOn(await logOf(slowId));
  check(slots.length >= 2 && slots.at(-1) !== victim, `the killed build was not started again on another slot: ${slots.join(', ')}`);
  check((await site(`${slowId}.${env.BASE_DOMAIN ?? 'localhost'}`)).text.includes('slow build'), 'the recovered build is not served');
  const rescuer = await containerOf(slots.at(-1)!);
  const where = rescuer === victimContainer ? 'the killed container, restarted by Docker (a new worker process)' : `container ${rescuer.slice(0, 12)}`;
  step(`the reaper requeued it and slot ${slots.at(-1)} in ${where} deployed it (attempts started on: ${slots.join(', ')})`);

  // 4. A hostile build inside a worker container: none of the platform's secrets, ports or files.
  const ports = [Number(env.CI_REDIS_PORT), Number(env.CI_S3_PORT), Number(env.CI_API_PORT), Number(env.CI_SITE_PORT)];
  const host = hostAddress();
  const hostileId = await deploy(await createFixtureRepo(git, 'hostile', hostileBuild({ ports, hostAddress: host, apiPort: Number(env.CI_API_PORT) })));
  const hostile = await finished(hostileId);
  check(hostile.status === 'deployed', `the hostile build ended ${hostile.status}: ${hostile.error ?? ''}`);
  const page = await site(`${hostileId}.${env.BASE_DOMAIN ?? 'localhost'}`);
  const found = JSON.parse(page.text) as {
    uid: number;
    connects: Record<string, string>;
    writes: Record<string, string>;
    reads: Record<string, unknown>;
    tunnel: string;
    tunnelHost: string;
    environs: Record<string, string>;
  };
  check(found.uid !== 0, 'the build ran as root');
  for (const [target, result] of Object.entries(found.connects)) check(result.startsWith('refused'), `the build connected to ${target}`);
  for (const [file, result] of Object.entries(found.writes)) check(result.startsWith('refused'), `the build wrote ${file}`);
  for (const [file, result] of Object.entries(found.reads)) check(typeof result === 'string' && result.startsWith('refused'), `the build read ${file}: ${JSON.stringify(result).slice(0, 200)}`);
  check(!/^HTTP\/1\.[01] 200/.test(found.tunnel) && !/^HTTP\/1\.[01] 200/.test(found.tunnelHost), `the egress proxy opened a tunnel to the platform: ${found.tunnel} / ${found.tunnelHost}`);
  const secrets = ['SECRETS_KEY', 'REDIS_PASSWORD', 'SITES_REDIS_PASSWORD', 'MINIO_ROOT_PASSWORD', 'API_TOKENS'].map((k) => env[k]!).filter(Boolean);
  for (const secret of secrets) check(!page.text.includes(secret), 'a platform secret reached the build');
  step(
    `hostile build: uid ${found.uid}, ${Object.keys(found.connects).length} connections and 2 proxy tunnels refused, ${Object.keys(found.writes).length} writes and ${Object.keys(found.reads).length} reads refused, ` +
      `${Object.keys(found.environs).length} processes visible and no secret among their environments`,
  );
  step('all checks passed');
} finally {
  await git.close();
  await rm(gitRoot, { recursive: true, force: true });
}

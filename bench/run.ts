// `npm run bench`: speed figures measured side by side in one run, printed as a table of ratios.
// Starts its own s3rver, git server and redis-server on free loopback ports; stops them at the end.
import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import autocannon from 'autocannon';
import sirv from 'sirv';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Queue, loadConfig, newDeploymentId, uploadTree, type Redis } from '@slipway/shared';
import { spawnS3rver } from '../dev/s3-server';
import { startGitServer } from '../test/harness/git-server';
import { runCommand } from '../deploy-service/src/build';
import { BuildLog } from '../deploy-service/src/build-log';
import { startEgressProxy } from '../deploy-service/src/egress';
import { allocateBuildUid, detectSandbox, writeIdentityFiles, type SandboxSupport } from '../deploy-service/src/sandbox';
import { createWorkspace, handOver } from '../deploy-service/src/workspace';
import { startStackOn } from '../test/harness/stack';
import { servingSite, staticSite, viteReactApp } from '../test/harness/fixtures';
import { withLockfile } from '../test/harness/lockfiles';
import { ToolCache } from '../deploy-service/src/tools';

const run = promisify(execFile);

const ROUNDS = 5; // 10 for the sandbox row, whose runs are short
const BUILD_ROUNDS = 3; // real installs and builds: seconds each
const TREE_FILES = 300;
const QUEUE_JOBS = 500;
const SERVE_SECONDS = 4;

/** Pushes QUEUE_JOBS records and takes each through the slot's protocol steps; returns the milliseconds. */
async function drain(queue: Queue, conn: Redis, sweep: boolean): Promise<number> {
  const ids: string[] = [];
  for (let i = 0; i < QUEUE_JOBS; i++) {
    const id = newDeploymentId();
    await queue.createUploading({ id, repoUrl: 'https://bench.invalid/r.git', status: 'uploading', attempts: 0, createdAt: new Date().toISOString(), url: '' });
    await queue.enqueue(id);
    ids.push(id);
  }
  const started = performance.now();
  for (let i = 0; i < QUEUE_JOBS; i++) {
    if (sweep) await queue.sweep('bench', 3);
    const id = await Queue.claim(conn, 'bench', 1);
    if (!id || (await queue.start(id, 'bench')) !== 'started') throw new Error('bench claim failed');
    if (!(await queue.finish(id, 'bench', { liveBuild: 'benchbuild' })).recorded) throw new Error('bench settle refused');
  }
  return performance.now() - started;
}

const tmpRoot = await mkdtemp(path.join(tmpdir(), 'slipway-bench-'));
await chmod(tmpRoot, 0o711); // builds run as uids of their own, and must be able to pass through
const s3 = await spawnS3rver({ directory: path.join(tmpRoot, 's3') });
const git = await startGitServer(path.join(tmpRoot, 'git'));
// registry.npmjs.org may resolve to a private address (a mirror): builds may still reach it.
const stack = await startStackOn({ s3Endpoint: s3.endpoint, gitUrl: git.url, gitRoot: git.root, tmpRoot }, { env: { BUILD_EGRESS_PRIVATE_HOSTS: 'registry.npmjs.org', BUILD_TIMEOUT_SECONDS: '300' } });

async function deployedOrThrow(id: string): Promise<void> {
  const record = await stack.waitFor(id, undefined, 300_000);
  if (record.status !== 'deployed') throw new Error(`bench deployment ${id} failed: ${record.error}`);
}
const rows: string[][] = [];
try {
  // 1. Source upload: bounded concurrency against one file at a time, alternated round by round.
  const tree = path.join(tmpRoot, 'tree');
  for (let i = 0; i < TREE_FILES; i++) {
    await mkdir(path.join(tree, `d${i % 10}`), { recursive: true });
    await writeFile(path.join(tree, `d${i % 10}`, `f${i}.txt`), `file ${i}\n`.repeat(50));
  }
  const serial: number[] = [];
  const parallel: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [concurrency, into] of [[1, serial], [16, parallel]] as const) {
      const started = performance.now();
      await uploadTree(stack.storage, tree, `bench/${round}-${concurrency}`, { concurrency });
      into.push(performance.now() - started);
    }
  }
  rows.push([`upload ${TREE_FILES} files, concurrency 16 vs 1`, ms(median(parallel)), ms(median(serial)), ratio(median(serial), median(parallel))]);

  // 2. POST → deployed for the static fixture, against the time the clone alone takes.
  const repoUrl = await stack.repo('static', staticSite());
  const deploy: number[] = [];
  const post: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const started = performance.now();
    const id = await stack.deploy({ repoUrl });
    post.push(performance.now() - started);
    const record = await stack.waitFor(id);
    if (record.status !== 'deployed') throw new Error(`bench deployment failed: ${record.error}`);
    deploy.push(performance.now() - started);
  }
  rows.push(['static site: POST → 202 vs POST → deployed', ms(median(post)), ms(median(deploy)), ratio(median(deploy), median(post))]);

  // 2b. Serving: Slipway's site server (manifest and small files in memory, S3 behind) against sirv
  //     serving the same files from local disk, with autocannon, one after the other in this process.
  {
    const site = servingSite();
    const id = await stack.deploy({ repoUrl: await stack.repo('serving', site) });
    await deployedOrThrow(id);
    const diskDir = path.join(tmpRoot, 'sirv-site');
    for (const [rel, text] of Object.entries(site)) {
      await mkdir(path.dirname(path.join(diskDir, rel)), { recursive: true });
      await writeFile(path.join(diskDir, rel), text);
    }
    const disk = http.createServer(sirv(diskDir, { etag: true, extensions: ['html'] }));
    await new Promise<void>((resolve) => disk.listen(0, '127.0.0.1', resolve));
    const servers = {
      sirv: { url: `http://127.0.0.1:${(disk.address() as AddressInfo).port}`, host: undefined },
      slipway: { url: `http://127.0.0.1:${stack.config.port}`, host: `${id}.${stack.config.baseDomain}` },
    };
    const load = async (server: { url: string; host: string | undefined }, urlPath: string, headers: Record<string, string>, expect: number) => {
      const result = await autocannon({ url: server.url + urlPath, connections: 16, duration: SERVE_SECONDS, headers: { ...headers, ...(server.host ? { host: server.host } : {}) } });
      const wanted = expect === 304 ? result['3xx'] : result['2xx'];
      if (result.errors > 0 || wanted !== result.requests.total) throw new Error(`bench serving ${urlPath}: ${result.errors} errors, ${wanted} of ${result.requests.total} answered ${expect}`);
      return result;
    };
    try {
      const jsKb = Math.round(Buffer.byteLength(site['assets/index-Ca74PG3G.js']!) / 1024);
      for (const [label, urlPath] of [[`a hashed JS asset (${jsKb} KB)`, '/assets/index-Ca74PG3G.js'], ['an HTML page', '/']] as const) {
        const a = await load(servers.sirv, urlPath, {}, 200);
        const b = await load(servers.slipway, urlPath, {}, 200);
        rows.push([`serving ${label}: sirv from disk vs Slipway, req/s (p99)`, rps(a), rps(b), ratio(b.requests.average, a.requests.average)]);
      }
      const etagOf = async (server: { url: string; host: string | undefined }) =>
        (await fetchWithHost(server.url + '/', server.host)).headers.get('etag') ?? '';
      const a = await load(servers.sirv, '/', { 'if-none-match': await etagOf(servers.sirv) }, 304);
      const b = await load(servers.slipway, '/', { 'if-none-match': await etagOf(servers.slipway) }, 304);
      rows.push(['serving a 304 (If-None-Match): sirv vs Slipway, req/s (p99)', rps(a), rps(b), ratio(b.requests.average, a.requests.average)]);
    } finally {
      disk.close();
    }
  }

  // 3. Builds of a real Vite + React app (dependencies from the npm registry): a cold deploy (a new
  //    repository: nothing cached), a warm redeploy (POST redeploy → deployed, node_modules from the
  //    build cache), and the floor: `vite build` alone in a prepared folder, no platform around it.
  const app = await withLockfile('npm', new ToolCache(path.join(tmpRoot, 'tools'), stack.config.npmRegistry), viteReactApp('Bench'));
  const cold: number[] = [];
  const warm: number[] = [];
  const bareBuild: number[] = [];
  const barePath = path.join(tmpRoot, 'vite-bare');
  for (const [rel, text] of Object.entries(app)) {
    await mkdir(path.dirname(path.join(barePath, rel)), { recursive: true });
    await writeFile(path.join(barePath, rel), text);
  }
  await run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: barePath });
  let warmId = '';
  for (let round = 0; round < BUILD_ROUNDS; round++) {
    const coldStart = performance.now();
    const id = await stack.deploy({ repoUrl: await stack.repo(`vite-cold-${round}`, app) });
    await deployedOrThrow(id);
    cold.push(performance.now() - coldStart);
    warmId ||= id;
    const warmStart = performance.now();
    if ((await stack.post(`/deployments/${warmId}/redeploy`, {})).status !== 202) throw new Error('bench redeploy refused');
    await deployedOrThrow(warmId);
    warm.push(performance.now() - warmStart);
    const bareStart = performance.now();
    await run(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--logLevel', 'silent'], { cwd: barePath });
    bareBuild.push(performance.now() - bareStart);
  }
  rows.push(['Vite + React: bare `vite build` vs warm redeploy (cache hit)', ms(median(bareBuild)), ms(median(warm)), ratio(median(warm), median(bareBuild))]);
  rows.push(['Vite + React: warm redeploy vs cold deploy (nothing cached)', ms(median(warm)), ms(median(cold)), ratio(median(cold), median(warm))]);

  // 4. The cost of ownership: ids through claim → start → settle, with the idle slot's sweep before each
  //    claim (what slots do) against without it, one slot, on the stack's redis-server.
  for (const worker of stack.workers) await worker.close(); // the bench is the only consumer now
  const conn = stack.redis.duplicate();
  await conn.connect();
  try {
    const withSweep: number[] = [];
    const bare: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const [sweep, into] of [[false, bare], [true, withSweep]] as const) into.push(await drain(stack.queue, conn, sweep));
    }
    rows.push([`queue: ${QUEUE_JOBS} ids claim → start → settle, sweep first vs not`, ms(median(bare)), ms(median(withSweep)), ratio(median(withSweep), median(bare))]);
  } finally {
    conn.destroy();
  }

  // 5. The cost of the sandbox: a no-op command (node -e 0) run bare (BUILD_SANDBOX=off, still with
  //    rlimits and the build's uid) against sealed (bubblewrap, cgroup caps, egress forwarder).
  const { buildUids } = loadConfig({});
  const sandboxed = await detectSandbox(true, buildUids);
  const bare: SandboxSupport = { ...sandboxed, kind: 'off' };
  const ws = await createWorkspace(tmpRoot, 'benchsandbox');
  const uid = await allocateBuildUid(buildUids);
  try {
    await handOver(ws, uid?.uid ?? null);
    const etc = await writeIdentityFiles(ws.root, uid?.uid ?? process.getuid?.() ?? 0);
    const egress = await startEgressProxy(path.join(ws.root, 'egress.sock'), { privateHosts: undefined, allowHosts: undefined }, () => undefined);
    const log = new BuildLog(stack.queue, 'benchsandbox', 1_000_000);
    const MB = 1024 * 1024;
    const caps = { memoryBytes: 2048 * MB, maxProcs: 512, maxFileBytes: 1024 * MB, tmpBytes: 512 * MB };
    const times = { off: [] as number[], on: [] as number[] };
    for (let round = 0; round < ROUNDS * 2; round++) {
      for (const [support, into] of [[bare, times.off], [sandboxed, times.on]] as const) {
        const started = performance.now();
        const result = await runCommand(['node', '-e', '0'], log, { cwd: ws.src, ws, uid: uid?.uid ?? null, support, caps, egressSocket: egress.socketPath, etc, name: `bench-${round}-${support.kind}`, timeoutMs: 60_000, env: {}, tools: { root: tmpRoot, path: [] } });
        if (result.code !== 0) throw new Error(`no-op command failed (${support.kind}): ${log.tail().join(' | ')}`);
        into.push(performance.now() - started);
      }
    }
    await egress.close();
    rows.push([`no-op build command, sandbox off vs on (${sandboxed.caps})`, ms(median(times.off)), ms(median(times.on)), ratio(median(times.on), median(times.off))]);
  } finally {
    await ws.remove();
    await uid?.release();
  }
} finally {
  await stack.close();
  await git.close();
  await s3.close();
  await rm(tmpRoot, { recursive: true, force: true });
}

const header = ['case', 'A (median)', 'B (median)', 'B / A'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log(`\n${ROUNDS} rounds each, medians, measured side by side on this machine:\n`);
console.log(line(header));
console.log(line(widths.map((w) => '-'.repeat(w))));
for (const row of rows) console.log(line(row));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
function ms(x: number): string {
  return `${x.toFixed(0)} ms`;
}
function rps(r: autocannon.Result): string {
  return `${Math.round(r.requests.average).toLocaleString('en-US')} (${r.latency.p99} ms)`;
}
/** A GET with a Host header of our choosing (fetch will not set Host). */
function fetchWithHost(url: string, host: string | undefined): Promise<{ headers: Map<string, string> }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: host ? { host } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve({ headers: new Map(Object.entries(res.headers).map(([k, v]) => [k, String(v)])) }));
    });
    req.on('error', reject);
  });
}
function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(1)}×`;
}

// The bench's smaller sections: a static site end to end, serving against sirv and nginx, real
// Vite builds (cold, warm, bare), the sandbox's cost, and the idle slot's sweep. Each returns its rows.
import { execFile } from 'node:child_process';
import http from 'node:http';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import sirv from 'sirv';
import { Queue, loadConfig, newDeploymentId, walkFiles, type Redis } from '@slipway/shared';
import { runCommand } from '../deploy-service/src/sandbox/run-command';
import { BuildLog } from '../deploy-service/src/deployment/build-log';
import type { Step } from '../deploy-service/src/cache/cache-steps';
import { collectOutput } from '../deploy-service/src/sandbox/collect';
import { startEgressProxy } from '../deploy-service/src/sandbox/egress';
import { allocateBuildUid, detectSandbox, writeIdentityFiles, type SandboxSupport } from '../deploy-service/src/sandbox/sandbox';
import { ToolCache, npmRegistry as toolsRegistry } from '../deploy-service/src/toolchain/tool-cache';
import { detectDisk } from '../deploy-service/src/sandbox/disk';
import { createWorkspace, handOver } from '../deploy-service/src/deployment/workspace';
import { servingSite, staticSite, viteReactApp } from '../test/harness/fixtures';
import { withLockfile } from '../test/harness/lockfiles';
import { startLatencyProxy } from '../test/harness/latency-proxy';
import { startNginx, startSiteServer } from '../test/harness/site-server';
import { startStackOn, type Stack } from '../test/harness/stack';
import { median, ms, ratio, type BenchContext, type Row } from './lib';

const run = promisify(execFile);

async function deployed(ctx: BenchContext, id: string): Promise<void> {
  const record = await ctx.stack.waitFor(id, undefined, 300_000);
  if (record.status !== 'deployed') throw new Error(`bench deployment ${id} failed: ${record.error}`);
}

async function writeTree(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), text);
  }
}

/**
 * POST → 202 and POST → deployed for a static site without dependencies (the whole platform, one small
 * site), on loopback S3 and on a second stack whose S3 is `--s3-latency-ms` away (the latency proxy).
 */
export async function benchEndToEnd(ctx: BenchContext): Promise<Row[]> {
  const rounds = ctx.quick ? 3 : 9;
  const proxy = await startLatencyProxy(ctx.s3Endpoint, ctx.s3LatencyMs);
  const far = await startStackOn({ s3Endpoint: proxy.endpoint, gitUrl: ctx.git.url, gitRoot: ctx.git.root, tmpRoot: ctx.tmpRoot }, { env: { BUILD_TIMEOUT_SECONDS: '300' } });
  try {
    const measure = async (stack: Stack) => {
      const repoUrl = await stack.repo('static', staticSite());
      const post: number[] = [];
      const done: number[] = [];
      for (let round = 0; round < rounds; round++) {
        const started = performance.now();
        const wall = Date.now();
        const id = await stack.deploy({ repoUrl });
        post.push(performance.now() - started);
        const record = await stack.waitFor(id, undefined, 300_000);
        if (record.status !== 'deployed') throw new Error(`bench deployment ${id} failed: ${record.error}`);
        // When it went live (the worker stamps finishedAt as it records the outcome), not when the
        // 50 ms poll above saw it.
        done.push(Date.parse(record.finishedAt!) - wall);
      }
      return { post: median(post), done: median(done) };
    };
    const near = await measure(ctx.stack);
    const away = await measure(far);
    return [
      { section: 'end to end', case: 'static site, no dependencies: POST → 202 (A) vs POST → deployed (B), p50', a: ms(near.post), b: ms(near.done), ratio: ratio(near.done, near.post), target: 'B < 250 ms', met: near.done < 250 },
      {
        section: 'end to end',
        case: `static site, S3 ${ctx.s3LatencyMs} ms away each way: POST → 202 (A) vs POST → deployed (B), p50`,
        a: ms(away.post),
        b: ms(away.done),
        ratio: ratio(away.done, away.post),
        target: 'B ≤ 1 s',
        met: away.done <= 1000,
      },
    ];
  } finally {
    await far.close();
    await proxy.close();
  }
}

/**
 * Slipway's site server (its own process: manifests, small files and the live pointers in memory, S3
 * behind) against sirv and nginx serving the same files from local disk: a hashed asset, an HTML page
 * and a 304, at 16 and 64 connections; then the site server while 200 deployments settle.
 */
export async function benchServing(ctx: BenchContext): Promise<Row[]> {
  const seconds = ctx.quick ? 1 : 4;
  const site = servingSite();
  const id = await ctx.stack.deploy({ repoUrl: await ctx.stack.repo('serving', site) });
  await deployed(ctx, id);
  const diskDir = path.join(ctx.tmpRoot, 'disk-site');
  await writeTree(diskDir, site);
  const disk = http.createServer(sirv(diskDir, { etag: true, extensions: ['html'] }));
  await new Promise<void>((resolve) => disk.listen(0, '127.0.0.1', resolve));
  const nginx = await startNginx(diskDir, path.join(ctx.tmpRoot, 'nginx'));
  const sites = await startSiteServer({ ...ctx.stack.env, LOG_LEVEL: 'warn' });
  type Server = { url: string; host: string | undefined };
  const servers: Record<'sirv' | 'nginx' | 'slipway', Server> = {
    sirv: { url: `http://127.0.0.1:${(disk.address() as AddressInfo).port}`, host: undefined },
    nginx: { url: nginx.url, host: undefined },
    slipway: { url: `http://127.0.0.1:${sites.port}`, host: `${id}.${ctx.stack.config.baseDomain}` },
  };
  // autocannon runs in this process, one server at a time.
  const load = async (server: Server, urlPath: string, headers: Record<string, string>, expect: number, connections: number) => {
    const result = await autocannon({ url: server.url + urlPath, connections, duration: seconds, headers: { ...headers, ...(server.host ? { host: server.host } : {}) } });
    const wanted = expect === 304 ? result['3xx'] : result['2xx'];
    if (result.errors > 0 || wanted !== result.requests.total) throw new Error(`bench serving ${urlPath}: ${result.errors} errors, ${wanted} of ${result.requests.total} answered ${expect}`);
    return result;
  };
  const rps = (r: autocannon.Result) => `${Math.round(r.requests.average).toLocaleString('en-US')}/s (p99 ${r.latency.p99} ms)`;
  const etagOf = (server: Server) =>
    new Promise<string>((resolve, reject) => {
      http.get(server.url + '/', { headers: server.host ? { host: server.host } : {} }, (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.headers.etag ?? '')));
      }).on('error', reject);
    });
  const rows: Row[] = [];
  try {
    const jsKb = Math.round(Buffer.byteLength(site['assets/index-Ca74PG3G.js']!) / 1024);
    const cases: [string, string, (s: Server) => Promise<Record<string, string>>, number][] = [
      [`a hashed JS asset (${jsKb} KB)`, '/assets/index-Ca74PG3G.js', async () => ({}), 200],
      ['an HTML page', '/', async () => ({}), 200],
      ['a 304 (If-None-Match)', '/', async (s) => ({ 'if-none-match': await etagOf(s) }), 304],
    ];
    for (const connections of [16, 64]) {
      for (const [label, urlPath, headersOf, expect] of cases) {
        const b = await load(servers.slipway, urlPath, await headersOf(servers.slipway), expect, connections);
        for (const [peer, floor] of [['sirv', 1], ['nginx', 0.5]] as const) {
          const a = await load(servers[peer], urlPath, await headersOf(servers[peer]), expect, connections);
          const share = b.requests.average / a.requests.average;
          rows.push({ section: 'serving', case: `${label}: ${peer} from local disk (A) vs Slipway's site server (B), ${connections} connections`, a: rps(a), b: rps(b), ratio: ratio(b.requests.average, a.requests.average), target: `≥ ${floor}× ${peer}`, met: share >= floor });
        }
      }
    }
    // A deploy storm: 200 deployments of another project settle (each moving its aliases and
    // publishing the change) while the site server answers the page.
    const quiet = await load(servers.slipway, '/', {}, 200, 16);
    const storm = settleStorm(ctx.stack.redis, ctx.quick ? 50 : 200, seconds * 1000);
    const busy = await load(servers.slipway, '/', {}, 200, 16);
    const settled = await storm;
    rows.push({ section: 'serving', case: `an HTML page, 16 connections: quiet (A) vs while ${settled.count} deployments settle in ${ms(settled.ms)} (B)`, a: rps(quiet), b: rps(busy), ratio: ratio(busy.requests.average, quiet.requests.average), target: '≥ 0.5× quiet', met: busy.requests.average >= 0.5 * quiet.requests.average });
  } finally {
    disk.close();
    await nginx.stop();
    sites.child.kill('SIGTERM');
    await sites.exited;
  }
  return rows;
}

/**
 * `count` deployments of project `storm` settled deployed one after another by a slot of the bench's
 * own, through the real SETTLE (aliases, production, the change published), spread over `spanMs`.
 */
async function settleStorm(redis: Redis, count: number, spanMs: number): Promise<{ count: number; ms: number }> {
  const queue = new Queue(redis);
  const slot = 'bench-storm-0';
  await redis.hSet('project:storm', { name: 'storm', repoUrl: 'https://git.example.com/storm.git', productionBranch: 'main', createdAt: new Date().toISOString(), updatedAt: new Date().toISOString() });
  const ids = Array.from({ length: count }, () => newDeploymentId());
  for (const [i, id] of ids.entries()) {
    await redis.hSet(`deployment:${id}`, { id, repoUrl: 'https://git.example.com/storm.git', status: 'building', worker: slot, attempts: '1', createdAt: new Date(Date.now() + i).toISOString(), url: `http://${id}.localhost/`, project: 'storm', aliasLabel: 'main', production: '1' });
  }
  const started = performance.now();
  for (const [i, id] of ids.entries()) {
    const due = started + (i * spanMs) / count;
    if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()));
    await redis.lPush(`build-queue:processing:${slot}`, id);
    const result = await queue.finish(id, slot, { liveBuild: 'b0000001' }, { skew: { ms: 3_600_000, builds: 5 } });
    if (!result.recorded) throw new Error(`bench storm: deployment ${id} was not settled`);
  }
  return { count, ms: performance.now() - started };
}

/**
 * A real Vite + React app (dependencies from the npm registry): a cold deploy (a new repository:
 * nothing cached) against its floor, `npm ci && npm run build` in a fresh folder with an empty npm
 * cache (what the cold build itself starts from); a warm redeploy (POST redeploy → deployed,
 * node_modules from the build cache) against its floor, `vite build` alone in a prepared folder.
 */
export async function benchBuilds(ctx: BenchContext): Promise<Row[]> {
  const rounds = ctx.quick ? 1 : 3;
  const { stack, tmpRoot } = ctx;
  const app = await withLockfile('npm', new ToolCache(path.join(tmpRoot, 'tools'), toolsRegistry(stack.config.npmRegistry)), viteReactApp('Bench'));
  const cold: number[] = [];
  const warm: number[] = [];
  const bare: number[] = [];
  const bareCold: number[] = [];
  const barePath = path.join(tmpRoot, 'vite-bare');
  await writeTree(barePath, app);
  await run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: barePath });
  let warmId = '';
  for (let round = 0; round < rounds; round++) {
    const coldStart = performance.now();
    const id = await stack.deploy({ repoUrl: await stack.repo(`vite-cold-${round}`, app) });
    await deployed(ctx, id);
    cold.push(performance.now() - coldStart);
    warmId ||= id;
    const warmStart = performance.now();
    if ((await stack.post(`/deployments/${warmId}/redeploy`, {})).status !== 202) throw new Error('bench redeploy refused');
    await deployed(ctx, warmId);
    warm.push(performance.now() - warmStart);
    const bareStart = performance.now();
    await run(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--logLevel', 'silent'], { cwd: barePath });
    bare.push(performance.now() - bareStart);
    const fresh = path.join(tmpRoot, `vite-bare-cold-${round}`);
    await writeTree(fresh, app);
    const coldBareStart = performance.now();
    await run('npm', ['ci', '--no-audit', '--no-fund', '--cache', path.join(tmpRoot, `npm-cache-cold-${round}`)], { cwd: fresh });
    await run('npm', ['run', 'build', '--silent'], { cwd: fresh });
    bareCold.push(performance.now() - coldBareStart);
  }
  const [w, c, floor, coldFloor] = [median(warm), median(cold), median(bare), median(bareCold)];
  return [
    { section: 'builds', case: 'Vite + React: bare `vite build` (A) vs warm redeploy, cache hit (B)', a: ms(floor), b: ms(w), ratio: ratio(w, floor), target: '≤ 1.3×', met: w / floor <= 1.3 },
    { section: 'builds', case: 'Vite + React: bare `npm ci && npm run build`, fresh folder and npm cache (A) vs cold deploy, nothing cached (B)', a: ms(coldFloor), b: ms(c), ratio: ratio(c, coldFloor), target: '≤ 1.3×', met: c / coldFloor <= 1.3 },
    { section: 'builds', case: 'Vite + React: warm redeploy (A) vs cold deploy, nothing cached (B)', a: ms(w), b: ms(c), ratio: ratio(c, w) },
  ];
}

/**
 * What sealing costs a build: a no-op command (node -e 0) bare (BUILD_SANDBOX=off, still with rlimits
 * and the build's uid) against sealed; a build's disk as a plain folder against a loop-mounted ext4 of
 * BUILD_DISK_MB; and taking a 100-file output out as the worker once did (walking the build's folder
 * itself) against the collect step in the sandbox with its checked tar stream.
 */
export async function benchSandbox(ctx: BenchContext): Promise<Row[]> {
  const rounds = ctx.quick ? 4 : 10;
  const { buildUids, buildDisk } = loadConfig({});
  const sandboxed = await detectSandbox(true, buildUids);
  const bare: SandboxSupport = { ...sandboxed, kind: 'off' };
  const disk = (await detectDisk(ctx.tmpRoot)).kind;
  const rows: Row[] = [];
  if (disk === 'loop') {
    const made = { watch: [] as number[], loop: [] as number[] };
    for (let round = 0; round < rounds; round++) {
      for (const kind of ['watch', 'loop'] as const) {
        const started = performance.now();
        const w = await createWorkspace(ctx.tmpRoot, `benchdisk${round}`, { kind, limits: buildDisk });
        await w.remove();
        made[kind].push(performance.now() - started);
      }
    }
    rows.push({ section: 'end to end', case: `a build's disk, made and removed: a plain folder (A) vs a loop-mounted ext4 of BUILD_DISK_MB, ${buildDisk.bytes / 1024 / 1024} MB (B)`, a: ms(median(made.watch)), b: ms(median(made.loop)), ratio: ratio(median(made.loop), median(made.watch)) });
  }
  const ws = await createWorkspace(ctx.tmpRoot, 'benchsandbox', { kind: disk, limits: buildDisk });
  const uid = await allocateBuildUid(buildUids);
  try {
    await mkdir(path.join(ws.src, 'dist/assets'), { recursive: true });
    for (let i = 0; i < 100; i++) await writeFile(path.join(ws.src, `dist/assets/file-${i}.js`), `export const n = ${i};\n`.repeat(50));
    await handOver(ws, uid?.uid ?? null);
    const etc = await writeIdentityFiles(ws.root, uid?.uid ?? process.getuid?.() ?? 0);
    const egress = await startEgressProxy(path.join(ws.root, 'egress.sock'), { privateHosts: undefined, allowHosts: undefined }, () => undefined);
    const log = new BuildLog(ctx.stack.queue, 'benchsandbox', 1_000_000);
    const MB = 1024 * 1024;
    const caps = { memoryBytes: 2048 * MB, maxProcs: 512, maxFileBytes: 1024 * MB };
    const common = { cwd: ws.src, ws, uid: uid?.uid ?? null, caps, egressSocket: egress.socketPath, etc, timeoutMs: 60_000, env: {}, tools: { root: ctx.tmpRoot, path: [] } };
    const times = { off: [] as number[], on: [] as number[], walk: [] as number[], collect: [] as number[] };
    for (let round = 0; round < rounds; round++) {
      for (const [support, into] of [[bare, times.off], [sandboxed, times.on]] as const) {
        const started = performance.now();
        const result = await runCommand(['node', '-e', '0'], log, { ...common, support, name: `bench-${round}-${support.kind}` });
        if (result.code !== 0) throw new Error(`no-op command failed (${support.kind}): ${log.tail().join(' | ')}`);
        into.push(performance.now() - started);
      }
      let started = performance.now();
      let walked = 0;
      for await (const _ of walkFiles(path.join(ws.src, 'dist'))) walked += 1;
      times.walk.push(performance.now() - started);
      started = performance.now();
      await rm(ws.output, { recursive: true, force: true });
      const step: Step = (argv, name, extra) => runCommand(argv, log, { ...common, support: sandboxed, own: true, name: `bench-collect-${round}-${name}`, ...extra });
      const out = await collectOutput({ ws, sandboxed: sandboxed.kind === 'bwrap', log, step, signal: new AbortController().signal }, {
        app: '', outputDir: 'dist', candidates: [], plain: false, probes: [], limits: { maxFiles: 1000, maxBytes: 100 * MB, what: 'the output', limitNames: { files: 'MAX_OUTPUT_FILES', bytes: 'MAX_OUTPUT_MB' } },
      });
      if (out.tree?.files !== walked) throw new Error(`collect received ${out.tree?.files} files of ${walked}`);
      times.collect.push(performance.now() - started);
    }
    await egress.close();
    rows.unshift({ section: 'end to end', case: `a no-op build command: sandbox off (A) vs on (B: bubblewrap, ${sandboxed.caps} caps, egress forwarder)`, a: ms(median(times.off)), b: ms(median(times.on)), ratio: ratio(median(times.on), median(times.off)) });
    rows.push({ section: 'end to end', case: 'a 100-file output taken out: the worker walking the build\'s folder (A, before) vs the collect step in the sandbox and its checked tar stream (B)', a: ms(median(times.walk)), b: ms(median(times.collect)), ratio: ratio(median(times.collect), median(times.walk)) });
    return rows;
  } finally {
    await ws.remove();
    await uid?.release();
  }
}

/**
 * The cost of exact ownership on one slot: ids through claim → start → settle with the idle slot's
 * sweep before each claim (what slots do) against without it, on the stack's redis-server. Closes
 * the stack's in-process workers first (this bench must be the only consumer).
 */
export async function benchSweep(ctx: BenchContext): Promise<Row[]> {
  const jobs = ctx.quick ? 100 : 500;
  const rounds = ctx.quick ? 2 : 5;
  for (const worker of ctx.stack.workers) await worker.close();
  const conn = ctx.stack.redis.duplicate();
  await conn.connect();
  try {
    const withSweep: number[] = [];
    const without: number[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const [sweep, into] of [[false, without], [true, withSweep]] as const) into.push(await drainOneSlot(ctx.stack.queue, conn, jobs, sweep));
    }
    return [{ section: 'queue', case: `${jobs} ids claim → start → settle on one slot: without (A) vs with (B) the sweep before each claim`, a: ms(median(without)), b: ms(median(withSweep)), ratio: ratio(median(withSweep), median(without)) }];
  } finally {
    conn.destroy();
  }
}

async function drainOneSlot(queue: Queue, conn: Redis, jobs: number, sweep: boolean): Promise<number> {
  for (let i = 0; i < jobs; i++) {
    const id = newDeploymentId();
    await queue.createUploading({ id, repoUrl: 'https://bench.invalid/r.git', status: 'uploading', attempts: 0, createdAt: new Date().toISOString(), url: '' });
    await queue.enqueue(id);
  }
  const started = performance.now();
  for (let i = 0; i < jobs; i++) {
    if (sweep) await queue.sweep('bench', 3);
    const id = await Queue.claim(conn, 'bench', 1);
    if (!id || (await queue.start(id, 'bench')) !== 'started') throw new Error('bench claim failed');
    if (!(await queue.finish(id, 'bench', { liveBuild: 'benchbuild' })).recorded) throw new Error('bench settle refused');
  }
  return performance.now() - started;
}


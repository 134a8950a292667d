// The upload section: a repository cloned and its files put in S3 — Slipway's way (shallow clone, bounded
// streaming upload) against the floors (a bare PutObject loop over files already on disk; git's archive
// of them piped to one multipart upload) and the naive way of the tutorial the project started from, on
// loopback S3 and on S3 made `--s3-latency-ms` away by a proxy — and the upload-service's peak memory on a
// large repository.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import getPort from 'get-port';
import { simpleGit } from 'simple-git';
import { Storage, createS3Client, s3ClientSettings, walkFiles, type WalkedFile } from '@slipway/shared';
import { startRedisServer } from '../dev/redis-server';
import { createFixtureRepo } from '../test/harness/git-server';
import { startLatencyProxy } from '../test/harness/latency-proxy';
import { seeded } from '../test/harness/seeded';
import { downloadArchive, downloadPrefix } from '../deploy-service/src/deployment/workspace';
import { archiveSource } from '../upload-service/src/deploy/archive';
import { cloneRepo } from '../upload-service/src/deploy/clone';
import { checkRepoUrl } from '../upload-service/src/deploy/url-policy';
import { median, ms, ratio, type BenchContext, type Row } from './lib';

const MB = 1024 * 1024;
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The tutorial waited this long after its uploads before enqueueing ("to let S3 settle"). */
const NAIVE_WAIT_MS = 5000;

export async function benchUpload(ctx: BenchContext): Promise<Row[]> {
  const { quick } = ctx;
  const size = quick ? { files: 300, bytes: 4 * MB, rounds: 1, waitMs: 500 } : { files: 2000, bytes: 30 * MB, rounds: 3, waitMs: NAIVE_WAIT_MS };
  const run = randomBytes(4).toString('hex');
  const work = await mkdtemp(path.join(ctx.tmpRoot, 'upload-bench-'));
  const proxy = await startLatencyProxy(ctx.s3Endpoint, ctx.s3LatencyMs);
  try {
    const fixture = fixtureFiles(size.files, size.bytes);
    const bytes = Object.values(fixture).reduce((sum, c) => sum + Buffer.byteLength(c), 0);
    const url = await createFixtureRepo(ctx.git, `bench-upload-${run}`, fixture);
    const label = `clone + upload ${size.files.toLocaleString('en-US')} files (${(bytes / MB).toFixed(0)} MB)`;

    // The floors' files: one prepared checkout, listed once, outside the timing.
    const checkout = path.join(work, 'checkout');
    await simpleGit().clone(url, checkout, ['--depth', '1']);
    const onDisk: WalkedFile[] = [];
    for await (const file of walkFiles(checkout, { skipDirs: new Set(['.git']) })) onDisk.push(file);
    const prepared = { url, checkout, onDisk, work, run, size };

    const loopback = await measureUpload(ctx, ctx.s3Endpoint, 'loopback', prepared);
    const far = await measureUpload(ctx, proxy.endpoint, `latency`, prepared);
    const slow = `S3 ${ctx.s3LatencyMs} ms away each way`;
    const wait = quick ? `a ${size.waitMs / 1000} s wait (the tutorial's 5 s, scaled down for --quick)` : 'the 5 s wait';
    const slipwayIs = 'Slipway (B: shallow clone with no checkout, the selected files as one tar.gz streamed to one multipart upload)';
    const rows: Row[] = [
      {
        section: 'upload',
        case: `${label}: floor (A: no clone, files on disk, bare PutObject loop, best concurrency ${loopback.best}) vs ${slipwayIs}; B / A`,
        a: ms(loopback.floor),
        b: ms(loopback.slipway),
        ratio: ratio(loopback.slipway, loopback.floor),
        target: '≤ 1.3× the floor',
        met: loopback.slipway / loopback.floor <= 1.3,
      },
      {
        section: 'upload',
        case: `${label}: naive (A: full clone, ${loopback.naiveFiles.toLocaleString('en-US')} files with .git read whole, one Promise.all of PutObject, ${wait}) vs Slipway (B); A / B`,
        a: ms(loopback.naive),
        b: ms(loopback.slipway),
        ratio: ratio(loopback.naive, loopback.slipway),
        target: '≥ 3× faster than naive',
        met: loopback.naive / loopback.slipway >= 3,
      },
      {
        section: 'upload',
        case: `${label}: naive without its fixed wait (A) vs Slipway (B); A / B`,
        a: ms(median(loopback.naiveBare)),
        b: ms(loopback.slipway),
        ratio: ratio(median(loopback.naiveBare), loopback.slipway),
      },
      {
        section: 'upload',
        case: `${label}, ${slow}: archive floor (A: git archive of a prepared clone, tar.gz, piped to one multipart upload) vs Slipway (B); B / A`,
        a: ms(far.archive),
        b: ms(far.slipway),
        ratio: ratio(far.slipway, far.archive),
        target: '≤ 1.3× the archive floor',
        met: far.slipway / far.archive <= 1.3,
      },
      {
        section: 'upload',
        case: `${label}, ${slow}: PutObject loop floor (A: best concurrency ${far.best}) vs Slipway (B); B / A`,
        a: ms(far.floor),
        b: ms(far.slipway),
        ratio: ratio(far.slipway, far.floor),
      },
      {
        section: 'upload',
        case: `${label}, ${slow}: naive (A, ${wait}) vs Slipway (B); A / B`,
        a: ms(far.naive),
        b: ms(far.slipway),
        ratio: ratio(far.naive, far.slipway),
        target: '≥ 5× faster than naive',
        met: far.naive / far.slipway >= 5,
      },
      {
        section: 'upload',
        case: `download of the same files: floor (A: the archive in one GET, piped to tar -xz) vs the worker's downloadArchive (B: one GET, unpacked with handoff.ts's checks); B / A`,
        a: ms(loopback.download.archive),
        b: ms(loopback.download.slipway),
        ratio: ratio(loopback.download.slipway, loopback.download.archive),
      },
      {
        section: 'upload',
        case: `download of the same files, ${slow}: floor (A) vs the worker's downloadArchive (B); B / A`,
        a: ms(far.download.archive),
        b: ms(far.download.slipway),
        ratio: ratio(far.download.slipway, far.download.archive),
      },
      {
        section: 'upload',
        case: `download of the same files, ${slow}: a GET per file (A: sources from before the archive, concurrency ${ctx.stack.config.uploadConcurrency}) vs downloadArchive (B); A / B`,
        a: ms(far.download.perFile),
        b: ms(far.download.slipway),
        ratio: ratio(far.download.perFile, far.download.slipway),
      },
      {
        section: 'upload',
        case: `${label}: Slipway on loopback S3 (A) vs ${slow} (B); B / A`,
        a: ms(loopback.slipway),
        b: ms(far.slipway),
        ratio: ratio(far.slipway, loopback.slipway),
      },
    ];
    rows.push(await peakRssRow(ctx, work, run));
    return rows;
  } finally {
    await proxy.close();
    await rm(work, { recursive: true, force: true });
    await rm(path.join(ctx.git.root, `bench-upload-${run}.git`), { recursive: true, force: true });
  }
}

interface Prepared {
  url: string;
  checkout: string;
  onDisk: WalkedFile[];
  work: string;
  run: string;
  size: { rounds: number; waitMs: number };
}

/** Every way of putting the repository in S3, against the S3 at `endpoint`, in rounds that rotate which goes first. */
async function measureUpload(ctx: BenchContext, endpoint: string, tag: string, p: Prepared) {
  const s3 = { ...ctx.stack.config.s3, endpoint };
  const clientFor = (requestHandler: S3ClientConfig['requestHandler']) => new S3Client({ ...s3ClientSettings(s3), requestHandler });
  // The floor gets sockets for its highest concurrency; the SDK's default agent stops at 50.
  const floorClient = clientFor({ httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }) });
  // The tutorial's client had the SDK's defaults. Slipway's (the stack's) has a 5 s connection timeout,
  // which the SDK counts from the moment a request is queued for one of its 50 sockets: with every
  // file sent at once, the requests at the back of that queue fail after 5 s.
  // (Its warning that requests wait for a socket is put off: it would only say what this case is about.)
  const naiveClient = clientFor({ socketAcquisitionWarningTimeout: 600_000 });
  // Slipway's own client and storage, as the upload-service makes them, against this endpoint.
  const storage = new Storage(createS3Client(s3, ctx.stack.config.uploadConcurrency), s3.bucket);
  try {
    let best = { concurrency: 0, ms: Infinity };
    for (const concurrency of [8, 16, 32, 64]) {
      const took = await floorUpload(floorClient, s3.bucket, p.onDisk, `bench-upload/${p.run}/${tag}-calibrate-${concurrency}`, concurrency);
      if (took < best.ms) best = { concurrency, ms: took };
    }
    const times = { floor: [] as number[], archive: [] as number[], slipway: [] as number[], naive: [] as number[], naiveBare: [] as number[] };
    let naiveFiles = 0;
    const uploaded = { slipway: '', archive: '', floor: '' };
    const methods = [
      async (prefix: string) => times.floor.push(await floorUpload(floorClient, s3.bucket, p.onDisk, (uploaded.floor = prefix), best.concurrency)),
      async (prefix: string) => times.archive.push(await archiveUpload(floorClient, s3.bucket, p.checkout, (uploaded.archive = `${prefix}.tar.gz`))),
      async (prefix: string) => times.slipway.push(await slipwayUpload(ctx, storage, p.url, p.work, (uploaded.slipway = prefix))),
      async (prefix: string) => {
        const naive = await naiveUpload(naiveClient, s3.bucket, p.url, p.work, prefix, p.size.waitMs);
        times.naive.push(naive.ms);
        times.naiveBare.push(naive.ms - p.size.waitMs);
        naiveFiles = naive.files;
      },
    ];
    // Each round starts with a different method, so none always runs on a cold (or warm) s3rver.
    for (let round = 0; round < p.size.rounds; round++) {
      for (let i = 0; i < methods.length; i++) await methods[(round + i) % methods.length]!(`bench-upload/${p.run}/${tag}-r${round}-m${(round + i) % methods.length}`);
    }
    // The worker's side: what was uploaded, downloaded the worker's way and the archive's way.
    const download = { slipway: [] as number[], archive: [] as number[], perFile: [] as number[] };
    for (let round = 0; round < p.size.rounds; round++) {
      const dir = await mkdtemp(path.join(p.work, 'download-'));
      try {
        const take = [
          async () => download.slipway.push(await timed(() => downloadArchive(storage.get(`${uploaded.slipway}/source.tar.gz`), `${uploaded.slipway}/source.tar.gz`, path.join(dir, 'slipway'), { maxFiles: ctx.stack.config.maxRepoFiles, maxBytes: ctx.stack.config.maxRepoBytes }))),
          async () => download.archive.push(await timed(() => archiveDownload(floorClient, s3.bucket, uploaded.archive, path.join(dir, 'archive')))),
          // Sources from before the archive: a GET per file (the floor loop's objects are such a source).
          async () => download.perFile.push(await timed(() => downloadPrefix(storage, uploaded.floor, path.join(dir, 'per-file'), ctx.stack.config.uploadConcurrency))),
        ];
        for (let i = 0; i < take.length; i++) await take[(round + i) % take.length]!();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    return {
      best: best.concurrency,
      floor: median(times.floor),
      archive: median(times.archive),
      slipway: median(times.slipway),
      naive: median(times.naive),
      naiveBare: times.naiveBare,
      naiveFiles,
      download: { slipway: median(download.slipway), archive: median(download.archive), perFile: median(download.perFile) },
    };
  } finally {
    floorClient.destroy();
    naiveClient.destroy();
    storage.client.destroy();
  }
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/** The download floor: the archive in one GET, piped to `tar -xz`. */
async function archiveDownload(client: S3Client, bucket: string, key: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const { Body } = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const tar = spawn('tar', ['-xzf', '-', '-C', dir], { stdio: ['pipe', 'ignore', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => tar.on('close', resolve));
  await pipeline(Body as Readable, tar.stdin!);
  const code = await exited;
  if (code !== 0) throw new Error(`bench download: tar exited with ${code}`);
}

/** The archive floor: `git archive` of a clone already on disk, gzip'd (level 1, as Slipway does), streamed to one multipart upload. */
async function archiveUpload(client: S3Client, bucket: string, checkout: string, key: string): Promise<number> {
  const started = performance.now();
  const git = spawn('git', ['archive', '--format=tar', 'HEAD'], { cwd: checkout, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => git.on('close', resolve));
  await new Upload({ client, params: { Bucket: bucket, Key: key, Body: git.stdout!.pipe(createGzip({ level: 1 })) }, queueSize: 4, partSize: 8 * MB }).done();
  const code = await exited;
  if (code !== 0) throw new Error(`bench upload: git archive exited with ${code}`);
  return performance.now() - started;
}

/** Slipway's path, as deploy.ts takes it: the URL checked, a shallow clone with no checkout, the selected files streamed up as one archive. */
async function slipwayUpload(ctx: BenchContext, storage: Storage, url: string, work: string, prefix: string): Promise<number> {
  const { config } = ctx.stack;
  const started = performance.now();
  const dir = await mkdtemp(path.join(work, 'slipway-'));
  try {
    const target = await checkRepoUrl(url, { allowPrivateNetworks: true });
    const { files } = await cloneRepo(target, undefined, dir, { timeoutMs: config.cloneTimeoutMs, maxBytes: config.maxRepoBytes, maxFiles: config.maxRepoFiles });
    const source = await archiveSource(dir, files, { timeoutMs: config.cloneTimeoutMs });
    await storage.putStream(`${prefix}/source.tar.gz`, source.stream, { contentType: 'application/gzip' });
    return performance.now() - started;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The tutorial's path: a full clone, every file (.git included) read whole, all PutObjects at once, then a fixed wait. */
async function naiveUpload(client: S3Client, bucket: string, url: string, work: string, prefix: string, waitMs: number): Promise<{ ms: number; files: number }> {
  const started = performance.now();
  const dir = await mkdtemp(path.join(work, 'naive-'));
  try {
    await simpleGit().clone(url, dir);
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    const files = entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
    // The SDK's agent still caps the sockets at 50; the rest wait in its queue, bodies already in memory.
    await Promise.all(
      files.map(async (abs) => {
        const body = await readFile(abs);
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${path.relative(dir, abs).split(path.sep).join('/')}`, Body: body }));
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, waitMs));
    return { ms: performance.now() - started, files: files.length };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The floor: files already on disk, each streamed by a bare PutObject, `concurrency` runners pulling the next. */
async function floorUpload(client: S3Client, bucket: string, files: readonly WalkedFile[], prefix: string, concurrency: number): Promise<number> {
  const started = performance.now();
  let next = 0;
  const runner = async () => {
    while (next < files.length) {
      const file = files[next++]!;
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${file.rel}`, Body: createReadStream(file.abs), ContentLength: file.size }));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, runner));
  return performance.now() - started;
}

/**
 * A repository of `count` files adding up to about `bytes`: many small text files and some binaries of
 * 100 KB–1 MB of random bytes (about 70% of the bytes), in folders one to six levels deep. The layout
 * and sizes come from a fixed seed; the binaries' bytes do not (they only need to be incompressible).
 */
function fixtureFiles(count: number, bytes: number): Record<string, string | Buffer> {
  const random = seeded(count);
  const between = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const binaries = Math.max(1, Math.round((0.7 * bytes) / (550 * 1024)));
  const binarySizes = Array.from({ length: binaries }, () => between(100 * 1024, 1024 * 1024));
  const textAverage = Math.max(200, (bytes - binarySizes.reduce((a, b) => a + b, 0)) / (count - binaries));
  const tops = ['src', 'lib', 'docs', 'test', 'assets', 'packages'];
  const files: Record<string, string | Buffer> = {};
  for (let i = 0; i < count; i++) {
    const depth = 1 + (i % 6);
    const folders = [tops[i % tops.length]!, ...Array.from({ length: depth - 1 }, (_, d) => `${'abcdef'[d]}${between(0, 3)}`)];
    const binary = i % Math.floor(count / binaries) === 0 && binarySizes.length > 0;
    if (binary) {
      files[`${folders.join('/')}/blob-${i}.bin`] = randomBytes(binarySizes.pop()!);
      continue;
    }
    const target = Math.round(textAverage * (0.3 + 1.4 * random()));
    const lines: string[] = [];
    for (let n = 0; n < target; n += lines.at(-1)!.length + 1) lines.push(`export const value_${i}_${lines.length} = ${Math.floor(random() * 1e12)}; // ${'x'.repeat(between(0, 30))}`);
    files[`${folders.join('/')}/file-${i}.${['ts', 'js', 'md', 'json', 'css', 'html'][i % 6]}`] = `${lines.join('\n')}\n`;
  }
  return files;
}


/**
 * The real upload-service as a child process (on a redis-server of its own, so no worker builds what it
 * queues), given a large repository: its RSS when idle, and its peak (VmHWM) once it has answered 202.
 */
async function peakRssRow(ctx: BenchContext, work: string, run: string): Promise<Row> {
  const megabytes = ctx.quick ? 60 : 500;
  const name = `bench-upload-rss-${run}`;
  const redis = await startRedisServer({ port: await getPort(), dir: path.join(work, 'rss-redis') });
  const port = await getPort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...ctx.stack.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    REDIS_URL: redis.url,
    MAX_REPO_MB: '1000',
    MAX_REPO_FILES: '1000000',
    CLONE_TIMEOUT_SECONDS: '600',
    ALLOW_PRIVATE_NETWORKS: '1',
    NODE_ENV: 'production', // as the Dockerfile runs it
  };
  delete env.API_TOKENS;
  const child = spawn(process.execPath, ['--import', 'tsx', 'upload-service/src/main.ts'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4096)));
  let id: string | undefined;
  // Made while the service starts: neither is measured yet.
  const making = largeRepo(ctx.git, name, megabytes * MB);
  making.catch(() => undefined); // its failure is thrown where it is awaited, not as an unhandled rejection
  try {
    const api = `http://127.0.0.1:${port}`;
    await waitReady(child, `${api}/readyz`, () => stderr);
    const repo = await making;
    const idle = procStatus(child.pid!).rss;
    const started = performance.now();
    const res = await fetch(`${api}/deploy`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ repoUrl: repo.url }) });
    const body = (await res.json().catch(() => null)) as { id?: string } | null;
    if (res.status !== 202) throw new Error(`upload-service answered ${res.status} to the ${megabytes} MB repository: ${JSON.stringify(body)}`);
    id = body?.id;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const peak = procStatus(child.pid!).hwm;
    const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;
    const what = `upload-service peak RSS, ${megabytes} MB repository (${repo.files} files of 1–5 MB, POST → 202 in ${seconds} s): idle after start (A) vs peak, VmHWM (B)`;
    return ctx.quick
      ? { section: 'upload', case: `${what}; --quick: ${megabytes} MB, not judged`, a: mb(idle), b: mb(peak), ratio: ratio(peak, idle) }
      : { section: 'upload', case: what, a: mb(idle), b: mb(peak), ratio: ratio(peak, idle), target: '< 200 MB', met: peak / 1024 < 200 };
  } finally {
    await stopChild(child);
    await redis.stop();
    if (id) await ctx.stack.storage.deletePrefix(`source/${id}`);
    await making.catch(() => undefined); // still writing into the folder when the service failed to start
    await rm(path.join(ctx.git.root, `${name}.git`), { recursive: true, force: true });
  }
}

/**
 * A bare repository `<root>/<name>.git` of random (incompressible) files of 1–5 MB adding up to `bytes`,
 * streamed through `git fast-import` one file at a time (createFixtureRepo would hold them all in memory).
 * Stored uncompressed and never deltified: random bytes gain nothing from either, and packing would cost seconds.
 */
async function largeRepo(server: { url: string; root: string }, name: string, bytes: number): Promise<{ url: string; files: number }> {
  const dir = path.join(server.root, `${name}.git`);
  // Only what git needs: simple-git refuses variables such as EDITOR, which `npm run` sets.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };
  await simpleGit({ baseDir: server.root }).env(env).raw(['init', '--quiet', '--bare', '--initial-branch=main', dir]);
  const git = simpleGit({ baseDir: dir }).env(env);
  await git.raw(['config', 'core.bigFileThreshold', '512k']);
  await git.raw(['config', 'core.compression', '0']);
  const sizes: number[] = [];
  for (let total = 0; total < bytes; total += sizes.at(-1)!) sizes.push(Math.min(bytes - total, Math.round(MB + Math.random() * 4 * MB)));
  const who = 'Slipway Bench <bench@slipway.test> 1700000000 +0000';
  function* stream(): Generator<Buffer> {
    yield Buffer.from(`commit refs/heads/main\ncommitter ${who}\ndata 6\nbench\n`);
    yield Buffer.from('M 100644 inline README.md\ndata 19\nA large repository\n\n');
    for (const [i, size] of sizes.entries()) {
      yield Buffer.from(`M 100644 inline data/d${i % 10}/f${i}.bin\ndata ${size}\n`);
      yield randomBytes(size);
      yield Buffer.from('\n');
    }
    yield Buffer.from('done\n');
  }
  const child = spawn('git', ['fast-import', '--quiet', '--done'], { cwd: dir, env, stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4096)));
  child.stdin!.on('error', () => undefined); // EPIPE when fast-import dies; its exit status says why
  Readable.from(stream()).pipe(child.stdin!);
  const code = await new Promise<number | null>((resolve, reject) => child.on('error', reject).on('close', resolve));
  if (code !== 0) throw new Error(`git fast-import of the ${(bytes / MB).toFixed(0)} MB repository failed (${code}): ${stderr.trim()}`);
  return { url: `${server.url}/${name}.git`, files: sizes.length };
}

async function waitReady(child: ChildProcess, url: string, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`upload-service exited (${child.signalCode ?? child.exitCode}) before it was ready: ${stderr().trim()}`);
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`upload-service was not ready within 30 s: ${stderr().trim()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The process's resident set now and its peak so far, in KiB, from /proc. */
function procStatus(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    if (!match) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(match[1]);
  };
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

// `npm run bench`: every speed goal measured side by side in one run, on the same Redis, S3 and git
// server, printed as one table of figures, ratios and targets, and (full runs) written to
// bench/results.md with the machine at the top. `npm run bench -- --quick` runs smaller sizes and
// fewer rounds (CI runs it, so the bench never rots; its figures are indicative only);
// `--only queue,upload` runs some sections; `--s3-latency-ms 20` is how far away the rows that say so put S3
// (a proxy adds it each way to every request). Starts its own servers on free loopback ports.
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { spawnS3rver } from '../dev/s3-server';
import { startGitServer } from '../test/harness/git-server';
import { startStackOn } from '../test/harness/stack';
import { machine, table, type BenchContext, type Row } from './lib';
import { benchQueue } from './queue';
import { benchScale } from './scale';
import { benchBuilds, benchEndToEnd, benchSandbox, benchServing, benchSweep } from './sections';
import { benchUpload } from './upload';

// In this order: the sections that need the stack's in-process workers first; sweep and scale stop them.
const SECTIONS: Record<string, (ctx: BenchContext) => Promise<Row[]>> = {
  e2e: benchEndToEnd,
  serving: benchServing,
  builds: benchBuilds,
  upload: benchUpload,
  queue: benchQueue,
  sandbox: benchSandbox,
  sweep: benchSweep,
  scale: benchScale,
};

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, 's3-latency-ms': { type: 'string', default: '20' } } });
const s3LatencyMs = Number(values['s3-latency-ms']);
if (!Number.isInteger(s3LatencyMs) || s3LatencyMs < 0 || s3LatencyMs > 1000) {
  console.error(`bench: --s3-latency-ms ${values['s3-latency-ms']}: a whole number of milliseconds from 0 to 1000`);
  process.exit(2);
}
const only = values.only?.split(',').map((s) => s.trim());
const unknown = only?.filter((s) => !(s in SECTIONS)) ?? [];
if (unknown.length > 0) {
  console.error(`bench: no section ${unknown.join(', ')}; the sections are ${Object.keys(SECTIONS).join(', ')}`);
  process.exit(2);
}

const started = Date.now();
const tmpRoot = await mkdtemp(path.join(tmpdir(), 'slipway-bench-'));
await chmod(tmpRoot, 0o711); // builds run as uids of their own, and must be able to pass through
const s3 = await spawnS3rver({ directory: path.join(tmpRoot, 's3') });
const git = await startGitServer(path.join(tmpRoot, 'git'));
const stack = await startStackOn({ s3Endpoint: s3.endpoint, gitUrl: git.url, gitRoot: git.root, tmpRoot }, { env: { BUILD_TIMEOUT_SECONDS: '300' } });
const ctx: BenchContext = { quick: values.quick, tmpRoot, s3Endpoint: s3.endpoint, s3LatencyMs, git: { url: git.url, root: git.root }, stack };
const rows: Row[] = [];
try {
  for (const [name, section] of Object.entries(SECTIONS)) {
    if (only && !only.includes(name)) continue;
    const t = Date.now();
    process.stderr.write(`bench: ${name} …`);
    rows.push(...(await section(ctx)));
    process.stderr.write(` ${((Date.now() - t) / 1000).toFixed(0)} s\n`);
  }
} finally {
  await stack.close();
  await git.close();
  await s3.close();
  await rm(tmpRoot, { recursive: true, force: true });
}

const redisVersion = (await promisify(execFile)('redis-server', ['--version'])).stdout.match(/v=(\S+)/)?.[1] ?? 'unknown';
const report = [
  `# Bench results`,
  '',
  `\`npm run bench${values.quick ? ' -- --quick' : ''}\`, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${((Date.now() - started) / 1000).toFixed(0)} s.`,
  '',
  ...machine({ redis: redisVersion }),
  '',
  'A and B are measured side by side in this one run (medians unless a case says otherwise); the ratio is',
  'the one the case names; a target is the goal the row is judged by.',
  '',
  table(rows),
  '',
].join('\n');
console.log(`\n${report}`);
if (!values.quick && !only) {
  await writeFile(path.join(import.meta.dirname, 'results.md'), report);
  console.log('bench: written to bench/results.md');
}
const missed = rows.filter((r) => r.met === false);
if (missed.length > 0) console.log(`bench: ${missed.length} target(s) not met: ${missed.map((r) => r.case).join('; ')}`);

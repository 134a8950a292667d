// Bench section 'scale': the same batch of no-op deployments drained by 1, 2 and 4 deploy-service
// worker processes (the real main.ts as children), as deployments per second, and proof that
// no deployment was built twice along the way.
//
// It closes the stack's in-process workers so that only its own processes consume, and leaves them
// closed: the orchestrator must run this section after every section that needs in-process workers.
import { QUEUE_KEY, Storage, createS3Client, forEachBounded, newDeploymentId, siteUrl, storageKeys, type DeploymentRecord } from '@slipway/shared';
import { BUILD_START_LINE } from '../test/harness/stack';
import { spawnWorkerProcess, waitUntil, type WorkerProcess } from '../test/harness/worker-process';
import { perSecond, ratio, type BenchContext, type Row } from './lib';

const DEPLOYMENTS = 1000;
const QUICK_DEPLOYMENTS = 60;
// The machine these figures were first taken on has 2 cores: 4 worker processes (besides Redis,
// s3rver and the bench itself, all busy) cannot scale linearly there; the 4-process row shows what
// that contention costs, not a limit of the queue.
const PROCESS_COUNTS = [1, 2, 4] as const;
/** Preparing records and sources is not timed, but bounded: s3rver is single-threaded. */
const PREPARE_CONCURRENCY = 16;
const POLL_MS = 50;
/** One no-op deployment takes tens of milliseconds; this only stops a stuck round from hanging the bench. */
const DRAIN_TIMEOUT_MS = 180_000;

interface Round {
  processes: number;
  /** Deployments per second, first enqueue to last `deployed`. */
  rate: number;
}

export async function benchScale(ctx: BenchContext): Promise<Row[]> {
  const { stack } = ctx;
  const count = ctx.quick ? QUICK_DEPLOYMENTS : DEPLOYMENTS;
  for (const w of stack.workers) await w.close();

  // BUILD_SANDBOX=off: a no-op deployment runs no command, so this measures the queue and the
  // platform steps (download, publish, settle), not bubblewrap. One slot per process, so the
  // process count is the consumer count.
  // NODE_NO_WARNINGS: each child would print the AWS SDK's Node-version notice into the bench's output.
  const env = { ...stack.env, BUILD_CONCURRENCY: '1', BUILD_SANDBOX: 'off', NODE_NO_WARNINGS: '1' };
  const s3 = createS3Client(stack.config.s3);
  const rounds: Round[] = [];
  try {
    for (const processes of PROCESS_COUNTS) {
      // A bucket per round: s3rver lists a prefix by reading its whole parent folder, so in a shared
      // bucket each round's listings would be slower than the last one's and the rounds unequal.
      const bucket = `${stack.config.s3.bucket}-scale-${processes}`;
      const storage = new Storage(s3, bucket);
      await storage.ensureBucket();
      rounds.push(await round(ctx, storage, { ...env, S3_BUCKET: bucket }, count, processes));
    }
  } finally {
    s3.destroy();
  }

  const label = `${count.toLocaleString('en-US')} no-op deployments`;
  const rate1 = rounds[0]!.rate;
  const rows: Row[] = [{ section: 'scale', case: `${label}, 1 worker process: deployments/s`, a: '—', b: perSecond(rate1), ratio: '—' }];
  for (const r of rounds.slice(1)) {
    rows.push({ section: 'scale', case: `${label}, 1 vs ${r.processes} worker processes: deployments/s`, a: perSecond(rate1), b: perSecond(r.rate), ratio: ratio(r.rate, rate1) });
  }
  // round() throws on any double build, so reaching here means every one was built once.
  const total = count * rounds.length;
  rows.push({ section: 'scale', case: `${label} × ${rounds.length} rounds: built exactly once`, a: '', b: `${total.toLocaleString('en-US')} of ${total.toLocaleString('en-US')}`, ratio: '', target: 'all', met: true });
  return rows;
}

/** One timed drain of `count` fresh no-op deployments by `processes` worker processes. */
async function round(ctx: BenchContext, storage: Storage, env: Record<string, string>, count: number, processes: number): Promise<Round> {
  const { queue, redis } = ctx.stack;
  const waiting = await redis.lLen(QUEUE_KEY);
  if (waiting > 0) throw new Error(`bench scale: build-queue holds ${waiting} ids before the round; another section left work behind`);
  const workers: WorkerProcess[] = [];
  try {
    // The processes start up while the batch is prepared: nothing is enqueued yet, so they wait idle.
    for (let i = 0; i < processes; i++) workers.push(spawnWorkerProcess(env));
    const ids = await prepare(ctx, storage, count);
    await Promise.all(workers.map((w) => w.ready()));

    const started = Date.now();
    // Concurrent enqueues share one pipelined connection: pushing the batch takes a fraction of the drain.
    const results = await Promise.all(ids.map((id) => queue.enqueue(id)));
    const refused = results.filter((r) => r !== 'queued').length;
    if (refused > 0) throw new Error(`bench scale: ${refused} of ${count} enqueues were refused`);
    const finished = await drained(ctx, ids, workers);
    const seconds = (Math.max(...finished) - started) / 1000;

    // The drain ends at the last Redis write; wait for the processes' own log lines to arrive too.
    await waitUntil('every worker log line of the round', async () => (countLogs(workers, 'build deployed').size >= count ? true : undefined), 10_000);
    await checkBuiltOnce(ctx, ids, workers);
    return { processes, rate: count / seconds };
  } finally {
    // SIGTERM is the worker's orderly shutdown; each cleanup on its own, so one failure leaks no process.
    await Promise.all(workers.map((w) => w.kill('SIGTERM').catch(() => undefined)));
  }
}

/** Records `uploading` with a one-file source in S3, as upload-service's deploy flow leaves them; nothing enqueued. */
async function prepare(ctx: BenchContext, storage: Storage, count: number): Promise<string[]> {
  const { queue, config } = ctx.stack;
  const ids = Array.from({ length: count }, () => newDeploymentId());
  await forEachBounded(ids, PREPARE_CONCURRENCY, async (id) => {
    const record: DeploymentRecord = {
      id,
      repoUrl: 'https://bench.invalid/noop.git',
      status: 'uploading',
      attempts: 0,
      createdAt: new Date().toISOString(),
      url: siteUrl(config, id),
    };
    await queue.createUploading(record);
    // No package.json: the worker plans no command and publishes the folder as it is.
    await storage.putText(`${storageKeys.source(id)}/index.html`, `<!doctype html><title>${id}</title>`, 'text/html; charset=utf-8');
  });
  return ids;
}

/** Polls the records still pending (a shrinking set) until all are deployed; returns their finishedAt times (ms). */
async function drained(ctx: BenchContext, ids: readonly string[], workers: readonly WorkerProcess[]): Promise<number[]> {
  const { redis, queue } = ctx.stack;
  const pending = new Set(ids);
  const finished: number[] = [];
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  while (pending.size > 0) {
    const gone = workers.find((w) => w.child.exitCode !== null || w.child.signalCode !== null);
    if (gone) throw new Error(`bench scale: worker process ${gone.pid} exited mid-round (${gone.child.exitCode ?? gone.child.signalCode})`);
    // Cheap until the list is empty: one LLEN. Only then are the records read, in one pipeline.
    if ((await redis.lLen(QUEUE_KEY)) === 0) {
      const batch = [...pending];
      const records = await Promise.all(batch.map((id) => queue.get(id)));
      for (const record of records) {
        if (!record || record.status === 'queued' || record.status === 'building') continue;
        if (record.status !== 'deployed') throw new Error(`bench scale: deployment ${record.id} ended ${record.status}: ${record.error ?? ''}`);
        pending.delete(record.id);
        finished.push(Date.parse(record.finishedAt ?? '') || Date.now());
      }
    }
    if (pending.size === 0) break;
    if (Date.now() > deadline) throw new Error(`bench scale: ${pending.size} of ${ids.length} deployments not deployed within ${DRAIN_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return finished;
}

/** How many times each deployment id appears with log message `msg`, across the worker processes. */
function countLogs(workers: readonly WorkerProcess[], msg: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const w of workers) {
    for (const entry of w.logs) {
      if (entry.msg !== msg || typeof entry.deploymentId !== 'string') continue;
      counts.set(entry.deploymentId, (counts.get(entry.deploymentId) ?? 0) + 1);
    }
  }
  return counts;
}

/**
 * Throws unless each id was started once and deployed once: one start line in its deployment log,
 * attempts 1 in its record, and one 'build started' and one 'build deployed' across the processes.
 */
async function checkBuiltOnce(ctx: BenchContext, ids: readonly string[], workers: readonly WorkerProcess[]): Promise<void> {
  const { queue } = ctx.stack;
  const started = countLogs(workers, 'build started');
  const deployed = countLogs(workers, 'build deployed');
  const problems: string[] = [];
  await forEachBounded(ids, 32, async (id) => {
    const [record, log] = await Promise.all([queue.get(id), queue.readLog(id, '-')]);
    const startLines = log.lines.filter((line) => BUILD_START_LINE.test(line)).length;
    const facts = { status: record?.status, attempts: record?.attempts, startLines, started: started.get(id) ?? 0, deployed: deployed.get(id) ?? 0 };
    if (facts.status !== 'deployed' || facts.attempts !== 1 || startLines !== 1 || facts.started !== 1 || facts.deployed !== 1) {
      problems.push(`${id} ${JSON.stringify(facts)}`);
    }
  });
  if (problems.length > 0) {
    throw new Error(`bench scale: ${problems.length} of ${ids.length} deployments were not built exactly once with ${workers.length} worker processes: ${problems.slice(0, 5).join('; ')}`);
  }
}

// One worker slot: claim → run → finish, for ever, on its own blocking connection. A slot never
// dies of one bad deployment: every outcome is recorded (deployed, failed, canceled, retried, dead,
// or released on shutdown) and the loop goes on.
import {
  BuildFailedError,
  Queue,
  describeError,
  isRedisUnavailable,
  storageKeys,
  type Config,
  type DeploymentRecord,
  type Logger,
  type Redis,
  type Storage,
} from '@slipway/shared';
import { BuildLog } from './build-log';
import type { BuildIdentity } from './build-user';
import { processDeployment } from './processor';

/**
 * How long one BLMOVE blocks. Short, so the slot notices a shutdown within seconds (as Sidekiq's
 * fetch does), and well below node-redis's 5 s default command timeout, in case it applies.
 */
export const CLAIM_BLOCK_SECONDS = 2;
const OUTAGE_BACKOFF_MS = 1000;
/** How long a slot keeps trying to record an outcome while Redis is unreachable. */
const RECORD_RETRY_MS = 5 * 60_000;
const MAX_RETRY_DELAY_MS = 5 * 60_000;

/** Why a running build was stopped from outside. */
export type StopReason = 'cancel' | 'shutdown';

export interface SlotDeps {
  config: Config;
  queue: Queue;
  storage: Storage;
  logger: Logger;
  /** A connection of the slot's own: BLMOVE holds it while it blocks. */
  conn: Redis;
  identity: BuildIdentity | null;
  /** Called when the slot starts or ends a build, so its heartbeat can say so at once. */
  onChange?: (slot: Slot) => void;
}

export class Slot {
  private stopping = false;
  private forced = false;
  private build: AbortController | null = null;
  private loop: Promise<void> | null = null;
  private readonly logger: Logger;
  current: string | null = null;
  since = new Date();

  constructor(
    readonly id: string,
    private readonly deps: SlotDeps,
  ) {
    this.logger = deps.logger.child({ slot: id });
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops claiming; with `force`, also stops the running build, which goes back to the queue. */
  async stop({ force = false } = {}): Promise<void> {
    this.stopping = true;
    if (force) {
      this.forced = true;
      this.build?.abort('shutdown' satisfies StopReason);
    }
    await this.loop;
  }

  /** Stops the build of `id` if this slot is running it; the deployment ends `canceled`. */
  cancel(id: string): boolean {
    if (this.current !== id || !this.build) return false;
    this.build.abort('cancel' satisfies StopReason);
    return true;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let id: string | null;
      try {
        id = await Queue.claim(this.deps.conn, this.id, CLAIM_BLOCK_SECONDS);
      } catch (err) {
        // The connection logs the outage once; the slot just waits and tries again.
        this.logger.debug({ err: describeError(err) }, 'claim failed');
        await sleep(OUTAGE_BACKOFF_MS);
        continue;
      }
      if (id === null) continue;
      if (this.stopping) {
        // Claimed just as the shutdown began: never started, so it goes straight back, next in line.
        await persist(() => this.deps.queue.unclaim(id!, this.id)).catch((err: unknown) =>
          this.logger.error({ deploymentId: id, err: describeError(err) }, 'could not give back a claim; the reaper will'),
        );
        continue;
      }
      this.setCurrent(id);
      try {
        await this.handle(id);
      } catch (err) {
        // Only reachable when Redis stayed away longer than RECORD_RETRY_MS: the id stays in this
        // slot's processing list, and a reaper recovers it once this process is gone.
        this.logger.error({ deploymentId: id, err: describeError(err) }, 'could not record the outcome of a deployment');
      } finally {
        this.setCurrent(null);
      }
    }
  }

  private setCurrent(id: string | null): void {
    this.current = id;
    this.since = new Date();
    this.deps.onChange?.(this);
  }

  private async handle(id: string): Promise<void> {
    const { queue } = this.deps;
    const state = await persist(() => queue.start(id, this.id));
    if (state !== 'building') {
      if (state === 'missing') this.logger.warn({ deploymentId: id }, 'no record for a claimed id; moved to the dead list');
      else this.logger.info({ deploymentId: id, state }, 'claimed id is no longer queued; dropped');
      return;
    }
    const record = await persist(() => queue.get(id));
    if (!record) {
      await persist(() => queue.bury(id, this.id, 'the deployment record is unreadable'));
      this.logger.warn({ deploymentId: id }, 'unreadable record; moved to the dead list');
      return;
    }
    await this.runBuild(record);
  }

  private async runBuild(record: DeploymentRecord): Promise<void> {
    const { config, queue, storage } = this.deps;
    const id = record.id;
    const logger = this.logger.child({ deploymentId: id });
    const log = new BuildLog(queue, id, config.maxLogBytes);
    const abort = new AbortController();
    this.build = abort;
    if (this.forced) abort.abort('shutdown' satisfies StopReason);
    const started = Date.now();
    logger.info({ repoUrl: record.repoUrl, attempt: record.attempts }, 'build started');
    log.line(`[slipway] build started on ${this.id} (attempt ${record.attempts})`);
    try {
      // Written before any work, so every start is on record even if this process dies right after.
      await log.flush();
      const output = await processDeployment({ config, storage, logger, identity: this.deps.identity }, record, log, abort.signal);
      await this.closeLog(id, log);
      await persist(() => queue.finish(id, this.id, { outputFiles: output.files, outputBytes: output.bytes }));
      logger.info({ ms: Date.now() - started, files: output.files }, 'build deployed');
    } catch (err) {
      await this.settleFailure(record, log, abort.signal, err, started, logger);
    } finally {
      this.build = null;
    }
  }

  private async settleFailure(record: DeploymentRecord, log: BuildLog, signal: AbortSignal, err: unknown, started: number, logger: Logger): Promise<void> {
    const { config, queue } = this.deps;
    const id = record.id;
    const ms = Date.now() - started;
    if (signal.aborted && signal.reason === ('cancel' satisfies StopReason)) {
      log.line('[slipway] canceled');
      await this.closeLog(id, log);
      await persist(() => queue.canceled(id, this.id));
      logger.info({ ms }, 'build canceled');
    } else if (signal.aborted) {
      // Stopped by a shutdown, not failed: it runs again from the start, next in line.
      log.line('[slipway] worker stopping; the deployment goes back to the queue');
      await this.closeLog(id, log);
      await persist(() => queue.release(id, this.id));
      logger.info({ ms }, 'build stopped by shutdown; released to the queue');
    } else if (err instanceof BuildFailedError) {
      log.line(`[slipway] failed: ${err.message}`);
      await this.closeLog(id, log);
      await persist(() => queue.fail(id, this.id, err.message));
      logger.info({ ms, reason: err.message.split('\n')[0] }, 'build failed');
    } else {
      const reason = `platform error: ${describeError(err)}`;
      const delay = retryDelay(config.retryBaseMs, record.attempts);
      log.line(`[slipway] ${reason}`);
      await this.closeLog(id, log);
      const outcome = await persist(() => queue.retryLater(id, this.id, reason, config.maxAttempts, delay));
      logger.warn({ ms, reason, outcome, retryInMs: outcome === 'retrying' ? delay : undefined, attempt: record.attempts }, 'build hit a platform error');
    }
  }

  /** Writes the last log lines, and the whole log to logs/<id>.log; a failure here never changes the outcome. */
  private async closeLog(id: string, log: BuildLog): Promise<void> {
    await log.flush().catch((err: unknown) => this.logger.warn({ deploymentId: id, err: describeError(err) }, 'could not write the build log to Redis'));
    try {
      await this.deps.storage.putText(storageKeys.log(id), log.text());
    } catch (err) {
      this.logger.warn({ deploymentId: id, err: describeError(err) }, 'could not save the build log to S3');
    }
  }
}

/** Exponential backoff with jitter: base·2^(attempt−1), then a random point in its upper half. */
export function retryDelay(baseMs: number, attempt: number): number {
  const full = Math.min(baseMs * 2 ** Math.max(0, attempt - 1), MAX_RETRY_DELAY_MS);
  return Math.round(full / 2 + Math.random() * (full / 2));
}

/**
 * Retries a Redis step while Redis is unreachable (it is restarting, or the network blinked): an
 * outcome must be recorded, and every step here is safe to repeat.
 */
async function persist<T>(step: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + RECORD_RETRY_MS;
  for (let wait = 100; ; wait = Math.min(wait * 2, 5000)) {
    try {
      return await step();
    } catch (err) {
      if (!isRedisUnavailable(err) || Date.now() > deadline) throw err;
      await sleep(wait);
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

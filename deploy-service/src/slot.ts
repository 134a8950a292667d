// One worker slot: claim → run → finish, for ever, on its own blocking connection. A slot never
// dies of one bad deployment: every outcome is recorded and the loop goes on.
import {
  BuildFailedError,
  Queue,
  describeError,
  storageKeys,
  type Config,
  type DeploymentRecord,
  type Logger,
  type Redis,
  type Storage,
} from '@slipway/shared';
import { BuildLog } from './build-log';
import { processDeployment } from './processor';

/**
 * How long one BLMOVE blocks. Short, so the slot notices a shutdown within seconds (as Sidekiq's
 * fetch does), and below node-redis's default 5 s command timeout, which also applies to blocking commands.
 */
export const CLAIM_BLOCK_SECONDS = 2;
const OUTAGE_BACKOFF_MS = 1000;

export interface SlotDeps {
  config: Config;
  queue: Queue;
  storage: Storage;
  logger: Logger;
  /** A connection of the slot's own: BLMOVE holds it while it blocks. */
  conn: Redis;
}

export class Slot {
  private stopping = false;
  private readonly abort = new AbortController();
  private current: string | null = null;
  private loop: Promise<void> | null = null;
  private readonly logger: Logger;

  constructor(
    readonly id: string,
    private readonly deps: SlotDeps,
  ) {
    this.logger = deps.logger.child({ slot: id });
  }

  get currentDeployment(): string | null {
    return this.current;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops claiming; with `force`, also stops the running build. Resolves when the loop has ended. */
  async stop({ force = false } = {}): Promise<void> {
    this.stopping = true;
    if (force) this.abort.abort(new Error('worker stopping'));
    await this.loop;
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
      this.current = id;
      try {
        await this.handle(id);
      } catch (err) {
        this.logger.error({ deploymentId: id, err: describeError(err) }, 'could not record the outcome of a deployment');
      } finally {
        this.current = null;
      }
    }
  }

  private async handle(id: string): Promise<void> {
    const { queue } = this.deps;
    const state = await queue.start(id, this.id);
    if (state !== 'building') {
      this.logger.warn({ deploymentId: id, state }, state === 'missing' ? 'no record for a claimed id; moved to the dead list' : 'claimed id is not queued; dropped');
      return;
    }
    const record = await queue.get(id);
    if (!record) {
      await queue.fail(id, this.id, 'the deployment record is unreadable');
      return;
    }
    await this.build(record);
  }

  private async build(record: DeploymentRecord): Promise<void> {
    const { config, queue, storage } = this.deps;
    const logger = this.logger.child({ deploymentId: record.id });
    const log = new BuildLog(queue, record.id, config.maxLogBytes);
    const started = Date.now();
    logger.info({ repoUrl: record.repoUrl, attempt: record.attempts }, 'build started');
    try {
      const output = await processDeployment({ config, storage, logger }, record, log, this.abort.signal);
      await log.flush();
      await this.saveLog(record.id, log);
      await queue.finish(record.id, this.id, { outputFiles: output.files, outputBytes: output.bytes });
      logger.info({ ms: Date.now() - started, files: output.files }, 'build deployed');
    } catch (err) {
      if (this.abort.signal.aborted && !(err instanceof BuildFailedError)) {
        // Stopped by a shutdown, not failed: another worker runs it from the start.
        log.line('[slipway] worker stopping; the deployment goes back to the queue');
        await log.flush().catch(() => undefined);
        await queue.release(record.id, this.id);
        logger.info({ ms: Date.now() - started }, 'build stopped by shutdown; released to the queue');
        return;
      }
      const reason = err instanceof BuildFailedError ? err.message : `platform error: ${describeError(err)}`;
      log.line(`[slipway] failed: ${reason}`);
      await log.flush().catch(() => undefined);
      await this.saveLog(record.id, log);
      await queue.fail(record.id, this.id, reason);
      logger.info({ ms: Date.now() - started, reason: reason.split('\n')[0] }, 'build failed');
    }
  }

  /** The whole (capped) log as logs/<id>.log; the Redis stream is what the API serves. */
  private async saveLog(id: string, log: BuildLog): Promise<void> {
    try {
      await this.deps.storage.putText(storageKeys.log(id), log.text());
    } catch (err) {
      this.logger.warn({ deploymentId: id, err: describeError(err) }, 'could not save the build log to S3');
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

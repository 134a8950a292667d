// One worker slot: sweep → claim → start → run → settle, for ever, on its own blocking connection;
// while the list has work, the settle claims the next id in the same step (no sweep or claim between).
// A slot never dies of one bad deployment: every outcome is recorded (deployed, failed, canceled,
// retried, dead, or released on shutdown) before it claims again, and the loop goes on.
import { setMaxListeners } from 'node:events';
import {
  BuildFailedError,
  ClaimStalledError,
  Queue,
  describeError,
  describeFailure,
  isRedisUnavailable,
  newBuildId,
  storageKeys,
  type Config,
  type DeploymentRecord,
  type Logger,
  type Redis,
  type Storage,
} from '@slipway/shared';
import { BuildLog } from '../deployment/build-log';
import { runDeployment } from '../deployment/run-deployment';
import { Holdings, runWatched, watchdogFailure, type Watchdog } from '../deployment/watchdog';
import { claimed, retryDelay, type Claimed, type Started } from './next';
import { removeBuild } from '../deployment/publish';
import type { SandboxSupport } from '../sandbox/sandbox';
import type { ToolCache } from '../toolchain/tool-cache';
import type { BuildCache } from '../cache/cache';
import type { DiskKind } from '../sandbox/disk';

/** How long one BLMOVE blocks: short, so the slot notices a shutdown within seconds (as Sidekiq's fetch does). */
export const CLAIM_BLOCK_SECONDS = 2;
const OUTAGE_BACKOFF_MS = 1000;

/** Why a build was stopped: a cancel, the worker shutting down, or the watchdog (no progress past a deadline). */
export type StopReason = 'cancel' | 'shutdown' | 'watchdog';

export interface SlotDeps {
  config: Config;
  queue: Queue;
  storage: Storage;
  logger: Logger;
  /** Opens a connection of the slot's own (BLMOVE holds it while it blocks); the slot closes it. */
  connect: () => Promise<Redis>;
  sandbox: SandboxSupport;
  disk: DiskKind;
  tools: ToolCache;
  cache: BuildCache | null;
  /** Called when the slot starts or ends a build, so its heartbeat can say so at once. */
  onChange?: (slot: Slot) => void;
}

export class Slot {
  private stopping = false;
  private forced = false;
  private build: AbortController | null = null;
  /** What the last settle claimed (and mostly started) for this slot in the same step; built next, without a claim. */
  private claimedNext: Claimed | null = null;
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
    let conn = await this.persist(() => this.deps.connect());
    while (!this.stopping) {
      // The last settle may have claimed the next id already (a busy slot: one step for both).
      const next = this.claimedNext;
      this.claimedNext = null;
      if (next !== null) {
        await this.buildClaimed(next.id, next.started);
        continue;
      }
      // An idle slot holds nothing. Whatever its list still has is stranded (a claim whose reply was
      // lost, an outcome that could not be recorded, a write lost with the AOF's last second) and
      // goes back now; while that cannot be done (Redis is away) the slot claims nothing.
      try {
        await this.sweep();
      } catch (err) {
        this.logger.debug({ err: describeError(err) }, 'sweep failed');
        await sleep(OUTAGE_BACKOFF_MS);
        continue;
      }
      let id: string | null;
      try {
        id = await Queue.claim(conn, this.id, CLAIM_BLOCK_SECONDS);
      } catch (err) {
        if (err instanceof ClaimStalledError) {
          this.logger.warn({ err: err.message }, 'replacing the slot\'s Redis connection');
          conn.destroy();
          conn = await this.persist(() => this.deps.connect());
          continue;
        }
        // The connection logs the outage once; the slot waits, and the sweep takes back a claim
        // whose reply was lost.
        this.logger.debug({ err: describeError(err) }, 'claim failed');
        await sleep(OUTAGE_BACKOFF_MS);
        continue;
      }
      if (id === null || this.stopping) continue; // claimed as the shutdown began: the last sweep gives it back
      await this.buildClaimed(id);
    }
    // A next id claimed as the shutdown began is in this slot's list: the last sweep gives it back.
    await this.persist(() => this.sweep()).catch((err: unknown) =>
      this.logger.error({ err: describeError(err) }, 'could not give back what this slot held; the reaper will'),
    );
    await conn.close().catch(() => conn.destroy());
  }

  /** Builds a claimed id; `started` when the settle that claimed it also started it. */
  private async buildClaimed(id: string, started?: Started): Promise<void> {
    if (this.stopping && started?.state !== 'started') return; // the last sweep gives it back
    this.setCurrent(id);
    try {
      // Started by the settle as the shutdown began: handed back, with its attempt, as a stopped build is.
      if (this.stopping) await this.persist(() => this.deps.queue.release(id, this.id));
      else await this.handle(id, started);
    } catch (err) {
      // Redis stayed away until the slot began stopping, or refused a step: the id stays in this
      // slot's list, for the next sweep or (if this process is gone) a reaper.
      this.logger.error({ deploymentId: id, err: describeError(err) }, 'could not record the outcome of a deployment; it goes back to the queue');
    } finally {
      this.setCurrent(null);
    }
  }

  private async sweep(): Promise<void> {
    const swept = await this.deps.queue.sweep(this.id, this.deps.config.maxAttempts);
    if (swept.requeued + swept.dead + swept.dropped > 0) this.logger.warn(swept, 'took back ids left in this slot\'s processing list');
  }

  private setCurrent(id: string | null): void {
    this.current = id;
    this.since = new Date();
    this.deps.onChange?.(this);
  }

  private async handle(id: string, started?: Started): Promise<void> {
    const { queue } = this.deps;
    const state = started ? started.state : await this.persist(() => queue.start(id, this.id));
    if (state !== 'started') {
      if (state === 'missing') this.logger.warn({ deploymentId: id }, 'no record for a claimed id; moved to the dead list');
      else if (state === 'waiting') this.logger.info({ deploymentId: id }, 'another build of this project branch is running; this one waits its turn');
      else this.logger.info({ deploymentId: id, state }, 'claimed id is not this slot\'s to build; dropped');
      return;
    }
    const record = started ? started.record : await this.persist(() => queue.get(id));
    if (!record) {
      await this.persist(() => queue.bury(id, this.id, 'the deployment record is unreadable'));
      this.logger.warn({ deploymentId: id }, 'unreadable record; moved to the dead list');
      return;
    }
    await this.runBuild(record);
  }

  private async runBuild(record: DeploymentRecord): Promise<void> {
    const { config, queue, storage } = this.deps;
    const id = record.id;
    const build = newBuildId();
    const logger = this.logger.child({ deploymentId: id, build });
    const log = new BuildLog(queue, id, config.maxLogBytes);
    const abort = new AbortController();
    const holdings = new Holdings();
    // Every S3 request of the build listens on it (UPLOAD_CONCURRENCY at once): no leak, many listeners.
    setMaxListeners(0, abort.signal);
    this.build = abort;
    if (this.forced) abort.abort('shutdown' satisfies StopReason);
    const started = Date.now();
    logger.info({ repoUrl: record.repoUrl, attempt: record.attempts }, 'build started');
    if (this.deps.sandbox.kind === 'off') logger.warn('BUILD_SANDBOX=off: this build runs without a sandbox and can reach everything the worker can');
    log.line(`[slipway] build ${build} started on ${this.id} (attempt ${record.attempts})`);
    let deployed = false;
    try {
      // Written before any work, so every start is on record even if this process dies right after.
      await log.flush();
      // The backstop: a phase past its deadline stops the build (watchdog.ts).
      const { sandbox, disk, tools, cache } = this.deps;
      // Its folder, disk and uid are released here once the outcome is recorded (see the finally below).
      const deployment = (guard: { watchdog: Watchdog; holdings: Holdings }) => runDeployment({ config, storage, logger, sandbox, disk, tools, cache }, record, build, log, abort.signal, { ...guard, releaseAfter: true });
      const output = await runWatched(deployment, { abort, log, logger, started, holdings });
      await this.closeLog(id, log);
      const result = await this.persist(() => queue.finish(id, this.id, { liveBuild: build, outputFiles: output.files, outputBytes: output.bytes, warnings: output.warnings }, { claimNext: !this.stopping, skew: this.deps.config.skew }));
      this.claimedNext = claimed(result);
      if (!result.recorded) {
        logger.warn({ ms: Date.now() - started }, 'build finished, but the deployment is no longer this slot\'s: outcome not recorded, output removed');
        return;
      }
      deployed = true;
      logger.info({ ms: Date.now() - started, files: output.files }, 'build deployed');
      // With skew protection the replaced build waits in builds:retired, and the janitor removes it after the window.
      if (result.previousBuild && result.previousBuild !== build && this.deps.config.skew.ms === 0) await this.removeOutput(id, result.previousBuild, logger);
    } catch (err) {
      await this.settleFailure(record, log, abort.signal, err, started, logger);
    } finally {
      this.build = null;
      await holdings.releaseAll((what, err) => logger.error({ what, err: describeError(err) }, 'could not release what a build held'));
      // A build that did not go live leaves nothing behind. Read again first: a settle whose reply
      // was lost may have made it live after all, and a live build is never removed.
      if (!deployed) await this.removeUnlessLive(id, build, logger);
    }
  }

  private async settleFailure(record: DeploymentRecord, log: BuildLog, signal: AbortSignal, err: unknown, started: number, logger: Logger): Promise<void> {
    const { config, queue } = this.deps;
    const id = record.id;
    const ms = Date.now() - started;
    if (signal.aborted && signal.reason === ('watchdog' satisfies StopReason)) err = watchdogFailure(err);
    let outcome: string;
    if (signal.aborted && signal.reason === ('cancel' satisfies StopReason)) {
      log.line('[slipway] canceled');
      await this.closeLog(id, log);
      const result = await this.persist(() => queue.canceled(id, this.id, { claimNext: !this.stopping }));
      this.claimedNext = claimed(result);
      outcome = recorded(result.recorded, 'canceled');
    } else if (signal.aborted && signal.reason !== ('watchdog' satisfies StopReason)) {
      // Stopped by a shutdown, not failed: it runs again from the start, next in line.
      log.line('[slipway] worker stopping; the deployment goes back to the queue');
      await this.closeLog(id, log);
      outcome = await this.persist(() => queue.release(id, this.id));
    } else if (err instanceof BuildFailedError) {
      log.line(`[slipway] failed: ${err.message}`);
      await this.closeLog(id, log);
      const result = await this.persist(() => queue.fail(id, this.id, err.message, { claimNext: !this.stopping }));
      this.claimedNext = claimed(result);
      outcome = recorded(result.recorded, 'failed');
    } else {
      const reason = `platform error: ${describeFailure(err)}`;
      const delay = retryDelay(config.retryBaseMs, record.attempts);
      log.line(`[slipway] ${reason}`);
      await this.closeLog(id, log);
      outcome = await this.persist(() => queue.retryLater(id, this.id, reason, config.maxAttempts, delay));
      if (outcome === 'retrying') logger.warn({ ms, reason, retryInMs: delay, attempt: record.attempts }, 'build hit a platform error; retrying later');
    }
    if (outcome === 'lost') logger.warn({ ms }, 'build ended, but the deployment is no longer this slot\'s: outcome not recorded');
    else logger.info({ ms, outcome, reason: err instanceof Error ? err.message.split('\n')[0] : undefined }, 'build ended');
  }

  private async removeUnlessLive(id: string, build: string, logger: Logger): Promise<void> {
    // Waits out a Redis outage like the outcome did (only a stopping slot gives up).
    const live = await this.persist(() => this.deps.queue.liveBuild(id)).catch(() => undefined);
    if (live === build) return;
    // Redis cannot say: kept for now; the next build of this id removes what never went live.
    if (live === undefined) return logger.warn({ build }, 'could not read whether a build went live; its output is left for the next build of this deployment');
    await this.removeOutput(id, build, logger);
  }

  private async removeOutput(id: string, build: string, logger: Logger): Promise<void> {
    try {
      await removeBuild(this.deps.storage, id, build);
    } catch (err) {
      // Never served (or no longer): the janitor removes it once S3 answers again.
      logger.warn({ build, err: describeError(err) }, 'could not remove a build\'s output; the janitor removes it later');
      await this.persist(() => this.deps.queue.noteUnremoved(id, build)).catch(() => undefined);
    }
  }

  /** Writes the last log lines, and the whole log to logs/<id>.log; a failure here never changes the outcome. */
  private async closeLog(id: string, log: BuildLog): Promise<void> {
    // Like the outcome that follows, the log waits for Redis to come back (lines are kept meanwhile).
    await this.persist(() => log.flush())
      .catch((err: unknown) => this.logger.warn({ deploymentId: id, err: describeError(err) }, 'could not write the build log to Redis'))
      .finally(() => log.close());
    try {
      await this.deps.storage.putText(storageKeys.log(id), log.text());
    } catch (err) {
      this.logger.warn({ deploymentId: id, err: describeError(err) }, 'could not save the build log to S3');
    }
  }

  /**
   * Retries a Redis step while Redis is unreachable (it is restarting, or the network blinked): an
   * outcome must be recorded before the slot claims again, and every step here is safe to repeat.
   * Only a stopping slot gives up, leaving the id in its list for the reaper.
   */
  private async persist<T>(step: () => Promise<T>): Promise<T> {
    for (let wait = 100; ; wait = Math.min(wait * 2, 5000)) {
      try {
        return await step();
      } catch (err) {
        if (!isRedisUnavailable(err) || this.stopping) throw err;
        await sleep(wait);
      }
    }
  }
}

const recorded = (ok: boolean, outcome: string) => (ok ? outcome : 'lost');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

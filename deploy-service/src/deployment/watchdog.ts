// The backstop for a deployment that stops making progress: each phase of a build says how long it
// may take (a command BUILD_TIMEOUT_SECONDS, Slipway's own steps STEP_TIMEOUT_MS, publishing
// PUBLISH_TIMEOUT_MS, each with a grace), and a phase that outlives its deadline fires the watchdog.
// The slot then stops the build, and if it still does not return, releases what it held itself
// (Holdings: each release runs once, whoever asks first) and fails the deployment, so no bug in a
// build's teardown can keep a slot, a folder or a disk for good.

import { BuildFailedError, describeError, type Logger } from '@slipway/shared';

/** What a phase may overrun its own deadline by before the watchdog fires (a deadline's own cleanup). */
export const PHASE_GRACE_MS = 60_000;
/** After the watchdog stops a build, how long the build has to return before the slot stops waiting. */
export const RETURN_GRACE_MS = 30_000;
/** Each release (a folder's removal, a disk's unmount) ends within this when the slot runs it. */
export const RELEASE_TIMEOUT_MS = 60_000;

export class Watchdog {
  private timer: NodeJS.Timeout | null = null;
  private current = 'starting';
  private fired: string | null = null;

  /** `onExpire` hears the phase that outlived its deadline (and the deadline, ms since the epoch), once. */
  constructor(
    private readonly onExpire: (phase: string, deadline: number) => void,
    private readonly graceMs = PHASE_GRACE_MS,
  ) {}

  private deadline = Infinity;

  /** A new phase begins: it may take `ms` (plus the grace). */
  enter(phase: string, ms: number): void {
    this.arm(phase, Date.now() + ms + this.graceMs);
  }

  /** Runs `fn` as a phase of its own inside the current one, whose deadline holds again afterwards. */
  async within<T>(phase: string, ms: number, fn: () => Promise<T>): Promise<T> {
    const outer = { phase: this.current, deadline: this.deadline };
    this.enter(phase, ms);
    try {
      return await fn();
    } finally {
      if (outer.deadline !== Infinity) this.arm(outer.phase, Math.max(outer.deadline, Date.now() + this.graceMs));
    }
  }

  private arm(phase: string, deadline: number): void {
    if (this.fired !== null) return;
    this.stop();
    this.current = phase;
    this.deadline = deadline;
    this.timer = setTimeout(() => {
      this.fired = phase;
      this.onExpire(phase, deadline);
    }, deadline - Date.now());
    this.timer.unref();
  }

  /** The phase that fired it, or null. */
  get expired(): string | null {
    return this.fired;
  }

  get phase(): string {
    return this.current;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.deadline = Infinity;
  }
}

/** What a deployment holds (claim, folder, disk, uid, proxy), released in reverse order, each once. */
export class Holdings {
  private readonly held: { name: string; release: () => Promise<unknown>; done: Promise<void> | null }[] = [];

  add(name: string, release: () => Promise<unknown>): void {
    this.held.push({ name, release, done: null });
  }

  /**
   * Releases everything not yet released, newest first, each on its own and within RELEASE_TIMEOUT_MS:
   * one failing or hanging never keeps the others. A release already under way is waited for, not repeated.
   */
  async releaseAll(onError: (name: string, err: unknown) => void, timeoutMs = RELEASE_TIMEOUT_MS): Promise<void> {
    for (const item of [...this.held].reverse()) {
      item.done ??= withTimeout(item.release(), timeoutMs, `${item.name} was not released within ${timeoutMs / 1000} s`).then(
        () => undefined,
        (err: unknown) => onError(item.name, err),
      );
      await item.done;
    }
  }
}

/** Thrown when a stopped build did not return within RETURN_GRACE_MS. */
export class StuckBuildError extends Error {}

/**
 * Waits for `running`; once the watchdog has fired and `stop` was called, waits at most `graceMs`
 * more, then throws StuckBuildError (the build's promise is left to settle, or not, on its own).
 */
export async function superviseBuild<T>(running: Promise<T>, watchdog: Watchdog, stopped: AbortSignal, graceMs = RETURN_GRACE_MS): Promise<T> {
  running.catch(() => undefined); // it may settle after the slot stopped waiting
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    const arm = () => {
      timer = setTimeout(() => reject(new StuckBuildError(`the build did not stop within ${graceMs / 1000} s of the watchdog stopping it (in ${watchdog.expired ?? watchdog.phase})`)), graceMs);
    };
    if (stopped.aborted) arm();
    else stopped.addEventListener('abort', arm, { once: true });
  });
  stuck.catch(() => undefined);
  try {
    return await Promise.race([running, stuck]);
  } finally {
    clearTimeout(timer);
    watchdog.stop();
  }
}

/**
 * Runs a build under a watchdog: past a phase's deadline the build is stopped ('watchdog'), and a
 * build that then does not return is given up on, what it held released here.
 */
export async function runWatched<T>(
  start: (guard: { watchdog: Watchdog; holdings: Holdings }) => Promise<T>,
  o: { abort: AbortController; log: { line(text: string): void }; logger: Logger; started: number; holdings?: Holdings },
): Promise<T> {
  const holdings = o.holdings ?? new Holdings();
  const watchdog = new Watchdog((phase, deadline) => {
    o.logger.error({ phase }, 'build made no progress past its deadline; stopping it');
    o.log.line(`[slipway] watchdog: ${phase} was still running ${Math.round((Date.now() - o.started) / 1000)} s into the build, past its deadline (${new Date(deadline).toISOString()}); stopping the build`);
    o.abort.abort('watchdog');
  });
  try {
    return await superviseBuild(start({ watchdog, holdings }), watchdog, o.abort.signal);
  } catch (err) {
    if (err instanceof StuckBuildError) {
      o.logger.error({ err: err.message }, 'build did not return after it was stopped; releasing what it held');
      await holdings.releaseAll((what, e) => o.logger.error({ what, err: describeError(e) }, 'could not release what a stuck build held'));
    }
    throw err;
  }
}

/**
 * The failure a deployment the watchdog stopped is recorded with: failed, not retried, though it is
 * the platform's bug rather than the repository's, as run again it would likely hang again.
 */
export function watchdogFailure(err: unknown): BuildFailedError {
  return new BuildFailedError(`the build made no progress past its deadline and was stopped by the worker's watchdog${err instanceof StuckBuildError ? ` (${err.message})` : ''}`);
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer));
}

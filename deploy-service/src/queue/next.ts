// What a slot does next, decided by Redis's answers: the id a settle claimed (and mostly started) in
// the same step, and when a build the platform failed runs again.
import type { DeploymentRecord, SettleResult, StartResult } from '@slipway/shared';

const MAX_RETRY_DELAY_MS = 5 * 60_000;

/** START's answer given by the settle that claimed the id ('branch' is not one: start is called). */
export interface Started {
  state: StartResult;
  record: DeploymentRecord | null;
}
export interface Claimed {
  id: string;
  started?: Started;
}

/** What a settle claimed for the slot in the same step, and what it started. */
export function claimed(result: SettleResult): Claimed | null {
  if (result.next === null) return null;
  if (result.nextStart === null || result.nextStart === 'branch') return { id: result.next };
  return { id: result.next, started: { state: result.nextStart, record: result.nextRecord } };
}

/** Exponential backoff with jitter: base·2^(attempt−1), then a random point in its upper half. */
export function retryDelay(baseMs: number, attempt: number): number {
  const full = Math.min(baseMs * 2 ** Math.max(0, attempt - 1), MAX_RETRY_DELAY_MS);
  return Math.round(full / 2 + Math.random() * (full / 2));
}

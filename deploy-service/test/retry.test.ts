// Platform retries back off exponentially with jitter, and with the default settings they span
// minutes, so a short S3 or Redis outage does not use up a deployment's attempts.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '@slipway/shared';
import { retryDelay } from '../src/queue/next';

afterEach(() => vi.restoreAllMocks());

/** The total wait between the first attempt and the last, with every jitter at `random`. */
function window(baseMs: number, maxAttempts: number, random: number): number {
  vi.spyOn(Math, 'random').mockReturnValue(random);
  let total = 0;
  for (let attempt = 1; attempt < maxAttempts; attempt++) total += retryDelay(baseMs, attempt);
  return total;
}

describe('retry delays', () => {
  it('double per attempt, within the upper half of each step, capped at 5 minutes', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    expect([1, 2, 3, 4].map((n) => retryDelay(1000, n))).toEqual([500, 1000, 2000, 4000]);
    vi.spyOn(Math, 'random').mockReturnValue(0.999999);
    expect(retryDelay(1000, 1)).toBe(1000);
    expect(retryDelay(60_000, 20)).toBeLessThanOrEqual(300_000);
  });

  it('outlast a 5-minute outage with the defaults (MAX_ATTEMPTS=8, RETRY_BASE_MS=10000): 7.6 to 15 minutes', () => {
    const config = loadConfig({});
    // 5 + 10 + 20 + 40 + 80 + 150 + 150 s at the least (the last two capped at 5 min, halved by jitter).
    expect(window(config.retryBaseMs, config.maxAttempts, 0)).toBe(455_000);
    expect(window(config.retryBaseMs, config.maxAttempts, 0)).toBeGreaterThan(5 * 60_000);
    expect(window(config.retryBaseMs, config.maxAttempts, 0.999999)).toBeCloseTo(910_000, -2);
  });
});

// A service that is starting (Redis not yet connected, the bucket not yet made) answers 503 without
// logging an outage; once it has been ready, or once its start has taken too long, a failure is one.
import { describe, expect, it } from 'vitest';
import type { Logger } from '@slipway/shared';
import { STARTING_MS, readiness } from '../src/readiness';

function recorder() {
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (_fields: unknown, msg: string) => void lines.push({ level, msg });
  return { lines, logger: { warn: at('warn'), debug: at('debug'), info: at('info'), error: at('error') } as unknown as Logger };
}
const down = () => Promise.reject(new Error('The client is offline'));
const up = () => Promise.resolve('PONG');

describe('readiness', () => {
  it('is unavailable but quiet while the process starts, then warns once it was ready', async () => {
    const { lines, logger } = recorder();
    expect(await readiness('redis', down, logger, 1_000)).toBe('unavailable');
    expect(lines).toEqual([{ level: 'debug', msg: 'not ready yet (starting)' }]);
    expect(await readiness('redis', up, logger, 2_000)).toBe('ok');
    expect(await readiness('redis', down, logger, 3_000)).toBe('unavailable');
    expect(lines.at(-1)).toEqual({ level: 'warn', msg: 'readiness check failed' });
  });

  it('warns when the start takes longer than STARTING_MS, and counts each part on its own', async () => {
    const { lines, logger } = recorder();
    expect(await readiness('s3', down, logger, STARTING_MS + 1)).toBe('unavailable');
    expect(lines).toEqual([{ level: 'warn', msg: 'readiness check failed' }]);
    // Redis was ready in the test above; S3 never was: a quick failure of S3 is still its start.
    expect(await readiness('s3', down, logger, 10)).toBe('unavailable');
    expect(lines.at(-1)!.level).toBe('debug');
  });
});

import { describe, expect, it } from 'vitest';
import { forEachBounded } from '../src';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('forEachBounded', () => {
  it('never runs more than the limit at once, and runs every item', async () => {
    let running = 0;
    let peak = 0;
    const done: number[] = [];
    await forEachBounded([...Array(50).keys()], 4, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await tick();
      running--;
      done.push(n);
    });
    expect(peak).toBe(4);
    expect(done.sort((a, b) => a - b)).toEqual([...Array(50).keys()]);
  });

  it('pulls from an async source only as tasks finish', async () => {
    let pulled = 0;
    let finished = 0;
    async function* source() {
      for (let i = 0; i < 20; i++) {
        pulled++;
        expect(pulled - finished).toBeLessThanOrEqual(3);
        yield i;
      }
    }
    await forEachBounded(source(), 2, async () => {
      await tick();
      finished++;
    });
    expect(finished).toBe(20);
  });

  it('on a failure, starts nothing new and waits for the tasks in flight before throwing', async () => {
    const started: number[] = [];
    let settled = 0;
    const run = forEachBounded([...Array(20).keys()], 3, async (n) => {
      started.push(n);
      await tick();
      if (n === 1) throw new Error('boom');
      await tick();
      settled++;
    });
    await expect(run).rejects.toThrow('boom');
    expect(settled).toBe(started.length - 1);
    expect(started.length).toBeLessThan(20);
  });

  it('waits for the tasks in flight when the source itself fails', async () => {
    let inFlight = 0;
    async function* source() {
      yield 1;
      yield 2;
      throw new Error('walk failed');
    }
    await expect(
      forEachBounded(source(), 4, async () => {
        inFlight++;
        await tick();
        inFlight--;
      }),
    ).rejects.toThrow('walk failed');
    expect(inFlight).toBe(0);
  });
});

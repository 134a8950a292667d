// What a site server holds in memory (sites/pointers.ts), against a stand-in for Redis's reads: held
// until MAX_AGE_MS, dropped by a change message for its key, all dropped by a flush, served through
// a Redis failure, and never held as fresh when a change overtook its read.
import { describe, expect, it } from 'vitest';
import type { Queue } from '@slipway/shared';
import { LivePointers, MAX_AGE_MS } from '../src/sites/pointers';

function fakeQueue() {
  const reads: string[] = [];
  const state = { alias: 'd1', stamp: 'stamp-a' as string | null, fail: false, gate: null as Promise<void> | null };
  const read = async <T>(what: string, value: () => T): Promise<T> => {
    reads.push(what);
    if (state.fail) throw new Error('Redis is unavailable');
    // Read now, answered later (when the test opens the gate).
    const answer = value();
    if (state.gate) await state.gate;
    return answer;
  };
  const queue = {
    projects: {
      aliasTarget: (project: string, label: string | null) => read(`alias ${project} ${label}`, () => (project === 'shop' ? state.alias : 'other')),
      previewStamp: (project: string) => read(`stamp ${project}`, () => state.stamp),
      domainProject: (host: string) => read(`domain ${host}`, () => (host === 'www.shop.example' ? 'shop' : null)),
    },
    site: (id: string) => read(`site ${id}`, () => ({ liveBuild: 'b1', spaFallback: null, project: 'shop' })),
  } as unknown as Queue;
  return { queue, reads, state };
}

describe('LivePointers', () => {
  it('reads each value once, then holds it until it is MAX_AGE_MS old', async () => {
    let now = 1_000_000;
    const { queue, reads, state } = fakeQueue();
    const pointers = new LivePointers(queue, MAX_AGE_MS, () => now);
    expect(await Promise.all([pointers.aliasTarget('shop', null), pointers.aliasTarget('shop', null)])).toEqual(['d1', 'd1']);
    expect(await pointers.domainProject('unknown.example')).toBeNull();
    expect(await pointers.domainProject('unknown.example')).toBeNull();
    expect(reads).toEqual(['alias shop null', 'domain unknown.example']);
    state.alias = 'd2';
    now += MAX_AGE_MS - 1;
    expect(await pointers.aliasTarget('shop', null)).toBe('d1');
    now += 1;
    expect(await pointers.aliasTarget('shop', null)).toBe('d2');
  });

  it('drops what it holds of one key on its change message, and everything on a flush', async () => {
    const { queue, reads, state } = fakeQueue();
    const pointers = new LivePointers(queue);
    await Promise.all([pointers.aliasTarget('shop', 'main'), pointers.previewStamp('shop'), pointers.aliasTarget('blog', null), pointers.site('d1')]);
    state.alias = 'd2';
    pointers.changed('project:shop');
    expect(await pointers.aliasTarget('shop', 'main')).toBe('d2');
    await Promise.all([pointers.previewStamp('shop'), pointers.aliasTarget('blog', null), pointers.site('d1')]);
    expect(reads.filter((r) => r === 'stamp shop')).toHaveLength(2);
    expect(reads.filter((r) => r === 'alias blog null' || r === 'site d1')).toHaveLength(2);
    pointers.flush();
    expect(pointers.size).toBe(0);
  });

  it('serves what it holds while Redis fails, asking again at most once a second; without it, fails', async () => {
    let now = 1_000_000;
    const { queue, reads, state } = fakeQueue();
    const pointers = new LivePointers(queue, MAX_AGE_MS, () => now);
    await pointers.site('d1');
    state.fail = true;
    now += MAX_AGE_MS;
    expect(await pointers.site('d1')).toMatchObject({ liveBuild: 'b1' });
    expect(await pointers.site('d1')).toMatchObject({ liveBuild: 'b1' });
    expect(reads.filter((r) => r === 'site d1')).toHaveLength(2);
    now += 1000;
    await pointers.site('d1');
    expect(reads.filter((r) => r === 'site d1')).toHaveLength(3);
    await expect(pointers.site('d9')).rejects.toThrow(/unavailable/);
  });

  it('does not hold as fresh a value whose read a change overtook', async () => {
    const { queue, reads, state } = fakeQueue();
    const pointers = new LivePointers(queue);
    let open!: () => void;
    state.gate = new Promise((r) => (open = r));
    const reading = pointers.aliasTarget('shop', null);
    pointers.changed('project:shop');
    state.alias = 'd2';
    open();
    expect(await reading).toBe('d1');
    state.gate = null;
    expect(await pointers.aliasTarget('shop', null)).toBe('d2');
    expect(reads).toHaveLength(2);
  });
});

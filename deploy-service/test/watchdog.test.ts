// The watchdog and what it releases: a phase past its deadline fires once, a phase nested in another
// gives the outer deadline back, a stopped build that never returns is given up on, and whatever it
// held is released once, by whoever asks first, one hanging release keeping none of the others.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Holdings, StuckBuildError, Watchdog, superviseBuild } from '../src/deployment/watchdog';

// Fake timers: every deadline here is reached by moving the clock, never by waiting on a loaded machine.
beforeEach(() => void vi.useFakeTimers());
afterEach(() => void vi.useRealTimers());
const sleep = (ms: number) => vi.advanceTimersByTimeAsync(ms);

describe('the watchdog', () => {
  it('fires once for the phase that outlived its deadline, and never for one that ended in time', async () => {
    const fired: string[] = [];
    const dog = new Watchdog((phase) => fired.push(phase), 0);
    dog.enter('download', 20);
    await sleep(5);
    dog.enter('install', 40); // the download ended in time
    await sleep(80);
    dog.enter('build', 10); // too late: it fired already
    await sleep(30);
    expect(fired).toEqual(['install']);
    expect(dog.expired).toBe('install');
  });

  it('holds the outer deadline again after a nested phase', async () => {
    const fired: string[] = [];
    const dog = new Watchdog((phase) => fired.push(phase), 0);
    dog.enter('install and build', 60);
    const nested = dog.within('"npm ci"', 1000, () => new Promise((resolve) => setTimeout(resolve, 10)));
    await sleep(10);
    await nested;
    await sleep(100);
    expect(fired).toEqual(['install and build']);
    dog.stop();
  });
});

describe('a build that does not return after it was stopped', () => {
  it('is given up on after the grace, its holdings released once each, a hanging one not keeping the rest', async () => {
    const dog = new Watchdog(() => undefined);
    const stop = new AbortController();
    const released: string[] = [];
    const errors: string[] = [];
    const held = new Holdings();
    held.add('the uid', async () => void released.push('uid'));
    held.add('the folder', async () => void released.push('folder'));
    held.add('the proxy', () => new Promise(() => undefined)); // never closes: the hang issue 21 saw
    const hung = new Promise<never>(() => undefined);
    setTimeout(() => stop.abort('watchdog'), 10);
    const started = Date.now();
    const supervised = expect(superviseBuild(hung, dog, stop.signal, 50)).rejects.toBeInstanceOf(StuckBuildError);
    await sleep(60);
    await supervised;
    expect(Date.now() - started).toBe(60); // the stop at 10 ms, and 50 ms of grace
    const first = held.releaseAll((name) => errors.push(name), 30);
    const second = held.releaseAll((name) => errors.push(name), 30); // a second caller repeats nothing
    await sleep(30);
    await Promise.all([first, second]);
    expect(released).toEqual(['folder', 'uid']);
    expect(errors).toEqual(['the proxy']);
  });

  it('returns what a build that returns in time gave', async () => {
    const stop = new AbortController();
    stop.abort('cancel');
    const done = new Promise((resolve) => setTimeout(() => resolve('done'), 10));
    const supervised = superviseBuild(done, new Watchdog(() => undefined), stop.signal, 1000);
    await sleep(10);
    await expect(supervised).resolves.toBe('done');
  });
});

// The watchdog and what it releases: a phase past its deadline fires once, a phase nested in another
// gives the outer deadline back, a stopped build that never returns is given up on, and whatever it
// held is released once, by whoever asks first, one hanging release keeping none of the others.
import { describe, expect, it } from 'vitest';
import { Holdings, StuckBuildError, Watchdog, superviseBuild } from '../src/deployment/watchdog';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
    await dog.within('"npm ci"', 1000, () => sleep(10));
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
    await expect(superviseBuild(hung, dog, stop.signal, 50)).rejects.toBeInstanceOf(StuckBuildError);
    expect(Date.now() - started).toBeLessThan(2000);
    await held.releaseAll((name) => errors.push(name), 30);
    await held.releaseAll((name) => errors.push(name), 30); // a second caller repeats nothing
    expect(released).toEqual(['folder', 'uid']);
    expect(errors).toEqual(['the proxy']);
  });

  it('returns what a build that returns in time gave', async () => {
    const stop = new AbortController();
    stop.abort('cancel');
    await expect(superviseBuild(sleep(10).then(() => 'done'), new Watchdog(() => undefined), stop.signal, 1000)).resolves.toBe('done');
  });
});

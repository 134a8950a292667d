// Ignored builds' pure parts (projects/watch.ts): what a watch path may be, the defaults, and when two
// deployments hold the same at their watched paths.
import { describe, expect, it } from 'vitest';
import { WatchPathsSchema, defaultWatchPaths, sameWatched, settingsDigest, type Watched } from '../src';

describe('watchPaths', () => {
  it('normalizes folders and files, and sorts them without repeats', () => {
    expect(WatchPathsSchema.parse(['apps/web/**', './packages/ui/', 'apps/web', '.', 'README.md'])).toEqual(['.', 'README.md', 'apps/web', 'packages/ui']);
  });
  it.each([['../up'], ['a/../b'], ['/abs'], ['a//b'], ['src/*.ts'], ['a?b'], ['[ab]'], ['tab\there']])('refuses %j', (p) => {
    expect(WatchPathsSchema.safeParse([p]).success).toBe(false);
  });
  it('watches the app, its workspace packages and the root build files by default; the whole tree without a rootDir', () => {
    expect(defaultWatchPaths('apps/web', ['packages/ui'], ['apps', 'packages', 'README.md', 'package.json', 'pnpm-lock.yaml', '.npmrc', 'docs', '.github', 'patches'])).toEqual([
      '.npmrc', 'apps/web', 'package.json', 'packages/ui', 'patches', 'pnpm-lock.yaml',
    ]);
    expect(defaultWatchPaths(undefined, [], ['src', 'package.json'])).toEqual(['.']);
    // Folder names git could not be asked about line by line, or too many of them: the whole tree.
    expect(defaultWatchPaths('apps/web', ['packages/a\nHEAD:x'], [])).toEqual(['.']);
    expect(defaultWatchPaths('apps/web', Array.from({ length: 300 }, (_, i) => `packages/p${i}`), [])).toEqual(['.']);
  });
  it('is the same only for the same paths, ids and settings', () => {
    const a: Watched = { paths: ['apps/web', 'package.json'], ids: { 'apps/web': 'a'.repeat(40), 'package.json': 'b'.repeat(40) }, settings: settingsDigest({ rootDir: 'apps/web' }) };
    expect(sameWatched(a, structuredClone(a))).toBe(true);
    expect(sameWatched(undefined, a)).toBe(false);
    expect(sameWatched(a, { ...a, ids: { ...a.ids, 'apps/web': 'c'.repeat(40) } })).toBe(false);
    expect(sameWatched(a, { ...a, paths: ['apps/web'] })).toBe(false);
    expect(sameWatched(a, { ...a, settings: settingsDigest({ rootDir: 'apps/web', buildCommand: ['npm', 'run', 'x'] }) })).toBe(false);
    // A path missing at both is the same; appearing is a change.
    const missing: Watched = { ...a, ids: { ...a.ids, 'package.json': null } };
    expect(sameWatched(missing, structuredClone(missing))).toBe(true);
    expect(sameWatched(missing, a)).toBe(false);
  });
  it('digests settings whatever their order, leaving out unset ones', () => {
    expect(settingsDigest({ a: 1, b: 'x', c: undefined })).toBe(settingsDigest({ b: 'x', a: 1 }));
    expect(settingsDigest({ a: 1 })).not.toBe(settingsDigest({ a: 2 }));
  });
});

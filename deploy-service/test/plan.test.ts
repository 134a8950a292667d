import { describe, expect, it } from 'vitest';
import { planCommands } from '../src/processor';

describe('build plan', () => {
  const none = { installCommand: undefined, buildCommand: undefined };
  it('uses npm ci with a lockfile, npm install without, and npm run build when there is a build script', () => {
    const pkg = { dependencies: { a: '1' }, scripts: { build: 'vite build' } };
    expect(planCommands(none, pkg, true)).toEqual([['npm', 'ci'], ['npm', 'run', 'build']]);
    expect(planCommands(none, pkg, false)).toEqual([['npm', 'install'], ['npm', 'run', 'build']]);
  });
  it('skips the install for a package.json without dependencies, and the build without a build script', () => {
    expect(planCommands(none, { scripts: { build: 'node b.js' } }, false)).toEqual([['npm', 'run', 'build']]);
    expect(planCommands(none, { scripts: { test: 'x' } }, false)).toEqual([]);
    expect(planCommands(none, null, false)).toEqual([]);
  });
  it('runs the request’s own commands instead', () => {
    expect(planCommands({ installCommand: ['yarn'], buildCommand: ['make', 'site'] }, null, false)).toEqual([['yarn'], ['make', 'site']]);
  });
});

import { describe, expect, it } from 'vitest';
import { neededMembers, readManifest, workspaceMembers, workspacePatterns, type PackageManifest } from '../src/repo/workspaces';

describe('workspace globs', () => {
  it('reads npm/Bun arrays, Yarn classic objects and pnpm-workspace.yaml', () => {
    expect(workspacePatterns(JSON.stringify({ workspaces: ['apps/*', 'packages/*'] }), null)).toEqual(['apps/*', 'packages/*']);
    expect(workspacePatterns(JSON.stringify({ workspaces: { packages: ['libs/*'], nohoist: ['**/x'] } }), null)).toEqual(['libs/*']);
    expect(workspacePatterns('{"name":"root"}', "packages:\n  - 'apps/*'\n  - '!apps/legacy'\n")).toEqual(['apps/*', '!apps/legacy']);
  });

  it('is null for a repository that is not a workspace root, or unreadable files', () => {
    expect(workspacePatterns(JSON.stringify({ name: 'site' }), null)).toBeNull();
    expect(workspacePatterns('{not json', 'packages: [unclosed')).toBeNull();
    expect(workspacePatterns(null, null)).toBeNull();
  });

  it('selects member folders, honouring negations and ./ prefixes', () => {
    const dirs = ['apps/web', 'apps/legacy', 'packages/ui', 'packages/ui/test/fixture', 'tools/x', '.'];
    expect(workspaceMembers(dirs, ['./apps/*', 'packages/**', '!apps/legacy', '!**/test/**'])).toEqual(['apps/web', 'packages/ui']);
    expect(workspaceMembers(dirs, ['!apps/*'])).toEqual([]);
  });
});

describe('the packages an app needs', () => {
  const m = (name: string, ...dependencies: string[]): PackageManifest => ({ name, dependencies });
  const members = new Map([
    ['packages/ui', m('@x/ui', '@x/tokens', 'react')],
    ['packages/tokens', m('@x/tokens', '@x/ui')], // a cycle ends
    ['packages/admin', m('@x/admin')],
    ['apps/web', m('@x/web', '@x/ui')],
  ]);

  it('follows dependencies transitively, stops at cycles, and leaves out the app and unrelated packages', () => {
    expect(neededMembers(m('@x/web', '@x/ui', 'vite'), 'apps/web', members)).toEqual(['packages/tokens', 'packages/ui']);
    expect(neededMembers(m('@x/site'), 'site', members)).toEqual([]);
  });

  it('reads every dependency kind and ignores what is not a package.json object', () => {
    const text = JSON.stringify({ name: 'a', dependencies: { b: '1' }, devDependencies: { c: '1' }, peerDependencies: { d: '1' }, optionalDependencies: { e: '1' } });
    expect(readManifest(text)).toEqual({ name: 'a', dependencies: ['b', 'c', 'd', 'e'] });
    expect(readManifest('[1,2]')).toBeNull();
    expect(readManifest('{"dependencies": "nope"}')).toEqual({ name: undefined, dependencies: [] });
  });
});

import { describe, expect, it } from 'vitest';
import { DeployRequestSchema } from '../src';

const parse = (body: unknown) => DeployRequestSchema.safeParse(body);

describe('deploy request schema', () => {
  it('accepts a full request and turns commands into argument vectors', () => {
    const r = parse({ repoUrl: 'https://x/y.git', branch: 'feature/a-1', rootDir: 'apps/web/', installCommand: 'npm ci --ignore-scripts', buildCommand: ['npm', 'run', 'build:prod'], outputDir: 'dist' });
    expect(r.success && r.data).toEqual({ repoUrl: 'https://x/y.git', branch: 'feature/a-1', rootDir: 'apps/web', installCommand: ['npm', 'ci', '--ignore-scripts'], buildCommand: ['npm', 'run', 'build:prod'], outputDir: 'dist' });
  });

  it('accepts build env variables, NODE_OPTIONS included', () => {
    const env = { NODE_OPTIONS: '--max-old-space-size=4096', VITE_API_URL: 'https://api.example.com', PUBLIC_URL: '' };
    const r = parse({ repoUrl: 'https://x', env });
    expect(r.success && r.data.env).toEqual(env);
  });

  it('keeps quoted arguments together and runs no shell', () => {
    const r = parse({ repoUrl: 'https://x', buildCommand: 'node -e "console.log(1)"' });
    expect(r.success && r.data.buildCommand).toEqual(['node', '-e', 'console.log(1)']);
  });

  it.each([
    [{}, 'repoUrl'],
    [{ repoUrl: 42 }, 'repoUrl'],
    [{ repoUrl: 'https://x', extra: 1 }, 'extra'],
    [{ repoUrl: 'https://x', branch: '--upload-pack=x' }, 'branch'],
    [{ repoUrl: 'https://x', branch: 'a..b' }, 'branch'],
    [{ repoUrl: 'https://x', rootDir: '../up' }, 'rootDir'],
    [{ repoUrl: 'https://x', rootDir: '/abs' }, 'rootDir'],
    [{ repoUrl: 'https://x', outputDir: 'a/../../b' }, 'outputDir'],
    [{ repoUrl: 'https://x', buildCommand: 'npm run build && curl evil' }, 'buildCommand'],
    [{ repoUrl: 'https://x', buildCommand: 'cat $(id)' }, 'buildCommand'],
    [{ repoUrl: 'https://x', installCommand: '--help' }, 'installCommand'],
    [{ repoUrl: 'https://x', installCommand: [] }, 'installCommand'],
    [{ repoUrl: 'https://x', env: ['A=1'] }, 'env'],
    [{ repoUrl: 'https://x', env: { '1A': 'x' } }, 'env'],
    [{ repoUrl: 'https://x', env: { 'A-B': 'x' } }, 'env'],
    [{ repoUrl: 'https://x', env: { PATH: '/tmp/evil' } }, 'env'],
    [{ repoUrl: 'https://x', env: { https_proxy: 'http://evil' } }, 'env'],
    [{ repoUrl: 'https://x', env: { SLIPWAY_URL: 'x' } }, 'env'],
    [{ repoUrl: 'https://x', env: { A: 1 } }, 'env'],
    [{ repoUrl: 'https://x', env: { A: 'x'.repeat(4097) } }, 'env'],
    [{ repoUrl: 'https://x', env: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`V${i}`, 'x'])) }, 'env'],
  ])('rejects %j naming %s', (body, field) => {
    const r = parse(body);
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => `${String(i.path[0])} ${i.message}`).join('; ')).toContain(field);
  });
});

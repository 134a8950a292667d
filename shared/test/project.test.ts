import { describe, expect, it } from 'vitest';
import { CreateProjectSchema, MAX_LABEL, branchLabel } from '../src/projects/schema';
import { envForDeployment, openProjectEnv } from '../src/projects/secrets';
import { Secrets } from '../src/secrets/seal';

describe('branch alias labels', () => {
  it('keeps a host-safe branch name as it is', () => {
    expect(branchLabel('main', 'shop')).toBe('main');
    expect(branchLabel('release-2', 'shop')).toBe('release-2');
  });

  it('adds a hash when the name had to change, so two branches never meet', () => {
    const a = branchLabel('feature/a', 'shop');
    const b = branchLabel('feature-a', 'shop');
    expect(a).toMatch(/^feature-a-[0-9a-f]{6}$/);
    expect(b).toBe('feature-a');
    expect(branchLabel('Feature/A', 'shop')).not.toBe(a);
    expect(branchLabel('feat--x', 'shop')).toMatch(/^feat-x-[0-9a-f]{6}$/);
  });

  it('fits the host-name label with the project, cutting long names with a hash', () => {
    const long = 'x'.repeat(80);
    const label = branchLabel(long, 'my-project');
    expect(`${label}--my-project`.length).toBeLessThanOrEqual(MAX_LABEL);
    expect(label).toMatch(/^x+-[0-9a-f]{6}$/);
    expect(branchLabel(`${long}y`, 'my-project')).not.toBe(label);
  });
});

describe('project schema', () => {
  it('takes the deploy settings and a production branch', () => {
    const r = CreateProjectSchema.safeParse({ name: 'docs-site', repoUrl: 'https://x/y.git', productionBranch: 'trunk', buildCommand: 'npm run docs', env: { A: '1' } });
    // One flat env is both environments'.
    expect(r.success && r.data).toEqual({ name: 'docs-site', repoUrl: 'https://x/y.git', productionBranch: 'trunk', buildCommand: ['npm', 'run', 'docs'], env: { production: { A: '1' }, preview: { A: '1' }, branches: {} } });
  });

  it('takes an env per environment, with branch overrides, and names what is wrong in it', () => {
    const env = { production: { API: 'https://api' }, preview: { API: 'https://staging' }, branches: { 'feature/x': { API: 'https://x' } } };
    const r = CreateProjectSchema.safeParse({ name: 'site', repoUrl: 'https://x/y.git', env });
    expect(r.success && r.data.env).toEqual(env);
    const bad = CreateProjectSchema.safeParse({ name: 'site', repoUrl: 'https://x/y.git', env: { production: { PATH: '/x' }, staging: {} } });
    expect(bad.success).toBe(false);
    const messages = bad.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(messages.join('\n')).toMatch(/env may not set PATH/);
    expect(messages.join('\n')).toMatch(/staging/);
    const branchless = CreateProjectSchema.safeParse({ name: 'site', repoUrl: 'https://x/y.git', env: { branches: { '../x': { A: '1' } } } });
    expect(branchless.success).toBe(false);
  });

  it('gives each environment its own copy of one flat env (a change to one leaves the other)', () => {
    const parsed = CreateProjectSchema.parse({ name: 'site', repoUrl: 'https://x/y.git', env: { A: '1' } }).env!;
    parsed.production.B = '2';
    expect(parsed.preview).toEqual({ A: '1' });
    const legacy = openProjectEnv({ name: 'site', env: { A: '1' } }, new Secrets(null));
    legacy.production.B = '2';
    expect(legacy.preview).toEqual({ A: '1' });
  });

  it('gives a deployment its environment: production, preview with its branch over it, none for a fork unless the project opts in', () => {
    const env = { production: { MODE: 'prod' }, preview: { MODE: 'preview', X: '1' }, branches: { next: { MODE: 'next' } } };
    expect(envForDeployment(env, { branch: 'main', production: true, fork: false }, false)).toEqual({ MODE: 'prod' });
    expect(envForDeployment(env, { branch: 'other', production: false, fork: false }, false)).toEqual({ MODE: 'preview', X: '1' });
    expect(envForDeployment(env, { branch: 'next', production: false, fork: false }, false)).toEqual({ MODE: 'next', X: '1' });
    expect(envForDeployment(env, { branch: 'next', production: false, fork: true }, false)).toEqual({});
    expect(envForDeployment(env, { branch: 'next', production: false, fork: true }, true)).toEqual({ MODE: 'next', X: '1' });
  });

  it('takes gitAuth with nothing that could end a line of git\'s credential protocol', () => {
    expect(CreateProjectSchema.safeParse({ name: 'site', repoUrl: 'https://x/y.git', gitAuth: { username: 'x-access-token', token: 'ghp_abc123' } }).success).toBe(true);
    for (const gitAuth of [{ username: 'a\nb', token: 't' }, { username: 'u', token: 't\nusername=evil' }, { username: 'u', token: 'has space' }, { username: 'u' }, { token: 't' }]) {
      expect(CreateProjectSchema.safeParse({ name: 'site', repoUrl: 'https://x/y.git', gitAuth }).success, JSON.stringify(gitAuth)).toBe(false);
    }
  });
});

import { describe, expect, it } from 'vitest';
import { CreateProjectSchema, MAX_LABEL, branchLabel } from '../src/projects/schema';

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
    expect(r.success && r.data).toMatchObject({ name: 'docs-site', productionBranch: 'trunk', buildCommand: ['npm', 'run', 'docs'], env: { A: '1' } });
  });
});

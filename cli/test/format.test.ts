// The CLI's pure helpers: SSH remotes as the https:// URLs the API clones, tables, ages.
import { describe, expect, it } from 'vitest';
import { cloneUrl } from '../src/git';
import { age, table } from '../src/table';

describe('cloneUrl', () => {
  it.each([
    ['git@github.com:owner/site.git', 'https://github.com/owner/site.git'],
    ['ssh://git@gitlab.example.com:2222/group/site.git', 'https://gitlab.example.com/group/site.git'],
    ['https://github.com/owner/site.git', 'https://github.com/owner/site.git'],
    ['http://127.0.0.1:9000/site.git', 'http://127.0.0.1:9000/site.git'],
  ])('%s → %s', (remote, url) => {
    expect(cloneUrl(remote)).toBe(url);
  });
});

describe('table', () => {
  it('pads every column but the last to its widest cell, and leaves no trailing blanks', () => {
    expect(table([['ID', 'STATUS', ''], ['abc', 'deployed', 'production'], ['abcdef', 'failed', '']])).toBe('ID      STATUS\nabc     deployed  production\nabcdef  failed');
  });
});

describe('age', () => {
  const now = Date.parse('2026-01-02T00:00:00Z');
  it.each([
    ['2026-01-01T23:59:15Z', '45s'],
    ['2026-01-01T23:57:00Z', '3m'],
    ['2026-01-01T19:00:00Z', '5h'],
    ['2025-12-21T00:00:00Z', '12d'],
    ['not a date', '-'],
  ])('%s → %s', (iso, text) => {
    expect(age(iso, now)).toBe(text);
  });
});

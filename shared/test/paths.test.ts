import { describe, expect, it } from 'vitest';
import { UnsafePathError, keyUnder, pathInside, safeRelativePath } from '../src';

describe('path safety', () => {
  it.each(['..', '../x', 'a/../../x', '/etc/passwd', 'a\\..\\b', 'a\0b'])('refuses %j', (p) => {
    expect(() => safeRelativePath(p)).toThrowError(UnsafePathError);
  });

  it('normalises harmless paths', () => {
    expect(safeRelativePath('a/./b//c/')).toBe('a/b/c');
    expect(safeRelativePath('a/b/../c')).toBe('a/c');
    expect(safeRelativePath('.')).toBe('');
  });

  it('builds keys only under their prefix', () => {
    expect(keyUnder('dist/abc', 'x/y.html')).toBe('dist/abc/x/y.html');
    expect(() => keyUnder('dist/abc', '../other/index.html')).toThrowError(UnsafePathError);
    expect(() => keyUnder('dist/abc', '')).toThrowError(UnsafePathError);
  });

  it('resolves local paths only inside their root', () => {
    expect(pathInside('/tmp/w', 'a/b')).toBe('/tmp/w/a/b');
    expect(() => pathInside('/tmp/w', '../w2/x')).toThrowError(UnsafePathError);
  });
});

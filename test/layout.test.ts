// The layout holds: no import circle between source files (type-only imports count: a circle marks a
// type in the wrong file), every source file opens with a comment saying its role, and none passes
// ~300 lines without a line at its top saying why.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const SOURCES = ['shared/src', 'upload-service/src', 'deploy-service/src', 'cli/src'];
const MAX_LINES = 320;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

const files = SOURCES.flatMap((d) => sourceFiles(path.join(ROOT, d)));

/** The source files a file imports by relative path (static, dynamic and type-only imports). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const [, spec] of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    const target = path.resolve(path.dirname(file), spec!);
    const hit = [target, `${target}.ts`, path.join(target, 'index.ts')].find((c) => files.includes(c));
    if (hit) found.push(hit);
  }
  return found;
}

describe('layout', () => {
  it('has no import circle', () => {
    const graph = new Map(files.map((f) => [f, importsOf(f)]));
    const circles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (file: string) => {
      state.set(file, 'open');
      stack.push(file);
      for (const next of graph.get(file) ?? []) {
        if (state.get(next) === 'open') circles.push([...stack.slice(stack.indexOf(next)), next].map((f) => path.relative(ROOT, f)).join(' → '));
        else if (!state.has(next)) visit(next);
      }
      stack.pop();
      state.set(file, 'done');
    };
    for (const file of files) if (!state.has(file)) visit(file);
    expect(circles).toEqual([]);
  });

  it('opens every source file with its role, and says why when one passes ~300 lines', () => {
    const unexplained: string[] = [];
    for (const file of files) {
      const lines = readFileSync(file, 'utf8').split('\n');
      const rel = path.relative(ROOT, file);
      expect(lines[0], `${rel} opens with a comment`).toMatch(/^(\/\/|\/\*|#!)/);
      const opening = lines.slice(0, lines.findIndex((l) => !l.startsWith('//')));
      if (lines.length > MAX_LINES && !opening.some((l) => l.startsWith('// Over 300 lines:'))) unexplained.push(`${rel} (${lines.length} lines)`);
    }
    expect(unexplained).toEqual([]);
  });
});

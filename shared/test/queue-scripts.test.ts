// The Lua scripts and the record schema agree: every field a script reads or writes on a
// deployment record is one record.ts knows, and every script names its KEYS and ARGV at the top.
import { describe, expect, it } from 'vitest';
import { DeploymentRecordSchema, QUEUE_SCRIPTS } from '../src';

const RECORD_CALL = /redis\.call\('(HSET|HDEL|HGET|HINCRBY)', record, ([^)]*)\)/g;

/** The field names a call names: HSET's every other argument, HDEL's all, HGET's and HINCRBY's first. */
function fieldsOf(command: string, args: string): string[] {
  const parts = args.split(',').map((a) => a.trim());
  const picked = command === 'HSET' ? parts.filter((_, i) => i % 2 === 0) : command === 'HDEL' ? parts : parts.slice(0, 1);
  return picked.filter((p) => /^'[A-Za-z]+'$/.test(p)).map((p) => p.slice(1, -1));
}

describe('queue scripts', () => {
  const known = new Set(Object.keys(DeploymentRecordSchema.shape));

  it.each(Object.entries(QUEUE_SCRIPTS).filter(([name]) => name !== 'LUA_HELPERS'))('%s names its KEYS and ARGV in a header', (_name, source) => {
    expect(source.trimStart()).toMatch(/^-- KEYS: .+ARGV: /s);
  });

  it('touch only fields the record schema knows', () => {
    const seen = new Set<string>();
    for (const source of Object.values(QUEUE_SCRIPTS)) {
      for (const [, command, args] of source.matchAll(RECORD_CALL)) for (const field of fieldsOf(command!, args!)) seen.add(field);
    }
    // The parser must find the fields it claims to check.
    expect([...seen]).toEqual(expect.arrayContaining(['status', 'worker', 'attempts', 'liveBuild', 'cancelRequested', 'error', 'finishedAt']));
    expect([...seen].filter((f) => !known.has(f))).toEqual([]);
  });
});

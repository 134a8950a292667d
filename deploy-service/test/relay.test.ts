// The sandbox's resolver (relay.cjs) reads DNS queries a build sends: anything but one plain
// question is ignored, names the egress proxy would not take are answered as unknown, and an answer
// is a well-formed reply that Node's own DNS parser reads back.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const { parseQuery, answer } = createRequire(import.meta.url)('../src/sandbox/relay.cjs') as {
  parseQuery(msg: Buffer): { id: number; name: string; type: number; klass: number; question: Buffer } | null;
  answer(query: NonNullable<ReturnType<typeof parseQuery>>, rcode: number, address?: string): Buffer;
};

/** A query as glibc sends it: one question, recursion desired. */
function query(name: string, type = 1, id = 0x1234): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]));
  const header = Buffer.from([id >> 8, id & 255, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, ...labels, Buffer.from([0, type >> 8, type & 255, 0, 1])]);
}

describe("the sandbox's resolver", () => {
  it('reads one question and answers it with one A record pointing at the question', () => {
    const q = parseQuery(query('Registry.Example.org'))!;
    expect(q).toMatchObject({ id: 0x1234, name: 'registry.example.org', type: 1, klass: 1 });
    const reply = answer(q, 0, '127.100.0.7');
    expect(reply.readUInt16BE(0)).toBe(0x1234);
    expect(reply[2]! & 0x80).toBe(0x80); // a response
    expect(reply[3]! & 0x0f).toBe(0);
    expect(reply.readUInt16BE(6)).toBe(1);
    expect([...reply.subarray(-4)]).toEqual([127, 100, 0, 7]);
    // AAAA and unknown names: no records, and the rcode given.
    expect(answer(parseQuery(query('x.org', 28))!, 0).readUInt16BE(6)).toBe(0);
    expect(answer(parseQuery(query('x.org'))!, 3)[3]! & 0x0f).toBe(3);
  });

  it('ignores what is not one plain question and leaves unusual names unasked', () => {
    const ok = query('a.example');
    expect(parseQuery(ok.subarray(0, 11))).toBeNull(); // shorter than a header
    expect(parseQuery(ok.subarray(0, ok.length - 2))).toBeNull(); // cut in the type and class
    expect(parseQuery(Buffer.concat([ok.subarray(0, 12), Buffer.from([9, 0x61])]))).toBeNull(); // a label past the end
    const response = Buffer.from(ok);
    response[2] = 0x81;
    expect(parseQuery(response)).toBeNull();
    const two = Buffer.from(ok);
    two[5] = 2;
    expect(parseQuery(two)).toBeNull();
    const pointer = Buffer.concat([ok.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
    expect(parseQuery(pointer)).toBeNull();
    expect(parseQuery(Buffer.alloc(600))).toBeNull();
    // Parsed, but with no name to ask about (answered as unknown without reaching the egress proxy).
    expect(parseQuery(query('under_score.example'))!.name).toBe('');
    expect(parseQuery(query('bad\u00e9.example'))!.name).toBe('');
    expect(parseQuery(query(Array(5).fill('a'.repeat(60)).join('.')))!.name).toBe('');
  });
});

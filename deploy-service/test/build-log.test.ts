// Reading a build's output as bytes: lines at \n, \r and \r\n, a line cut before it is buffered, and
// the secrets the log hides in their encoded forms too.
import { describe, expect, it } from 'vitest';
import { BuildLog, LineReader, MAX_LINE_BYTES } from '../src/deployment/build-log';
import type { Queue } from '@slipway/shared';

function read(chunks: (string | Buffer)[]): string[] {
  const lines: string[] = [];
  const reader = new LineReader((l) => lines.push(l));
  for (const chunk of chunks) reader.push(Buffer.from(chunk));
  reader.end();
  return lines;
}

describe('LineReader', () => {
  it('splits at \\n, \\r and \\r\\n, across chunks, and gives a last line without a newline', () => {
    expect(read(['a\nb\r\nc\rd', '\r', '\ne\n\nf'])).toEqual(['a', 'b', 'c', 'd', 'e', '', 'f']);
  });

  it('keeps MAX_LINE_BYTES of a long line and says how long it was, holding no more than that', () => {
    const chunk = Buffer.alloc(1 << 20, 'y');
    const lines = read([chunk, chunk, chunk, 'end\nnext']);
    expect(lines).toEqual([`${'y'.repeat(MAX_LINE_BYTES)}… [slipway] line cut: it was 3,145,731 bytes long`, 'next']);
  });
});

describe('BuildLog', () => {
  const queue = { appendLog: async () => undefined } as unknown as Queue;

  it('hides a secret printed as it is, base64-, hex- or URL-encoded', () => {
    const log = new BuildLog(queue, 'x', 1_000_000);
    const secret = 'sk_live_51H:x/y+z';
    log.hide({ STRIPE_KEY: secret });
    for (const form of [secret, Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('base64url'), Buffer.from(secret).toString('hex'), encodeURIComponent(secret)]) log.line(`token=${form}`);
    expect(log.text()).not.toMatch(/sk_live|c2tfbGl2|736b5f6c697665|sk_live_51H%3A/);
    expect(log.text().match(/\[env STRIPE_KEY\]/g)).toHaveLength(5);
  });

  it('cuts the log once the bytes read pass MAX_LOG_BYTES, and counts a flood at 100 times that', () => {
    const log = new BuildLog(queue, 'x', 1000);
    log.countRead(1200);
    log.line('shown?');
    expect(log.text()).toContain('log cut here: it passed 1,000 bytes (MAX_LOG_BYTES)');
    expect(log.flooded).toBe(false);
    log.countRead(100_000);
    expect(log.flooded).toBe(true);
  });

  it('keeps the lines Redis did not take and writes them, in order, once it does', async () => {
    const written: string[] = [];
    let refusals = 2;
    const flaky = {
      appendLog: async (_id: string, lines: readonly string[]) => {
        if (refusals-- > 0) throw new Error('The client is closed');
        written.push(...lines);
      },
    } as unknown as Queue;
    const log = new BuildLog(flaky, 'x', 1_000_000);
    log.line('one');
    await expect(log.flush()).rejects.toThrow('closed');
    log.line('two');
    await expect(log.flush()).rejects.toThrow('closed');
    log.line('three');
    await log.flush();
    log.close();
    expect(written).toEqual(['one', 'two', 'three']);
  });
});

// What leaves a build's sandbox is hostile data: a tar stream the worker takes regular files and
// folders from, names checked and caps enforced on each header; a facts line of bounded length.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildFailedError, RepoTooLargeError } from '@slipway/shared';
import { ArchiveTooLargeError, receiveFacts, receiveFile, receiveTree, type TreeLimits } from '../src/sandbox/handoff';
import { tarOf } from './tar-fixture';

const limits: TreeLimits = { maxFiles: 10, maxBytes: 1000, what: 'the output', limitNames: { files: 'MAX_OUTPUT_FILES', bytes: 'MAX_OUTPUT_MB' } };
let dir: string;
let n = 0;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'slipway-handoff-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
const dest = () => path.join(dir, `out-${n++}`);

describe('receiveTree', () => {
  it('takes regular files and folders, keeps execute bits, and leaves links, FIFOs and devices out', async () => {
    const to = dest();
    const got = await receiveTree(
      Readable.from([
        tarOf([
          { path: './', type: 'Directory' },
          { path: './index.html', body: '<h1>hi</h1>' },
          { path: './bin/run.sh', body: '#!/bin/sh', mode: 0o755 },
          { path: './passwd', type: 'SymbolicLink', linkpath: '/etc/passwd' },
          { path: './hard', type: 'Link', linkpath: '/etc/shadow' },
          { path: './pipe', type: 'FIFO' },
          { path: './tty', type: 'CharacterDevice' },
        ]),
      ]),
      to,
      limits,
    );
    expect(got).toEqual({ files: 2, bytes: 20, skipped: 4 });
    expect((await readdir(to)).sort()).toEqual(['bin', 'index.html']);
    expect(await readFile(path.join(to, 'index.html'), 'utf8')).toBe('<h1>hi</h1>');
  });

  it.each([['../escape'], ['/etc/cron.d/x'], ['a/../../b'], ['a\\\\b'], ['line\nbreak'], ['a//b']])('fails the build for a name that could leave the folder or cannot be published: %j', async (name) => {
    const to = dest();
    await expect(receiveTree(Readable.from([tarOf([{ path: name, body: 'x' }])]), to, limits)).rejects.toThrow(BuildFailedError);
    await expect(readdir(to)).rejects.toThrow(); // nothing is left of it
  });

  it('refuses a name given twice rather than write over it', async () => {
    await expect(receiveTree(Readable.from([tarOf([{ path: 'a', body: '1' }, { path: 'a', body: '2' }])]), dest(), limits)).rejects.toThrow(/EEXIST/);
  });

  it('stops at the file count, the byte count and the folder count, on the header, naming the setting', async () => {
    const many = Array.from({ length: 11 }, (_, i) => ({ path: `f${i}`, body: 'x' }));
    await expect(receiveTree(Readable.from([tarOf(many)]), dest(), limits)).rejects.toThrow(new RepoTooLargeError('the output has more than 10 files; the limit is 10 (MAX_OUTPUT_FILES)'));
    await expect(receiveTree(Readable.from([tarOf([{ path: 'big', body: 'x'.repeat(1001) }])]), dest(), limits)).rejects.toThrow(/larger than 1000 bytes; the limit is 1000 bytes \(MAX_OUTPUT_MB\)/);
    const folders = Array.from({ length: 11 }, (_, i) => ({ path: `d${i}/`, type: 'Directory' }));
    await expect(receiveTree(Readable.from([tarOf(folders)]), dest(), limits)).rejects.toThrow(/more than 10 folders/);
  });

  it('fails on a stream that is not a tar', async () => {
    await expect(receiveTree(Readable.from([Buffer.from('not a tar '.repeat(100))]), dest(), limits)).rejects.toThrow();
  });
});

describe('receiveFacts and receiveFile', () => {
  it('reads the first line as JSON and gives the rest, whether or not the stream has ended by then', async () => {
    for (const chunks of [['{"app":true}\nREST', 'MORE'], ['{"app"', ':true}\nRESTMORE'], ['{"app":true}\n', 'REST', 'MORE']]) {
      const { facts, rest } = await receiveFacts(Readable.from(chunks.map((c) => Buffer.from(c))));
      expect(facts).toEqual({ app: true });
      const got: Buffer[] = [];
      for await (const chunk of rest) got.push(chunk as Buffer);
      expect(Buffer.concat(got).toString()).toBe('RESTMORE');
    }
  });

  it('refuses a first line past 64 KB, and one that is not JSON', async () => {
    await expect(receiveFacts(Readable.from([Buffer.alloc(70 * 1024, 'x')]))).rejects.toThrow(/first line passed 65536 bytes/);
    await expect(receiveFacts(Readable.from([Buffer.from('hello\n')]))).rejects.toThrow(/did not start with its facts line/);
  });

  it('writes a stream to a file up to its cap, and removes it past the cap', async () => {
    const file = path.join(dir, 'archive');
    expect(await receiveFile(Readable.from([Buffer.alloc(600), Buffer.alloc(400)]), file, 1000)).toBe(1000);
    const over = path.join(dir, 'archive-over');
    await expect(receiveFile(Readable.from([Buffer.alloc(600), Buffer.alloc(401)]), over, 1000)).rejects.toThrow(ArchiveTooLargeError);
    await expect(readFile(over)).rejects.toThrow(/ENOENT/);
  });
});

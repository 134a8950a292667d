// The source as one archive: what the upload-service stores is exactly the commit's selected files
// (a repository's export-ignore and export-subst change nothing), and what the worker unpacks from S3 is
// held to the checks of what leaves a sandbox, whoever wrote the object: regular files and folders only,
// names that stay inside, no file twice, the repository caps, and an archive that inflates without end
// stopped at the caps.
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildFailedError, storageKeys } from '@slipway/shared';
import { downloadArchive } from '../deploy-service/src/deployment/workspace';
import { tarOf as tar } from '../deploy-service/test/tar-fixture';
import { startStack, storedSource, type Stack } from './harness/stack';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

const LIMITS = { maxFiles: 50, maxBytes: 1024 * 1024 };
let n = 0;
async function unpack(archive: Buffer, limits = LIMITS, cut = (gz: Buffer) => gz) {
  const key = `source/crafted${++n}/source.tar.gz`;
  await stack.storage.putStream(key, Readable.from([cut(gzipSync(archive))]));
  const dir = path.join(await mkdtemp(path.join(stack.config.workDir!, 'unpack-')), 'src');
  try {
    const result = await downloadArchive(stack.storage.get(key), key, dir, limits);
    const names = (await readdir(dir, { recursive: true, withFileTypes: true })).map((e) => `${path.relative(dir, path.join(e.parentPath, e.name))}${e.isDirectory() ? '/' : e.isFile() ? '' : ' (not a file)'}`);
    return { result, names: names.sort(), dir };
  } finally {
    await stack.storage.deletePrefix(key);
  }
}

describe('the source archive, unpacked by the worker', () => {
  it('writes regular files and folders, keeps execute bits, and leaves out links, hard links, FIFOs and devices', async () => {
    const { result, names, dir } = await unpack(
      tar([
        { path: 'src/', type: 'Directory' },
        { path: 'src/app.js', body: 'console.log(1)' },
        { path: 'build.sh', body: '#!/bin/sh\necho hi\n', mode: 0o755 },
        { path: 'passwd', type: 'SymbolicLink', linkpath: '/etc/passwd' },
        { path: 'hard', type: 'Link', linkpath: '/etc/shadow' },
        { path: 'pipe', type: 'FIFO' },
        { path: 'null', type: 'CharacterDevice' },
      ]),
    );
    expect(names).toEqual(['build.sh', 'src/', 'src/app.js']);
    expect(result).toEqual({ files: 2, bytes: 14 + 18 });
    expect(await readFile(path.join(dir, 'src/app.js'), 'utf8')).toBe('console.log(1)');
    expect((await stat(path.join(dir, 'build.sh'))).mode & 0o777).toBe(0o755);
    expect((await stat(path.join(dir, 'src/app.js'))).mode & 0o777).toBe(0o644);
  });

  it.each([
    ['a name that climbs out', '../escape.txt'],
    ['an absolute name', '/tmp/slipway-escape.txt'],
    ['a name with a line break', 'evil\nname.txt'],
  ])('fails the build on %s, writing nothing outside', async (_what, name) => {
    const err = await unpack(tar([{ path: 'ok.txt', body: 'ok' }, { path: name, body: 'owned' }])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildFailedError);
    expect((err as Error).message).toMatch(/^the source holds a file whose name cannot be published/);
    await expect(readFile('/tmp/slipway-escape.txt')).rejects.toThrow();
  });

  it('refuses a file given twice instead of writing over the first', async () => {
    await expect(unpack(tar([{ path: 'a.txt', body: 'first' }, { path: 'a.txt', body: 'second' }]))).rejects.toThrow(/EEXIST/);
  });

  it('fails an archive cut short, or damaged, as the platform\'s error (the build is retried), and throws nothing beside it', async () => {
    const files = Array.from({ length: 20 }, (_, i) => ({ path: `f${i}.txt`, body: `file ${i} `.repeat(500) }));
    const cut = await unpack(tar(files), LIMITS, (gz) => gz.subarray(0, Math.floor(gz.length / 2))).catch((e: unknown) => e);
    expect(cut).toBeInstanceOf(Error);
    expect(cut).not.toBeInstanceOf(BuildFailedError);
    expect(String(cut)).toMatch(/source archive is damaged or cut short.*unexpected end of file/);
    const flipped = await unpack(tar(files), LIMITS, (gz) => Buffer.concat([gz.subarray(0, 10), Buffer.alloc(64, 0xff), gz.subarray(74)])).catch((e: unknown) => e);
    expect(String(flipped)).toMatch(/source archive is damaged or cut short/);
  });

  it('holds the repository caps: files, bytes, and an archive that inflates without end', async () => {
    const many = Array.from({ length: 51 }, (_, i) => ({ path: `f${i}.txt`, body: 'x' }));
    await expect(unpack(tar(many))).rejects.toThrow(/more than 50 files.*MAX_REPO_FILES/);
    await expect(unpack(tar([{ path: 'big.bin', body: Buffer.alloc(LIMITS.maxBytes + 1) }]))).rejects.toThrow(/larger than 1 MB.*MAX_REPO_MB/);
    // 64 MB of zeros after the end of the archive: about 64 KB gzip'd, stopped at the caps, not read to the end.
    const bomb = await unpack(tar([{ path: 'a.txt', body: 'a' }], Buffer.alloc(64 * 1024 * 1024))).catch((e: unknown) => e);
    expect(bomb).toBeInstanceOf(BuildFailedError);
    expect((bomb as Error).message).toMatch(/^the source archive unpacks to more than/);
  });
});

describe('the source archive, made by the upload-service', () => {
  it("is the commit's files as they are: a repository's export-ignore and export-subst change nothing", async () => {
    const files = {
      '.gitattributes': '* export-ignore\nversion.txt export-subst\n',
      'index.html': '<h1>all of it</h1>',
      'version.txt': '$Format:%H$',
      'deep/er/file.txt': 'deep',
    };
    const id = await stack.deploy({ repoUrl: await stack.repo('attributes', files) });
    const record = await stack.waitFor(id);
    expect(record.status, record.error).toBe('deployed');
    expect(record).toMatchObject({ sourceFormat: 'tar.gz', sourceFiles: 4 });
    expect(await storedSource(stack, id)).toEqual(files);
    expect((await stack.site(id, '/version.txt')).body.toString()).toBe('$Format:%H$');
    // One object holds the source.
    const keys: string[] = [];
    for await (const { key } of stack.storage.list(`${storageKeys.source(id)}/`)) keys.push(key);
    expect(keys).toEqual([storageKeys.sourceArchive(id)]);
  });

  it('a deployment stored a file per object (before the archive) still builds', async () => {
    const id = await stack.deploy({ repoUrl: await stack.repo('before-archive', { 'index.html': '<h1>v1</h1>' }) });
    expect((await stack.waitFor(id)).status).toBe('deployed');
    // As an older upload-service stored it: the files themselves, and no sourceFormat on the record.
    await stack.storage.deletePrefix(`${storageKeys.source(id)}/`);
    await stack.storage.putText(`${storageKeys.source(id)}/index.html`, '<h1>per file</h1>');
    await stack.redis.hDel(`deployment:${id}`, 'sourceFormat');
    const again = await stack.post(`/deployments/${id}/redeploy`, {});
    expect(again.status, JSON.stringify(again.body)).toBe(202);
    const record = await stack.waitFor(id);
    expect(record.status, record.error).toBe('deployed');
    expect((await stack.site(id, '/')).body.toString()).toBe('<h1>per file</h1>');
  });
});

afterAll(async () => {
  await rm('/tmp/slipway-escape.txt', { force: true });
});

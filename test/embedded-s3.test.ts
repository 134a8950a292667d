// The S3 server `npm start` embeds, with credentials of its own: everything Slipway does with S3
// works when signed with them (paged listings, folder listings, batch deletes, streamed uploads),
// and unsigned requests, other keys and wrong secrets are refused.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Storage, createS3Client, forEachBounded, loadConfig } from '@slipway/shared';
import { spawnS3rver, type S3Server } from '../dev/s3-server';

const credentials = { accessKeyId: 'slipway', secretAccessKey: `secret-${Math.random().toString(36).slice(2)}` };
let s3: S3Server;
const storageWith = (accessKeyId: string, secretAccessKey: string) =>
  new Storage(createS3Client(loadConfig({ S3_ENDPOINT: s3.endpoint, AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey }).s3), 'embedded');

beforeAll(async () => {
  s3 = await spawnS3rver({ directory: path.join(inject('tmpRoot'), 'embedded-s3'), credentials });
});
afterAll(async () => {
  await s3?.close();
});

describe('the embedded S3 server with credentials', () => {
  it('serves every operation Slipway uses when the request is signed with them', async () => {
    const storage = storageWith(credentials.accessKeyId, credentials.secretAccessKey);
    await storage.ensureBucket();
    const dir = path.join(inject('tmpRoot'), 'embedded-s3-file');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'a b+c.txt'), 'streamed body');
    await storage.putFile('dist/x/b1/a b+c.txt', path.join(dir, 'a b+c.txt'), 13, { contentType: 'text/plain', mode: 0o755 });
    await forEachBounded((function* () { for (let i = 0; i < 1005; i++) yield i; })(), 16, (i) => storage.putText(`source/many/f=${i}.txt`, `file ${i}`));
    const object = await storage.get('dist/x/b1/a b+c.txt');
    expect(object?.mode).toBe(0o755);
    let keys = 0;
    for await (const _ of storage.list('source/many/')) keys += 1;
    expect(keys).toBe(1005); // two pages: the continuation token is signed too
    const folders: string[] = [];
    for await (const folder of storage.listFolders('dist/x/')) folders.push(folder);
    expect(folders).toEqual(['b1']);
    expect(await storage.deletePrefix('source/many/')).toBe(1005);
  });

  it.each([
    ['s3rver\'s built-in key', 'S3RVER', 'S3RVER'],
    ['the right key with a wrong secret', 'slipway', 'not-the-secret'],
  ])('refuses %s', async (_what, id, secret) => {
    await expect(storageWith(id, secret).get('dist/x/b1/a b+c.txt')).rejects.toThrow(/AccessDenied|Access Denied|not accepted|does not match|unknown/i);
  });

  it('refuses unsigned requests', async () => {
    for (const [method, url] of [['GET', '/embedded/dist/x/b1/a%20b%2Bc.txt'], ['PUT', '/embedded/planted.txt'], ['GET', '/embedded?list-type=2']]) {
      const res = await fetch(s3.endpoint + url, { method, body: method === 'PUT' ? 'x' : undefined });
      expect(res.status, `${method} ${url}`).toBe(403);
      expect(await res.text()).toContain('AccessDenied');
    }
  });
});

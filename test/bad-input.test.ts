// Bad input gets a clear JSON error with the right status, and leaves nothing behind in Redis or S3.
import { execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import getPort from 'get-port';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Storage, createS3Client } from '@slipway/shared';
import { createApp } from '../upload-service/src/app';
import { startRedisServer } from '../dev/redis-server';
import { staticSite } from './harness/fixtures';
import { startStack, type Stack, storedKeys } from './harness/stack';

let stack: Stack;
let repoUrl: string;
let brokenUrl: string;
beforeAll(async () => {
  stack = await startStack({ workers: 0 });
  repoUrl = await stack.repo('ok', staticSite());
  // A repository with one object removed from the server's copy: git's upload-pack aborts.
  brokenUrl = await stack.repo('broken', { 'index.html': '<h1>ok</h1>', 'big.txt': 'a file whose object goes missing' });
  const bare = path.join(inject('gitRoot'), path.basename(new URL(brokenUrl).pathname));
  const object = execFileSync('git', ['-C', bare, 'rev-parse', 'HEAD:big.txt'], { encoding: 'utf8' }).trim();
  await rm(path.join(bare, 'objects', object.slice(0, 2), object.slice(2)));
});
afterAll(async () => {
  await stack?.close();
});

/** Everything a deployment could have left: records, list entries, objects. */
async function leftovers(): Promise<{ keys: string[]; objects: number }> {
  const keys = await storedKeys(stack);
  let objects = 0;
  for await (const _ of stack.storage.list('')) objects++;
  return { keys, objects };
}

describe('POST /deploy with bad input', () => {
  const json = { 'content-type': 'application/json' };
  it.each([
    ['malformed JSON', '{"repoUrl": ', json, 400, 'INVALID_INPUT', /not valid JSON/],
    ['no body', undefined, json, 400, 'INVALID_INPUT', /repoUrl is required/],
    ['a body that is not JSON', 'repoUrl=https://x', { 'content-type': 'application/x-www-form-urlencoded' }, 400, 'INVALID_INPUT', /JSON object/],
    ['a JSON array', '[]', json, 400, 'INVALID_INPUT', /JSON object/],
    ['no repoUrl', {}, json, 400, 'INVALID_INPUT', /repoUrl is required/],
    ['repoUrl of the wrong type', { repoUrl: 7 }, json, 400, 'INVALID_INPUT', /repoUrl/],
    ['an unknown field', { repoUrl: 'https://example.com/a.git', colour: 'red' }, json, 400, 'INVALID_INPUT', /colour/],
    ['a file: URL', { repoUrl: 'file:///etc/passwd' }, json, 400, 'INVALID_URL', /scheme "file"/],
    ['credentials in the URL', { repoUrl: 'http://u:p@127.0.0.1/a.git' }, json, 400, 'INVALID_URL', /credentials/],
    ['a branch that looks like an option', { repoUrl: 'https://example.com/a.git', branch: '--upload-pack=touch' }, json, 400, 'INVALID_INPUT', /branch/],
    ['rootDir climbing out', { repoUrl: 'https://example.com/a.git', rootDir: '../../etc' }, json, 400, 'INVALID_INPUT', /rootDir/],
    ['outputDir absolute', { repoUrl: 'https://example.com/a.git', outputDir: '/etc' }, json, 400, 'INVALID_INPUT', /outputDir/],
    ['a shell pipeline as buildCommand', { repoUrl: 'https://example.com/a.git', buildCommand: 'npm run build | sh' }, json, 400, 'INVALID_INPUT', /buildCommand/],
    ['an env variable Slipway sets itself', { repoUrl: 'https://example.com/a.git', env: { PATH: '/tmp' } }, json, 400, 'INVALID_INPUT', /env\.PATH: env may not set PATH/],
    ['an env value that is not a string', { repoUrl: 'https://example.com/a.git', env: { PORT: 8080 } }, json, 400, 'INVALID_INPUT', /env\.PORT: env values must be strings/],
    ['an spaFallback outside the output root', { repoUrl: 'https://example.com/a.git', spaFallback: '../secret.html' }, json, 400, 'INVALID_INPUT', /spaFallback is the name of an .html file/],
    ['buildMemoryMb that is not a whole number', { repoUrl: 'https://example.com/a.git', buildMemoryMb: '8GB' }, json, 400, 'INVALID_INPUT', /buildMemoryMb is a whole number of megabytes/],
    ['buildMemoryMb below 256', { repoUrl: 'https://example.com/a.git', buildMemoryMb: 64 }, json, 400, 'INVALID_INPUT', /buildMemoryMb is at least 256/],
    ['buildMemoryMb with a fraction', { repoUrl: 'https://example.com/a.git', buildMemoryMb: 1024.5 }, json, 400, 'INVALID_INPUT', /buildMemoryMb is a whole number/],
    ['a sourceScope Slipway does not know', { repoUrl: 'https://example.com/a.git', sourceScope: 'app' }, json, 400, 'INVALID_INPUT', /sourceScope is "repository" .* or "rootDir"/],
    ['a body over 16 KB', { repoUrl: `https://example.com/${'a'.repeat(20_000)}` }, json, 413, 'BODY_TOO_LARGE', /16 KB/],
  ])('%s', async (_name, body, headers, status, code, message) => {
    const res = await stack.post('/deploy', body, headers);
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ error: { code, message: expect.stringMatching(message) } });
    expect(await leftovers()).toEqual({ keys: [], objects: 0 });
  });

  it.each([
    ['a repository that does not exist', () => ({ repoUrl: `${repoUrl.replace(/[^/]+$/, '')}nope.git` }), 422, 'CLONE_FAILED', /not found|cannot be cloned/],
    ['a branch that does not exist', () => ({ repoUrl, branch: 'no-such-branch' }), 422, 'CLONE_FAILED', /branch "no-such-branch"/],
    ['a rootDir that is not in the repository', () => ({ repoUrl, rootDir: 'apps/missing' }), 400, 'INVALID_INPUT', /rootDir "apps\/missing"/],
    ['a rootDir that is a file', () => ({ repoUrl, rootDir: 'index.html' }), 400, 'INVALID_INPUT', /rootDir "index.html" is not a folder/],
    // git's own "aborting" once read as the time limit: the reason said "took longer than 60 s" after 0.8 s.
    ['a repository its server cannot send (an object missing)', () => ({ repoUrl: brokenUrl }), 422, 'CLONE_FAILED', /^cloning \S+ failed: fatal: (?:git upload-pack: aborting due to possible repository corruption on the remote side\.|fetch-pack: invalid index-pack output)$/],
  ])('%s: nothing is stored', async (_name, body, status, code, message) => {
    const res = await stack.post('/deploy', body());
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ error: { code, message: expect.stringMatching(message) } });
    expect(await leftovers()).toEqual({ keys: [], objects: 0 });
  });
});

describe('reading unknown things', () => {
  it.each([
    ['/deployments/abcdefghij99', 404, 'NOT_FOUND'],
    ['/deployments/..%2f..%2fetc', 404, 'NOT_FOUND'],
    ['/deployments/abcdefghij99/logs', 404, 'NOT_FOUND'],
    ['/status?id=abcdefghij99', 404, 'NOT_FOUND'],
    ['/status', 400, 'INVALID_INPUT'],
    ['/no/such/route', 404, 'NOT_FOUND'],
  ])('GET %s → %i %s', async (path, status, code) => {
    const res = await stack.get(path);
    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe(code);
  });
});

describe('when a platform service is down', () => {
  it('answers 503 while Redis is down, enqueues nothing, and works again once it is back', async () => {
    await stack.redisServer.stop();
    const res = await stack.post('/deploy', { repoUrl });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('UNAVAILABLE');
    expect((await stack.get('/queue')).status).toBe(503);
    expect(await stack.get('/readyz')).toEqual({ status: 503, body: { redis: 'unavailable', s3: 'ok' } });
    expect(await stack.get('/healthz')).toEqual({ status: 200, body: { status: 'ok' } }); // alive: no restart for a Redis outage
    let objects = 0;
    for await (const _ of stack.storage.list('')) objects++;
    expect(objects).toBe(0);

    // Same port and data folder: the services reconnect on their own.
    stack.redisServer = await startRedisServer({ port: stack.redisServer.port, dir: `${stack.config.workDir}/redis` });
    const deadline = Date.now() + 15_000;
    while (!stack.redis.isReady && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect((await stack.post('/deploy', { repoUrl })).status).toBe(202);
    await stack.redis.flushAll(); // this test's own redis-server
    await stack.storage.deletePrefix('');
  });

  it('answers 503 when S3 is unreachable and leaves no record or list entry', async () => {
    const deadPort = await getPort();
    const storage = new Storage(createS3Client({ ...stack.config.s3, endpoint: `http://127.0.0.1:${deadPort}` }), stack.config.s3.bucket);
    const app = createApp({ config: stack.config, queue: stack.queue, storage, logger: pino({ level: 'silent' }), redisReady: () => stack.redis.isReady });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/deploy`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ repoUrl }),
      });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNAVAILABLE');
      expect(await storedKeys(stack)).toEqual([]);
    } finally {
      server.close();
    }
  });
});

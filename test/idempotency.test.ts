// Safe retries for clients: POST /deploy and project deployments with an Idempotency-Key. The same key
// answers with the same deployment for 24 h, even when the upload-service that took it was killed
// mid-upload (a real process, SIGKILL); another request under the same key, or a retry while the
// first still prepares, is a conflict.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import getPort from 'get-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageKeys } from '@slipway/shared';
import { manyFiles, staticSite } from './harness/fixtures';
import { startStack, storedSource, type Stack } from './harness/stack';
import { startSlowUploadService } from './harness/upload-process';
import { waitUntil } from './harness/worker-process';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ workers: 1 });
});
afterAll(async () => {
  await stack?.close();
});

const deploy = (api: string, body: unknown, key: string) =>
  fetch(`${api}/deploy`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': key }, body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
/** The Redis key of an Idempotency-Key sent without a token to POST /deploy (as the API hashes it). */
const stored = (key: string) => `idempotency:${createHash('sha256').update(`anonymous\0deploy\0${key}`).digest('hex')}`;

async function sourceObjects(id: string): Promise<number> {
  let n = 0;
  for await (const _ of stack.storage.list(`${storageKeys.source(id)}/`)) n++;
  return n;
}

describe('Idempotency-Key', () => {
  it('the same key answers with the same deployment, made once', async () => {
    const repoUrl = await stack.repo('idem-same', staticSite());
    const first = await deploy(stack.api, { repoUrl }, 'key-same-1');
    expect(first.status).toBe(202);
    const again = await deploy(stack.api, { repoUrl }, 'key-same-1');
    expect(again.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    await stack.waitFor(first.body.id);
    const third = await deploy(stack.api, { repoUrl }, 'key-same-1');
    expect(third.body).toMatchObject({ id: first.body.id, status: 'deployed' });
    const listed = (await stack.get('/deployments?limit=100')).body.items.filter((d: { repoUrl?: string; id: string }) => d.id === first.body.id);
    expect(listed).toHaveLength(1);
    // Another key is another deployment.
    expect((await deploy(stack.api, { repoUrl }, 'key-same-2')).body.id).not.toBe(first.body.id);
  });

  it('the same key for another request is a conflict, and an unusable key is refused', async () => {
    const repoUrl = await stack.repo('idem-other', staticSite());
    expect((await deploy(stack.api, { repoUrl }, 'key-other')).status).toBe(202);
    const other = await deploy(stack.api, { repoUrl, branch: 'main', outputDir: 'x' }, 'key-other');
    expect(other.status).toBe(409);
    expect(other.body.error.message).toMatch(/used for another request/);
    for (const bad of ['', 'a'.repeat(256), 'with space']) {
      const res = await fetch(`${stack.api}/deploy`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': bad }, body: JSON.stringify({ repoUrl }) });
      expect(res.status, JSON.stringify(bad)).toBe(400);
    }
  });

  it('an upload-service killed mid-upload: the retry with the same key prepares the same deployment again, under the same id', { timeout: 120_000 }, async () => {
    const files = manyFiles(1500);
    const repoUrl = await stack.repo('idem-killed', files);
    // Its S3 a second away each way, so its upload is still under way when it is killed.
    const service = await startSlowUploadService(stack.env);
    const { child } = service;
    const other = service.url;
    const dying = deploy(other, { repoUrl }, 'key-killed').catch(() => null);
    // Killed once its record is in Redis and its source is on the way to S3.
    const id = await waitUntil('the upload to be under way', async () => {
      const held = await stack.redis.get(stored('key-killed'));
      if (!held) return undefined;
      const { id } = JSON.parse(held) as { id: string };
      return (await stack.queue.get(id))?.status === 'uploading' ? id : undefined;
    }, 60_000);
    await service.archiveOnItsWay(id);
    await service.close(); // SIGKILL

    expect(await dying).toBeNull(); // the client got no answer
    const leftClone = (await readdir(stack.config.workDir!)).filter((n) => n.startsWith(`slipway-clone-${child.pid}-`));
    expect(leftClone).toHaveLength(1);

    // The retry (as a client would make it) waits out the dead request's lease, then takes over.
    const retried = await waitUntil('the retry to be taken', async () => {
      const res = await deploy(stack.api, { repoUrl }, 'key-killed');
      if (res.status === 409 && /still preparing/.test(res.body.error.message)) return undefined;
      return res;
    }, 30_000);
    expect(retried.status).toBe(202);
    expect(retried.body.id).toBe(id);
    expect((await stack.waitFor(id, undefined, 60_000)).status).toBe('deployed');
    expect(await sourceObjects(id)).toBe(1); // the archive, made once again
    expect(Object.keys(await storedSource(stack, id)).sort()).toEqual(Object.keys(files).sort());

    // The next upload-service to start removes the clone folder the killed one left.
    const next = spawn(process.execPath, ['--import', 'tsx', 'upload-service/src/main.ts'], {
      env: { ...stack.env, PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HOST: '127.0.0.1', PORT: String(await getPort()), LOG_LEVEL: 'silent' },
      stdio: 'ignore',
    });
    try {
      await waitUntil('the clone folder removed', async () => ((await readdir(stack.config.workDir!)).includes(leftClone[0]!) ? undefined : true), 20_000);
    } finally {
      next.kill('SIGKILL');
    }
  });
});

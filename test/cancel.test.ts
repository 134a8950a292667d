// Cancel and redeploy, and the queue view that shows what each worker is doing.
import { afterEach, describe, expect, it } from 'vitest';
import { slowBuild, staticSite } from './harness/fixtures';
import { startStack, type Stack } from './harness/stack';
import { waitUntil } from './harness/worker-process';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

describe('cancel', () => {
  it('takes a queued deployment off the list and marks it canceled', async () => {
    stack = await startStack({ workers: 0 });
    const repoUrl = await stack.repo('queued', staticSite());
    const keep = await stack.deploy({ repoUrl });
    const drop = await stack.deploy({ repoUrl });
    expect(await stack.post(`/deployments/${drop}/cancel`)).toEqual({ status: 202, body: { id: drop, status: 'canceled' } });
    expect(await stack.redis.lRange('build-queue', 0, -1)).toEqual([keep]);
    expect((await stack.queue.get(drop))?.status).toBe('canceled');

    await stack.startWorker();
    expect((await stack.waitFor(keep)).status).toBe('deployed');
    expect((await stack.queue.get(drop))?.status).toBe('canceled');
    expect((await stack.site(drop, '/')).status).toBe(404);
  });

  it('stops a running build within a second and frees its slot', async () => {
    stack = await startStack({ workers: 1 });
    const id = await stack.deploy({ repoUrl: await stack.repo('running', slowBuild(30_000)) });
    await stack.waitFor(id, ['building']);
    await waitUntil('the build to print', async () => ((await stack!.queue.readLog(id)).lines.includes('building for 30000 ms') ? true : undefined));

    const asked = Date.now();
    expect(await stack.post(`/deployments/${id}/cancel`)).toEqual({ status: 202, body: { id, status: 'canceling' } });
    const record = await stack.waitFor(id, ['canceled', 'deployed', 'failed'], 5000);
    expect(record.status).toBe('canceled');
    expect(Date.now() - asked).toBeLessThan(1500);
    expect((await stack.queue.readLog(id)).lines).toContain('[slipway] canceled');
    expect(await stack.queue.stats()).toMatchObject({ waiting: 0, processing: 0 });

    // The slot is free again.
    const next = await stack.deploy({ repoUrl: await stack.repo('after-cancel', staticSite()) });
    expect((await stack.waitFor(next)).status).toBe('deployed');
  });

  it('answers 409 for a finished deployment and 404 for an unknown one', async () => {
    stack = await startStack({ workers: 1 });
    const id = await stack.deploy({ repoUrl: await stack.repo('done', staticSite()) });
    await stack.waitFor(id);
    const res = await stack.post(`/deployments/${id}/cancel`);
    expect(res.status).toBe(409);
    expect(res.body.error).toEqual({ code: 'CONFLICT', message: `deployment ${id} is deployed; only a queued or building deployment can be canceled` });
    expect((await stack.post('/deployments/abcdefghij99/cancel')).status).toBe(404);
  });
});

describe('redeploy', () => {
  it('builds a finished deployment again from its stored source', async () => {
    stack = await startStack({ workers: 1 });
    const id = await stack.deploy({ repoUrl: await stack.repo('again', staticSite()) });
    const first = await stack.waitFor(id);
    const res = await stack.post(`/deployments/${id}/redeploy`);
    expect(res).toMatchObject({ status: 202, body: { id, status: 'queued' } });
    await waitUntil('the second build to start', async () => ((await stack!.queue.get(id))?.startedAt !== first.startedAt ? true : undefined));
    const second = await stack.waitFor(id);
    expect(second).toMatchObject({ status: 'deployed', attempts: 1, commit: first.commit });
    expect((await stack.site(id, '/')).body.toString()).toContain('Home');
    expect((await stack.post('/deployments/abcdefghij99/redeploy')).status).toBe(404);
  });

  it('answers 409 while a deployment is still queued', async () => {
    stack = await startStack({ workers: 0 });
    const id = await stack.deploy({ repoUrl: await stack.repo('queued-redeploy', staticSite()) });
    expect((await stack.post(`/deployments/${id}/redeploy`)).body.error.code).toBe('CONFLICT');
  });
});

describe('GET /queue', () => {
  it('shows waiting, processing and each worker with what it builds', async () => {
    stack = await startStack({ workers: 0 });
    const repoUrl = await stack.repo('view', slowBuild(20_000));
    const running = await stack.deploy({ repoUrl });
    const waiting = await stack.deploy({ repoUrl });
    await stack.startWorker({ name: 'viewer' });
    await stack.waitFor(running, ['building']);
    const view = await waitUntil('the worker to report its build', async () => {
      const { body } = await stack!.get('/queue');
      return body.workers[0]?.current === running ? body : undefined;
    });
    expect(view).toEqual({ waiting: 1, processing: 1, delayed: 0, dead: 0, workers: [{ id: 'viewer-0', current: running, since: expect.any(String) }] });
    expect(await stack.redis.lRange('build-queue', 0, -1)).toEqual([waiting]);
  });
});

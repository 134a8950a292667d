// Changing a project's secrets is safe to repeat: a client that lost the API's reply and sends the
// change again, or an API whose Redis reply was lost mid-change, ends with the change made once (one
// new env version, the value as sent), through a proxy that drops exactly that reply.
import { pino } from 'pino';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue, createRedis, openProjectEnv, type ProjectRecord } from '@slipway/shared';
import { ProjectRecordSchema } from '../shared/src/projects/schema';
import { createApp } from '../upload-service/src/app';
import { staticSite } from './harness/fixtures';
import { startLossyProxy, type LossyProxy } from './harness/lossy-proxy';
import { startStack, type Stack } from './harness/stack';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ workers: 0 });
});
afterAll(async () => {
  await stack?.close();
});

const put = (api: string, name: string, value: string) =>
  fetch(`${api}/projects/retried/env/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value, target: 'production' }) });

async function env(): Promise<{ version: number; production: Record<string, string> }> {
  const project = ProjectRecordSchema.parse(await stack.redis.hGetAll('project:retried')) as ProjectRecord;
  return { version: project.envVersion ?? 0, production: openProjectEnv(project, stack.config.secrets).production };
}

describe('secret changes, sent again after a lost reply', () => {
  it('a client that lost the answer and sends the same change again changes it once', async () => {
    expect((await stack.post('/projects', { name: 'retried', repoUrl: await stack.repo('retried', staticSite()) })).status).toBe(201);
    const proxy: LossyProxy = await startLossyProxy(Number(new URL(stack.api).port));
    try {
      const via = `http://127.0.0.1:${new URL(proxy.url).port}`;
      proxy.loseReplyTo('RETRY_CLIENT');
      await expect(put(via, 'RETRY_CLIENT', 'one')).rejects.toThrow();
      expect(await env()).toEqual({ version: 1, production: { RETRY_CLIENT: 'one' } });
      const again = await put(via, 'RETRY_CLIENT', 'one');
      expect(again.status).toBe(200);
      expect(await env()).toEqual({ version: 1, production: { RETRY_CLIENT: 'one' } });
    } finally {
      await proxy.close();
    }
  });

  it('an API whose Redis reply was lost mid-change answers with an error, and the same change sent again is made once', async () => {
    const proxy = await startLossyProxy(stack.redisServer.port);
    const redis = createRedis(proxy.url, pino({ level: 'silent' }), 'lossy');
    await redis.connect();
    const app = createApp({ config: stack.config, queue: new Queue(redis), storage: stack.storage, logger: pino({ level: 'silent' }), redisReady: () => redis.isReady });
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const before = (await env()).version;
      // The swap carries the variable's name (in what is set where): its reply is the one lost.
      proxy.loseReplyTo('RETRY_REDIS');
      const lost = await put(api, 'RETRY_REDIS', 'two');
      expect(lost.status).toBeGreaterThanOrEqual(500);
      expect(((await lost.json()) as { error: { code: string } }).error.code).toBe('UNAVAILABLE');
      const deadline = Date.now() + 10_000;
      while (!redis.isReady && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const again = await put(api, 'RETRY_REDIS', 'two');
      expect(again.status).toBe(200);
      expect(await env()).toEqual({ version: before + 1, production: { RETRY_CLIENT: 'one', RETRY_REDIS: 'two' } });
    } finally {
      server.close();
      redis.destroy();
      await proxy.close();
    }
  });
});

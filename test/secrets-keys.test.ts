// SECRETS_KEY on a real Redis: a service whose keys do not cover what Redis holds stops at start
// naming the key ids (the API and the worker alike), and a rotation (the new key as SECRETS_KEY,
// the old as SECRETS_KEY_PREVIOUS) seals every value again under the new key — projects' env,
// deployments' env, and plain env values stored before sealing — so the old key can go.
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secrets, checkSecretsKeys, deploymentEnv, fromHash, loadConfig, openProjectEnv, parseSecretsKey, prepareSecrets, sealedKeyId, type ProjectRecord } from '@slipway/shared';
import { ProjectRecordSchema } from '../shared/src/projects/schema';
import { startWorker } from '../deploy-service/src/queue/worker';
import { staticSite } from './harness/fixtures';
import { startStack, type Stack, storedKeys } from './harness/stack';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ workers: 0 });
});
afterAll(async () => {
  await stack?.close();
});

const newKey = () => randomBytes(32).toString('base64');
const silent = pino({ level: 'silent' });

describe('SECRETS_KEY', () => {
  it('rotates: everything sealed again under the new key, plain values from before sealing too; then the old key can go', async () => {
    const repoUrl = await stack.repo('rotating', staticSite());
    expect((await stack.post('/projects', { name: 'rotating', repoUrl, env: { production: { TOKEN_A: 'value-a' }, preview: { TOKEN_B: 'value-b' } } })).status).toBe(201);
    const id = await stack.deploy({ repoUrl, env: { DEPLOY_SECRET: 'value-d' } });
    // A project from before sealing: its env plain in the hash.
    await stack.redis.hSet('project:legacy', { name: 'legacy', repoUrl, productionBranch: 'main', createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(), env: JSON.stringify({ OLD: 'plain-value' }) });
    await stack.redis.zAdd('projects', { score: Date.now(), value: 'legacy' });

    const old = stack.config.secrets.current!;
    const next = parseSecretsKey(newKey(), 'SECRETS_KEY');
    const rotating = new Secrets(next, old);
    await prepareSecrets(stack.redis, rotating, silent);
    expect(await stack.redis.sMembers('secrets:keys')).toEqual([next.id]);

    const project = ProjectRecordSchema.parse(await stack.redis.hGetAll('project:rotating')) as ProjectRecord;
    const legacy = ProjectRecordSchema.parse(await stack.redis.hGetAll('project:legacy')) as ProjectRecord;
    const record = fromHash(await stack.redis.hGetAll(`deployment:${id}`))!;
    for (const sealed of [project.sealedEnv!, legacy.sealedEnv!, record.sealedEnv!]) expect(sealedKeyId(sealed)).toBe(next.id);
    expect(legacy.env).toBeUndefined();
    expect(legacy.envMeta?.map((e) => `${e.name}:${e.target}`)).toEqual(['OLD:production', 'OLD:preview']);
    // Only the new key now: everything opens.
    const only = new Secrets(next);
    expect(openProjectEnv(project, only)).toEqual({ production: { TOKEN_A: 'value-a' }, preview: { TOKEN_B: 'value-b' }, branches: {} });
    expect(openProjectEnv(legacy, only).production).toEqual({ OLD: 'plain-value' });
    expect(deploymentEnv(record, only)).toEqual({ DEPLOY_SECRET: 'value-d' });
    // A second run finds nothing to do.
    await prepareSecrets(stack.redis, rotating, silent);
    expect(ProjectRecordSchema.parse(await stack.redis.hGetAll('project:rotating')).sealedEnv).toBe(project.sealedEnv);
    const dump = JSON.stringify(await Promise.all((await stack.redis.keys('*')).map(async (k) => ((await stack.redis.type(k)) === 'hash' ? stack.redis.hGetAll(k) : null))));
    for (const value of ['value-a', 'value-b', 'value-d', 'plain-value']) expect(dump).not.toContain(value);

    // The old key alone, or none, can no longer start anything: the API nor a worker.
    await expect(checkSecretsKeys(stack.redis, new Secrets(old))).rejects.toThrow(`Redis holds values sealed under key ${next.id}, which is neither SECRETS_KEY (${old.id}) nor SECRETS_KEY_PREVIOUS`);
    await expect(checkSecretsKeys(stack.redis, new Secrets(null))).rejects.toThrow(/and SECRETS_KEY is not set: start with SECRETS_KEY set to that key/);
    const config = loadConfig({ ...stack.env, SECRETS_KEY: newKey() });
    await expect(startWorker({ config, redis: stack.redis, storage: stack.storage, logger: silent })).rejects.toThrow(/Redis holds values sealed under key/);
  });

  it('without SECRETS_KEY, env values and tokens are refused (503) before anything is cloned, and nothing is stored', async () => {
    const keyless = await startStack({ workers: 0, env: { SECRETS_KEY: '' } });
    try {
      expect(keyless.config.secrets.enabled).toBe(false);
      const repoUrl = await keyless.repo('keyless', staticSite());
      for (const [path, body] of [
        ['/deploy', { repoUrl, env: { A: '1' } }],
        ['/projects', { name: 'keyless', repoUrl, env: { A: '1' } }],
        ['/projects', { name: 'keyless', repoUrl, gitAuth: { username: 'u', token: 't' } }],
      ] as const) {
        const res = await keyless.post(path, body);
        expect(res.status, path).toBe(503);
        expect(res.body.error.message).toMatch(/secrets \(env values, git credentials\) cannot be stored: SECRETS_KEY is not set on this server/);
      }
      expect(await storedKeys(keyless)).toEqual([]);
      let objects = 0;
      for await (const _ of keyless.storage.list('')) objects++;
      expect(objects).toBe(0);
      // Without secrets, all else works as before.
      expect((await keyless.post('/projects', { name: 'keyless', repoUrl })).status).toBe(201);
    } finally {
      await keyless.close();
    }
  });
});

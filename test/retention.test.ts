// Retention end to end: the janitor removes exactly the deployments past their kind's age (failed,
// canceled, previews, old production when set), Redis and S3 together, never a project's production
// or a current branch alias, never a building one; one janitor at a time; a pass cut short is finished.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Retention } from '@slipway/shared';
import { retentionOnly as sweep } from '../deploy-service/src/retention/janitor';
import { slowBuild, textSite } from './harness/fixtures';
import { startStack, type Stack } from './harness/stack';

let stack: Stack;
beforeAll(async () => {
  // The test runs the passes itself (with a clock days ahead); the workers' own timer stays out of it.
  stack = await startStack({ env: { JANITOR_INTERVAL_SECONDS: '86400' } });
});
afterAll(async () => {
  await stack?.close();
});

const DAY = 24 * 3600 * 1000;
const days = { previewDays: 30, productionDays: 0, failedDays: 7, canceledDays: 1 };
const logger = pino({ level: 'silent' });


const call = (method: string, path: string, body?: unknown) => stack.request(method, path, body);

async function deployed(path: string, body: Record<string, unknown>, status = 'deployed') {
  const res = await call('POST', path, body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  expect((await stack.waitFor(res.body.id)).status).toBe(status);
  return res.body.id as string;
}

/** Everything S3 holds for a deployment: source, outputs, the stored log. */
async function objects(id: string): Promise<number> {
  let n = 0;
  for (const prefix of [`source/${id}/`, `dist/${id}/`, `logs/${id}.log`]) for await (const _ of stack.storage.list(prefix)) n++;
  return n;
}

async function inRedis(id: string): Promise<boolean> {
  return (await stack.redis.exists(`deployment:${id}`)) === 1 || (await stack.redis.zScore('deployments', id)) !== null;
}

describe('retention', () => {
  const ids = {} as Record<'oldProduction' | 'production' | 'oldPreview' | 'preview' | 'failed' | 'canceled' | 'canceledLater' | 'lone', string>;

  it('keeps everything younger than its retention', async () => {
    const repoUrl = await stack.repo('kept-site', textSite('v1'), { extraBranches: { feature: textSite('feature'), broken: textSite('', true) } });
    expect((await call('POST', '/projects', { name: 'kept', repoUrl })).status).toBe(201);
    ids.oldProduction = await deployed('/projects/kept/deployments', {});
    ids.production = await deployed('/projects/kept/deployments', {});
    ids.oldPreview = await deployed('/projects/kept/deployments', { branch: 'feature' });
    ids.preview = await deployed('/projects/kept/deployments', { branch: 'feature' });
    ids.failed = await deployed('/projects/kept/deployments', { branch: 'broken' }, 'failed');
    ids.lone = await deployed('/deploy', { repoUrl });
    const slow = await call('POST', '/deploy', { repoUrl: await stack.repo('slow-site', slowBuild(20_000)) });
    ids.canceled = slow.body.id;
    await stack.waitFor(ids.canceled, ['building']);
    expect((await call('POST', `/deployments/${ids.canceled}/cancel`)).status).toBe(202);
    await stack.waitFor(ids.canceled, ['canceled']);
    for (const id of Object.values(ids)) expect(await objects(id), id).toBeGreaterThan(0);

    expect(await sweep({ config: { retention: days }, redis: stack.redis, storage: stack.storage, logger })).toEqual({ removed: [], kept: 0 });
    expect((await sweep({ config: { retention: days }, redis: stack.redis, storage: stack.storage, logger }, Date.now() + 0.5 * DAY))!.removed).toEqual([]);
  });

  it('removes failed and canceled ones past their ages, from Redis and S3 together', async () => {
    const building = await call('POST', '/deploy', { repoUrl: await stack.repo('slow-site-2', slowBuild(30_000)) });
    await stack.waitFor(building.body.id, ['building']);

    const pass = await sweep({ config: { retention: days }, redis: stack.redis, storage: stack.storage, logger }, Date.now() + 10 * DAY);
    expect(pass!.removed.sort()).toEqual([ids.failed, ids.canceled].sort());
    for (const id of [ids.failed, ids.canceled]) {
      expect(await objects(id), id).toBe(0);
      expect(await inRedis(id), id).toBe(false);
      expect((await call('GET', `/deployments/${id}`)).status).toBe(404);
    }
    expect(await stack.redis.exists(`deployment:${building.body.id}`)).toBe(1); // building: never touched
    const listed = (await call('GET', '/projects/kept/deployments?limit=100')).body.items.map((d: { id: string }) => d.id);
    expect(listed).not.toContain(ids.failed);
    expect(listed).toContain(ids.oldPreview);
    await call('POST', `/deployments/${building.body.id}/cancel`);
    await stack.waitFor(building.body.id, ['canceled']);
    ids.canceledLater = building.body.id;
  });

  it('removes old previews but never production or a current branch alias; old production only when RETAIN_PRODUCTION_DAYS is set', async () => {
    const later = Date.now() + 40 * DAY;
    const pass = await sweep({ config: { retention: days }, redis: stack.redis, storage: stack.storage, logger }, later);
    expect(pass!.removed.sort()).toEqual([ids.oldPreview, ids.lone, ids.canceledLater].sort());
    expect((await stack.site(ids.lone, '/')).status).toBe(404);
    for (const id of [ids.oldProduction, ids.production, ids.preview]) {
      expect(await objects(id), id).toBeGreaterThan(0);
      expect(await inRedis(id), id).toBe(true);
    }
    expect((await stack.site('kept', '/')).body.toString()).toBe('v1');
    expect((await stack.site('feature--kept', '/')).body.toString()).toBe('feature');

    // Idempotent: the same pass again removes nothing more.
    expect((await sweep({ config: { retention: days }, redis: stack.redis, storage: stack.storage, logger }, later))!.removed).toEqual([]);
    const withProduction = { ...days, productionDays: 30 };
    const again = await sweep({ config: { retention: withProduction }, redis: stack.redis, storage: stack.storage, logger }, later);
    expect(again!.removed).toEqual([ids.oldProduction]);
    expect((await stack.site('kept', '/')).body.toString()).toBe('v1');
  });

  it('runs one janitor at a time, and finishes a removal an earlier pass left half done', async () => {
    const retention = new Retention(stack.redis);
    expect(await retention.lock('someone-else', 60_000)).toBe(true);
    expect(await sweep({ config: { retention: days }, redis: stack.redis, storage: stack.storage, logger }, Date.now() + 400 * DAY)).toBeNull();
    await retention.unlock('someone-else');

    // A pass marked the branch's old deployment and stopped before deleting it: nothing may point
    // at it or rebuild it meanwhile, and the next pass removes it.
    const previous = await deployed('/projects/kept/deployments', { branch: 'feature' });
    expect(await retention.mark(previous, days, Date.now() + 400 * DAY)).toBe('keep'); // the branch alias holds it
    const newer = await deployed('/projects/kept/deployments', { branch: 'feature' });
    expect(await retention.mark(previous, days, Date.now() + 400 * DAY)).toBe('remove');
    expect((await call('POST', '/projects/kept/promote', { deploymentId: previous })).status).toBe(409);
    expect((await call('POST', `/deployments/${previous}/redeploy`)).status).toBe(409);
    const pass = await sweep({ config: { retention: days }, redis: stack.redis, storage: stack.storage, logger }, Date.now() + 400 * DAY);
    expect(pass!.removed).toContain(previous);
    expect(await objects(previous)).toBe(0);
    expect(await inRedis(previous)).toBe(false);
    for (const id of [newer, ids.production]) expect(await objects(id), id).toBeGreaterThan(0);
    expect(await sweep({ config: { retention: { previewDays: 0, productionDays: 0, failedDays: 0, canceledDays: 0 } }, redis: stack.redis, storage: stack.storage, logger })).toBeNull();
  });
});

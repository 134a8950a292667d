// Redis lost, sites kept: a Redis that comes back empty (restarted without its data, a failover to a
// stale replica) is reconciled from what S3 holds: every deployed build's record, its project, branch
// alias, production (a rollback's pin too) and custom domain; what cannot come back (env values, hook
// secrets, builds published before facts were written) is named. On today's main every site went 404
// for good after FLUSHALL. Also the orphan collector: sources with no record are removed once older
// than an upload may take, never a young one, never one whose record exists.
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupKeys, storageKeys } from '@slipway/shared';
import { collectSources, janitorPass } from '../deploy-service/src/retention/janitor';
import { manyFiles, textSite } from './harness/fixtures';
import { startStack, type Stack } from './harness/stack';
import { startSlowUploadService } from './harness/upload-process';
import { waitUntil } from './harness/worker-process';

let stack: Stack;
beforeAll(async () => {
  // The test runs the janitor's passes itself.
  stack = await startStack({ env: { JANITOR_INTERVAL_SECONDS: '86400' } });
});
afterAll(async () => {
  await stack?.close();
});

const logger = pino({ level: 'silent' });
const call = (method: string, path: string, body?: unknown) => stack.request(method, path, body);
const pass = (now?: number) => waitUntil('the janitor lock', async () => (await janitorPass({ ...stack, projects: stack.queue.projects, logger }, now)) ?? undefined);

function siteAt(host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: stack.config.port, path: '/', headers: { host } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function deployed(path: string, body: Record<string, unknown>) {
  const res = await call('POST', path, body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  expect((await stack.waitFor(res.body.id)).status).toBe('deployed');
  return res.body.id as string;
}

async function count(prefix: string): Promise<number> {
  let n = 0;
  for await (const _ of stack.storage.list(prefix)) n++;
  return n;
}

describe('Redis lost', () => {
  const host = (label: string) => `${label}.${stack.config.baseDomain}:${stack.config.port}`;
  const ids = {} as Record<'first' | 'second' | 'feature' | 'lone', string>;

  it('restores every deployed site, its aliases, pin and domain from S3, and says what it could not', async () => {
    const repoUrl = await stack.repo('lost', textSite('production v1'), { extraBranches: { feature: textSite('the feature') } });
    expect((await call('POST', '/projects', { name: 'lost', repoUrl, domains: ['www.lost.example'], env: { PROJECT_TOKEN: 'p' } })).status).toBe(201);
    // A deploy key too: it is not in S3, and the report says it is gone.
    expect((await call('POST', '/projects/lost/deploy-key', {})).status).toBe(201);
    ids.first = await deployed('/projects/lost/deployments', {});
    ids.second = await deployed('/projects/lost/deployments', {});
    ids.feature = await deployed('/projects/lost/deployments', { branch: 'feature' });
    ids.lone = await deployed('/deploy', { repoUrl: await stack.repo('lone', textSite('a lone site')), env: { API_KEY: 'secret-value' } });
    // A rollback pins production to the first.
    expect((await call('POST', '/projects/lost/rollback', { deploymentId: ids.first })).status).toBe(200);
    // Objects under dist/ that are no build Slipway can restore (no build folder, no facts).
    await stack.storage.putText('dist/legacyaaaaaa/index.html', 'old', 'text/html');
    const secret = 'secret-value';
    for await (const { key } of stack.storage.list('')) {
      if (!key.endsWith('.json')) continue;
      const text = (await stack.storage.getText(key, 1 << 20))!;
      expect(text, key).not.toContain(secret);
    }

    const before = { lone: await siteAt(host(ids.lone)), production: await siteAt(host('lost')), feature: await siteAt(host('feature--lost')), domain: await siteAt('www.lost.example') };
    expect(before.lone.body).toContain('a lone site');
    expect(before.feature.body).toContain('the feature');
    expect(before.domain.status).toBe(200);

    // Redis comes back empty (this stack's own redis-server).
    await stack.redis.flushAll();
    expect((await siteAt(host(ids.lone))).status).toBe(404);
    expect((await siteAt(host('lost'))).status).toBe(404);

    const result = (await pass())!;
    expect(result.failed).toEqual([]);
    const report = result.reconciled!;
    expect(report.projects).toEqual({ restored: 1, present: 0 });
    expect(report.deployments).toEqual({ restored: 4, present: 0, unrestorable: 1 });
    const problems = report.problems.join('\n');
    expect(problems).toContain(`deployment ${ids.lone}: restored without its env values (never stored in S3: API_KEY)`);
    expect(problems).toContain('project lost: env values not restored (never stored in S3): set PROJECT_TOKEN again');
    expect(problems).toContain('project lost: restored with a new hook secret');
    expect(problems).toContain('project lost: its deploy key was not restored (never stored in S3): make one (POST /projects/lost/deploy-key)');
    expect(problems).toContain('deployment legacyaaaaaa: no build under its prefix; its objects are left in S3');
    for (const [name, url] of Object.entries({ lone: host(ids.lone), production: host('lost'), feature: host('feature--lost'), domain: 'www.lost.example' })) {
      const after = await siteAt(url);
      expect(after, name).toEqual(before[name as keyof typeof before]);
    }
    const project = (await call('GET', '/projects/lost')).body;
    expect(project).toMatchObject({ production: { id: ids.first }, pinned: true, envNames: [] });
    expect(project.domains.map((d: { host: string }) => d.host)).toEqual(['www.lost.example']);
    const lone = (await call('GET', `/deployments/${ids.lone}`)).body;
    expect(lone).toMatchObject({ status: 'deployed', restoredAt: expect.any(String) });
    expect(lone.envNames).toBeUndefined();
    const listed = (await call('GET', '/projects/lost/deployments?limit=10')).body.items.map((d: { id: string }) => d.id);
    expect(listed.sort()).toEqual([ids.first, ids.second, ids.feature].sort());
    // A promote works on restored deployments: the pointers are real again.
    expect((await call('POST', '/projects/lost/promote', { deploymentId: ids.second })).status).toBe(200);
    expect((await call('GET', '/projects/lost')).body).toMatchObject({ production: { id: ids.second }, pinned: false });
    expect(await siteAt(host('lost'))).toEqual(before.production);
    // The legacy build is left where it is.
    expect(await count('dist/legacyaaaaaa/')).toBe(1);
  });

  it('reconciles again without changing anything, from the command line too, naming what was lost', async () => {
    const out = spawnSync(process.execPath, ['--import', 'tsx', 'deploy-service/src/reconcile-command.ts'], {
      env: { ...stack.env, PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'silent' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout).toContain('projects: 0 restored, 1 already in Redis');
    expect(out.stdout).toContain('deployments: 0 restored, 4 already in Redis, 1 not restorable');
    expect(out.stdout).toContain('- deployment legacyaaaaaa: no build under its prefix');
    // The marker is set: the next pass does not reconcile again.
    expect((await pass())!.reconciled).toBeNull();
  });

  it('a record lost during its upload is said so (not "Redis is unavailable"), and the upload is removed', async () => {
    const repoUrl = await stack.repo('lost-mid-upload', manyFiles(1500));
    // Its S3 a second away, so the record is lost while the archive is on its way.
    const service = await startSlowUploadService(stack.env);
    const posting = fetch(`${service.url}/deploy`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ repoUrl }) }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error: { message: string } } }));
    // As soon as the upload has recorded its deployment, Redis loses it.
    const id = await waitUntil('the uploading record', async () => {
      for (const key of (await stack.redis.keys('deployment:*')).filter((k) => /^deployment:[a-z0-9]+$/.test(k))) {
        if ((await stack.redis.hGet(key, 'status')) === 'uploading') {
          await stack.redis.del(key);
          return key.slice('deployment:'.length);
        }
      }
      return undefined;
    }, 60_000);
    const res = await posting.finally(() => service.close());
    expect(res.status).toBe(503);
    expect(res.body.error.message).toBe(`the record of deployment ${id} was gone from Redis when its upload finished (Redis was reset or lost its data meanwhile); nothing was enqueued, try again`);
    expect(await count(`${storageKeys.source(id)}/`)).toBe(0);
  });

  it('removes sources without a record once older than an upload may take, and only those', async () => {
    // An upload that died (or failed while S3 could not clean up): objects, no record.
    for (const file of ['index.html', 'package.json']) await stack.storage.putText(`${storageKeys.source('orphanaaaaaa')}/${file}`, 'x');
    // Young: an upload could still be running.
    expect(await collectSources(stack)).toBe(0);
    expect(await count(`${storageKeys.source('orphanaaaaaa')}/`)).toBe(2);
    // Two hours on: the orphan goes, every deployment's source stays.
    expect(await collectSources(stack, Date.now() + 2 * 3600_000)).toBe(1);
    expect(await count(`${storageKeys.source('orphanaaaaaa')}/`)).toBe(0);
    for (const id of Object.values(ids)) expect(await count(`${storageKeys.source(id)}/`), id).toBeGreaterThan(0);
    // Again: nothing more (idempotent).
    expect(await collectSources(stack, Date.now() + 2 * 3600_000)).toBe(0);
  });

  it('keeps a closed pull request\'s alias closed: the close is in the project\'s copy', async () => {
    const repoUrl = await stack.repo('closed-pr', textSite('main'), { extraBranches: { 'pr-head': textSite('the pull request') } });
    expect((await call('POST', '/projects', { name: 'closed-pr', repoUrl })).status).toBe(201);
    await deployed('/projects/closed-pr/deployments', {});
    await deployed('/projects/closed-pr/deployments', { branch: 'pr-head' });
    expect((await siteAt(host('pr-head--closed-pr'))).body).toContain('the pull request');
    // What the pull_request hook's `closed` does.
    await stack.queue.projects.closeAlias('closed-pr', 'pr-head');
    expect((await siteAt(host('pr-head--closed-pr'))).status).toBe(404);
    await pass(); // writes the project's copy, which the close marked unsaved

    await stack.redis.flushAll();
    const report = (await pass())!.reconciled!;
    expect(report.projects.restored).toBeGreaterThanOrEqual(1);
    expect((await siteAt(host('closed-pr'))).body).toContain('main');
    expect((await siteAt(host('pr-head--closed-pr'))).status).toBe(404);
    expect((await call('GET', '/projects/closed-pr')).body.branches.map((b: { alias: string }) => b.alias)).toEqual(['main--closed-pr']);
  });

  it('never brings back a project deleted while its copy was still in S3', async () => {
    const repoUrl = await stack.repo('gone', textSite('gone'));
    expect((await call('POST', '/projects', { name: 'gone', repoUrl })).status).toBe(201);
    const copy = (await stack.storage.getText(backupKeys.project('gone'), 1 << 20))!;
    expect((await call('DELETE', '/projects/gone')).status).toBe(204);
    // As if the copy's removal had not happened yet (or failed): the copy is there, the change pending.
    await stack.storage.putText(backupKeys.project('gone'), copy, 'application/json');
    await stack.redis.hIncrBy('projects:unsaved', 'gone', 1);
    const { reconcile } = await import('@slipway/shared');
    const report = await reconcile({ redis: stack.redis, storage: stack.storage, projects: stack.queue.projects });
    expect(report.projects.restored).toBe(0);
    expect((await call('GET', '/projects/gone')).status).toBe(404);
    // The janitor then finishes the pending change: the stale copy goes.
    expect((await pass())!.projectsSaved).toBe(1);
    expect(await stack.storage.getText(backupKeys.project('gone'), 1 << 20)).toBeNull();
  });

  it('writes a project copy a failed save left behind on the next pass', async () => {
    // Marked changed, copy removed by hand (as if S3 refused the write).
    await stack.storage.deletePrefix(backupKeys.project('lost'));
    expect((await call('PATCH', '/projects/lost', { nodeVersion: '22' })).status).toBe(200);
    await stack.storage.deletePrefix(backupKeys.project('lost'));
    await stack.redis.hIncrBy('projects:unsaved', 'lost', 1);
    const result = (await pass())!;
    expect(result.projectsSaved).toBe(1);
    const copy = JSON.parse((await stack.storage.getText(backupKeys.project('lost'), 1 << 20))!);
    expect(copy.fields).toMatchObject({ name: 'lost', nodeVersion: '22' });
    expect(copy.fields.hookSecret).toBeUndefined();
    expect(copy.envNames).toEqual([]);
    expect((await pass())!.projectsSaved).toBe(0);
  });
});

// Every orphan has a collector: after each crash or outage that leaves something behind, one janitor
// pass (or the next process to start) removes it, and nothing that is still wanted: an upload-service
// SIGKILLed mid-upload (its clone folder; a source it finished storing), S3 cut during an upload (the
// source is one archive, stored whole or not at all), a build whose removal failed.
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import getPort from 'get-port';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { isDeploymentId, recordKey, storageKeys } from '@slipway/shared';
import { janitorPass } from '../deploy-service/src/retention/janitor';
import { manyFiles, staticSite } from './harness/fixtures';
import { startStackOn, type Stack } from './harness/stack';
import { startLossyProxy, type LossyProxy } from './harness/lossy-proxy';
import { startSlowUploadService } from './harness/upload-process';
import { waitUntil } from './harness/worker-process';

let stack: Stack;
/** A proxy in front of the run's S3 server, which a test can cut (the server itself is never killed mid-write). */
let s3: LossyProxy;
beforeAll(async () => {
  s3 = await startLossyProxy(Number(new URL(inject('s3Endpoint')).port));
  const s3Endpoint = `http://127.0.0.1:${new URL(s3.url).port}`;
  stack = await startStackOn({ s3Endpoint, gitUrl: inject('gitUrl'), gitRoot: inject('gitRoot'), tmpRoot: inject('tmpRoot') }, { env: { JANITOR_INTERVAL_SECONDS: '86400', UPLOAD_CONCURRENCY: '2' } });
});
afterAll(async () => {
  await stack?.close();
  await s3?.close();
});

const logger = pino({ level: 'silent' });
const HOURS_LATER = () => Date.now() + 2 * 3600_000;
const pass = (now?: number) => waitUntil('the janitor lock', async () => (await janitorPass({ ...stack, projects: stack.queue.projects, logger }, now)) ?? undefined);

async function count(prefix: string): Promise<number> {
  let n = 0;
  for await (const _ of stack.storage.list(prefix)) n++;
  return n;
}

/** S3 prefixes under source/ and dist/ whose deployment has no record, and temp folders of dead processes. */
async function orphans(): Promise<string[]> {
  const found: string[] = [];
  for (const top of ['source/', 'dist/']) {
    for await (const id of stack.storage.listFolders(top)) {
      if (isDeploymentId(id) && (await stack.redis.exists(recordKey(id))) === 0) found.push(`${top}${id}/`);
    }
  }
  for (const name of await readdir(stack.config.workDir!)) if (/^slipway-(clone|build)-/.test(name)) found.push(name);
  return found;
}

function uploadService(port: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'upload-service/src/main.ts'], {
    env: { ...stack.env, PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'silent' },
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return { child, exited, url: `http://127.0.0.1:${port}` };
}

/** The id of the first deployment seen `uploading`, once its archive is on its way to `service`'s far S3. */
const uploading = async (service: { archiveOnItsWay(id: string): Promise<unknown> }) => {
  const id = await waitUntil(
    'an upload under way',
    async () => {
      for (const key of (await stack.redis.keys('deployment:*')).filter((k) => /^deployment:[a-z0-9]+$/.test(k))) {
        if ((await stack.redis.hGet(key, 'status')) === 'uploading') return key.slice('deployment:'.length);
      }
      return undefined;
    },
    60_000,
  );
  await service.archiveOnItsWay(id);
  return id;
};

describe('orphans', () => {
  it('an upload-service SIGKILLed mid-upload: nothing half-stored; a finished source goes once its record has expired, its clone folder when the next one starts', { timeout: 120_000 }, async () => {
    const repoUrl = await stack.repo('killed-upload', manyFiles(1500));
    const dying = await startSlowUploadService(stack.env);
    const request = fetch(`${dying.url}/deploy`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ repoUrl }) }).catch(() => null);
    const id = await uploading(dying);
    dying.child.kill('SIGKILL');
    await dying.exited;
    await request;
    await dying.close();
    expect(await stack.redis.ttl(recordKey(id))).toBeGreaterThan(0); // it would expire within the hour
    expect((await orphans()).filter((o) => o.startsWith(`slipway-clone-${dying.child.pid}-`))).toHaveLength(1);
    // The archive is stored whole or not at all: killed on its way, nothing of it is in S3.
    expect(await count(`${storageKeys.source(id)}/`)).toBe(0);

    // Killed just after its upload instead, it would have left the whole archive: once the record has
    // expired (here: removed by hand), the next pass removes it.
    await stack.storage.putText(storageKeys.sourceArchive(id), 'an archive');
    await stack.redis.del(recordKey(id));
    expect((await pass()).sourcesRemoved).toBe(0); // young: an upload could still be running
    expect((await pass(HOURS_LATER())).sourcesRemoved).toBe(1);
    expect(await count(`${storageKeys.source(id)}/`)).toBe(0);
    const next = uploadService(await getPort());
    try {
      await waitUntil('the clone folder removed', async () => ((await orphans()).some((o) => o.startsWith('slipway-clone-')) ? undefined : true), 20_000);
    } finally {
      next.child.kill('SIGKILL');
      await next.exited;
    }
    expect(await orphans()).toEqual([]);
  });

  it('S3 cut during an upload: 503, nothing enqueued, nothing stored', { timeout: 120_000 }, async () => {
    const repoUrl = await stack.repo('cut-upload', manyFiles(1500));
    const service = await startSlowUploadService(stack.env);
    try {
      const posting = fetch(`${service.url}/deploy`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ repoUrl }) });
      const id = await uploading(service);
      await service.cuttable.cut();
      const res = await posting;
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { message: string } }).error.message).toBe('object storage (S3) is unavailable (ECONNREFUSED); nothing was enqueued, try again shortly');
      await service.cuttable.mend();
      expect(await stack.redis.exists(recordKey(id))).toBe(0);
      expect(await count(`${storageKeys.source(id)}/`)).toBe(0);
      expect((await pass(HOURS_LATER())).sourcesRemoved).toBe(0);
      expect(await orphans()).toEqual([]);
    } finally {
      await service.close();
    }
  });

  it('a build whose removal failed is removed by the next pass, unless it went live after all', async () => {
    const id = await stack.deploy({ repoUrl: await stack.repo('unremoved', staticSite()) });
    const record = await stack.waitFor(id);
    expect(record.status).toBe('deployed');
    const live = record.liveBuild!;
    // What a refused settle left while S3 was away, and a "failed" removal of the build that is live.
    for (const key of ['index.html', 'about/index.html']) await stack.storage.putText(`${storageKeys.build(id, 'deadbuild01')}/${key}`, 'never live');
    await stack.storage.putText(`dist/${id}/deadbuild01.meta/manifest.json`, '{}');
    await stack.queue.noteUnremoved(id, 'deadbuild01');
    await stack.queue.noteUnremoved(id, live);
    // This pass, or the stack's worker's own first one (5 s after it starts) if it came first: what
    // counts is what is left after it, not which pass removed it.
    await pass();
    expect(await count(`dist/${id}/deadbuild01`)).toBe(0);
    expect((await stack.site(id, '/')).status).toBe(200);
    expect(await stack.queue.unremoved(10)).toEqual([]);
    expect(await orphans()).toEqual([]);
  });
});

// Nothing lost, nothing stuck: worker processes killed or stopped mid-build, garbage on the list.
import { readdir } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { slowBuild, staticSite } from './harness/fixtures';
import { startStack, type Stack } from './harness/stack';
import { spawnWorkerProcess, waitUntil, type WorkerProcess } from './harness/worker-process';

const FAST_RECOVERY = { HEARTBEAT_TTL_SECONDS: '2', REAPER_INTERVAL_SECONDS: '1', RETRY_BASE_MS: '200', SHUTDOWN_GRACE_SECONDS: '1' };

let stack: Stack | undefined;
const processes: WorkerProcess[] = [];
afterEach(async () => {
  await Promise.all(processes.splice(0).map((p) => p.kill('SIGKILL')));
  await stack?.close();
  stack = undefined;
});

function spawnWorker(): WorkerProcess {
  const worker = spawnWorkerProcess(stack!.env);
  processes.push(worker);
  return worker;
}

describe('crash recovery', () => {
  it('a worker killed with SIGKILL mid-build loses no deployment: another worker recovers and deploys it', async () => {
    stack = await startStack({ workers: 0, env: FAST_RECOVERY });
    const doomed = spawnWorker();
    await doomed.ready();
    const id = await stack.deploy({ repoUrl: await stack.repo('slow', slowBuild(3000)) });
    const building = await stack.waitFor(id, ['building']);
    expect(building.worker).toContain(`-${doomed.pid}-`);

    const folder = `slipway-build-${id}-${doomed.pid}-`;
    await waitUntil('its build folder', async () => ((await readdir(stack!.config.workDir!)).some((n) => n.startsWith(folder)) ? true : undefined));
    await doomed.kill('SIGKILL');
    // The killed worker's build folder is left (and its disk mounted); the next worker removes it at start.
    expect((await readdir(stack.config.workDir!)).filter((n) => n.startsWith(folder))).toHaveLength(1);
    const rescuer = spawnWorker();
    await rescuer.ready();
    expect((await readdir(stack.config.workDir!)).filter((n) => n.startsWith(folder))).toEqual([]);
    expect(rescuer.logs.some((l) => l.msg === 'removed the build folders of workers that are gone' && l.folders === 1)).toBe(true);
    const record = await stack.waitFor(id);
    expect(record.status, record.error).toBe('deployed');
    expect(record.attempts).toBe(2);
    expect(record.worker).toContain(`-${rescuer.pid}-`);
    // Recovered by the rescuer's reaper (after one TTL connected, plus one interval), not by luck; how
    // long that takes is the README's arithmetic, not a timed assertion on a shared machine.
    expect(rescuer.logs.some((l) => l.msg === 'recovered the deployments of workers that stopped responding' && l.requeued === 1)).toBe(true);
    expect((await stack.site(id, '/')).body.toString()).toBe('<h1>slow build</h1>');
    expect(await stack.queue.stats()).toMatchObject({ waiting: 0, processing: 0, delayed: 0, dead: 0 });
  });

  it('SIGTERM during a build with a short grace puts the id back on the list, and a second worker finishes it', async () => {
    stack = await startStack({ workers: 0, env: FAST_RECOVERY });
    const first = spawnWorker();
    await first.ready();
    const id = await stack.deploy({ repoUrl: await stack.repo('slow-term', slowBuild(20_000)) });
    await stack.waitFor(id, ['building']);

    const exit = await first.kill('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    const released = await stack.queue.get(id);
    expect(released).toMatchObject({ status: 'queued', attempts: 0 });
    expect(await stack.redis.lRange('build-queue', 0, -1)).toEqual([id]);

    // The second worker runs it to the end; a shorter build proves it is this worker's own run.
    await stack.redis.hSet(`deployment:${id}`, 'buildCommand', JSON.stringify(['node', '-e', "require('fs').mkdirSync('dist');require('fs').writeFileSync('dist/index.html','second')"]));
    const second = spawnWorker();
    const record = await stack.waitFor(id);
    expect(record.status, record.error).toBe('deployed');
    expect(record.attempts).toBe(1);
    expect(record.worker).toContain(`-${second.pid}-`);
    const log = await stack.get(`/deployments/${id}/logs`);
    expect(log.body.lines).toContain('[slipway] worker stopping; the deployment goes back to the queue');
  });

  it('garbage ids pushed by hand land in the dead list with a reason, and the worker goes on', async () => {
    stack = await startStack({ workers: 1, env: FAST_RECOVERY });
    await stack.redis.lPush('build-queue', ['junk', 'deployment:evil', '']);
    await stack.redis.hSet('deployment:unreadable0', { id: 'unreadable0', status: 'queued', createdAt: 'x' });
    await stack.redis.lPush('build-queue', 'unreadable0');
    const id = await stack.deploy({ repoUrl: await stack.repo('after-junk', staticSite()) });
    expect((await stack.waitFor(id)).status).toBe('deployed');

    const dead = await waitUntil('four dead ids', async () => {
      const list = await stack!.queue.dead();
      return list.length === 4 ? list : undefined;
    });
    expect(dead).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: 'junk', reason: 'no deployment record for this id' }),
        expect.objectContaining({ id: 'deployment:evil', reason: 'no deployment record for this id' }),
        expect.objectContaining({ id: '', reason: 'no deployment record for this id' }),
        expect.objectContaining({ id: 'unreadable0', reason: 'the deployment record is unreadable' }),
      ]),
    );
    expect(await stack.redis.hGet('deployment:unreadable0', 'status')).toBe('failed');
    expect(await stack.queue.stats()).toMatchObject({ waiting: 0, processing: 0, dead: 4 });
    expect((await stack.get('/queue')).body).toMatchObject({ dead: 4 });
  });
});

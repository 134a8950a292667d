// The deployment panel: one deployment's status, its site, its cancel and redeploy buttons and its
// live log, followed until it is final. The home form's deploy and the deployment view both show it.
import { showDeliveries } from './notify';
import { ApiError, call, type Deployment } from './api';
import { $, act, enc, say, sleep, when } from './dom';
import { state } from './state';

const FINAL = ['deployed', 'failed', 'canceled', 'skipped'];
/** Bumped when the panel follows another deployment, or none: an older loop stops. */
let watching = 0;
let watchedId: string | null = null;

// Build logs keep the tools' colours as data; the panel shows the text without the escape codes.
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]/g;

export function stopWatch(): void {
  watching++;
  watchedId = null;
}

export function resetPanel(id: string | null): void {
  $('status').textContent = id ? id + ': …' : '';
  for (const e of ['d-meta', 'failure', 'log', 'd-msg', 'd-deliveries']) $(e).textContent = '';
  $('site').hidden = true;
  $('d-cancel').hidden = true;
  $('d-redeploy').hidden = true;
  $('d-link').hidden = !id || state.current === 'deployment';
  if (id) $<HTMLAnchorElement>('d-link').href = '#/deployments/' + enc(id);
}

/** Follows a deployment: its record and new log lines every second until it is final. */
export async function watch(id: string): Promise<void> {
  const me = ++watching;
  watchedId = id;
  resetPanel(id);
  $('panel').hidden = false;
  let cursor: string | null = null;
  for (;;) {
    let record: Deployment;
    try {
      // The record first: once it reads final, the log read after it holds every line.
      record = await call<Deployment>('GET', '/deployments/' + enc(id));
      for (;;) {
        const log: { lines: string[]; cursor: string } = await call('GET', '/deployments/' + enc(id) + '/logs' + (cursor ? '?after=' + enc(cursor) : ''));
        if (me !== watching) return;
        if (log.cursor !== '-') cursor = log.cursor;
        if (log.lines.length) {
          $('log').textContent += log.lines.join('\n').replace(ANSI, '') + '\n';
          $('log').scrollTop = 1e9;
        }
        if (log.lines.length < 1000) break;
      }
    } catch (err) {
      if (me !== watching) return;
      say('d-msg', (err as Error).message, true);
      if (err instanceof ApiError && (err.status === 401 || err.status === 404)) return;
      await sleep(2000);
      continue;
    }
    showRecord(record);
    // What the forge and the webhooks were told (a failure to read it is not the deployment's).
    if (record.project) void showDeliveries(id).catch(() => undefined);
    if (FINAL.includes(record.status)) return;
    await sleep(1000);
    if (me !== watching) return;
  }
}

function showRecord(r: Deployment): void {
  $('status').textContent = r.id + ': ' + r.status + (r.cancelRequested ? ' (canceling)' : '');
  $('d-meta').textContent = [r.repoUrl, r.branch ? 'branch ' + r.branch : '', r.commit ? 'commit ' + r.commit.slice(0, 7) : '', 'created ' + when(r.createdAt)].filter(Boolean).join(' · ');
  $('failure').textContent = r.status === 'failed' || r.status === 'canceled' ? r.error || '' : r.status === 'skipped' ? r.skip?.message || '' : '';
  if (r.status === 'deployed' || r.liveBuild) {
    const a = $('site').querySelector('a')!;
    a.href = r.url;
    a.textContent = 'Open ' + r.url;
    $('site').hidden = false;
  }
  $('d-cancel').hidden = r.status !== 'queued' && r.status !== 'building';
  // A skipped deployment has no source of its own to build again.
  $('d-redeploy').hidden = !FINAL.includes(r.status) || r.status === 'skipped';
  if (state.current === 'deployment' && r.project) {
    $<HTMLAnchorElement>('d-back').href = '#/projects/' + enc(r.project);
    $('d-back').textContent = '← ' + r.project;
  }
}

export function startPanel(): void {
  $('d-cancel').addEventListener('click', () =>
    act($<HTMLButtonElement>('d-cancel'), 'd-msg', async () => {
      const answer = await call<{ status: string }>('POST', '/deployments/' + enc(watchedId!) + '/cancel');
      return answer.status === 'canceling' ? 'Canceling: the build stops within a second.' : '';
    }),
  );
  $('d-redeploy').addEventListener('click', () =>
    act($<HTMLButtonElement>('d-redeploy'), 'd-msg', async () => {
      const id = watchedId!;
      await call('POST', '/deployments/' + enc(id) + '/redeploy');
      void watch(id);
    }),
  );
}

/** The deployment view: the panel for one deployment. */
export function showDeployment(id: string): void {
  $('deployment-view').hidden = false;
  document.title = id + ' · Slipway';
  $('d-title').textContent = 'Deployment ' + id;
  $<HTMLAnchorElement>('d-back').href = '#/';
  $('d-back').textContent = '← All projects';
  $('deployment-slot').append($('panel'));
  void watch(id);
}

export { FINAL };

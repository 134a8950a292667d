// Following a deployment: polling its record until it ends (with progress on stderr), and printing
// its build log, optionally until the build is over.
import { setTimeout as sleep } from 'node:timers/promises';
import { FINAL_STATUSES, type Api, type Deployment, type LogPage } from './api';
import { CliError, EXIT } from './errors';
import type { Progress } from './progress';

const POLL_MS = 1000;
/** How long the API may be away (a restart, a blip) before a wait gives up. */
const OUTAGE_GRACE_MS = 30_000;

/** Polls GET /deployments/:id until the deployment is deployed, failed or canceled. */
export async function waitForDeployment(api: Api, id: string, progress: Progress): Promise<Deployment> {
  let outageSince: number | null = null;
  try {
    for (;;) {
      let record: Deployment;
      try {
        record = await api.get<Deployment>(`/deployments/${encodeURIComponent(id)}`);
        if (outageSince !== null) progress.line(`the API answers again after ${Math.round((Date.now() - outageSince) / 1000)} s`);
        outageSince = null;
      } catch (err) {
        if (!(err instanceof CliError) || err.exitCode !== EXIT.unreachable) throw err;
        if (outageSince === null) {
          outageSince = Date.now();
          progress.line(`${err.message}; still trying for ${OUTAGE_GRACE_MS / 1000} s`);
        } else if (Date.now() - outageSince > OUTAGE_GRACE_MS) {
          throw err;
        }
        await sleep(POLL_MS);
        continue;
      }
      progress.update(record.status);
      if (FINAL_STATUSES.includes(record.status)) return record;
      await sleep(POLL_MS);
    }
  } finally {
    progress.stop();
  }
}

/**
 * Prints a deployment's log lines on stdout. With `follow`, keeps polling from the last cursor until
 * the deployment has ended and no lines are left, and returns its final record; otherwise null.
 */
export async function printLog(api: Api, id: string, follow: boolean): Promise<Deployment | null> {
  const path = `/deployments/${encodeURIComponent(id)}`;
  let cursor: string | undefined;
  for (;;) {
    // The record is read before the log: a status already final then means every line is written.
    const record = follow ? await api.get<Deployment>(path) : null;
    const page = await api.get<LogPage>(`${path}/logs${cursor ? `?after=${encodeURIComponent(cursor)}` : ''}`);
    for (const line of page.lines) process.stdout.write(`${line}\n`);
    cursor = page.cursor;
    // A page holds at most 1000 lines: only an empty one says there are no more for now.
    if (page.lines.length > 0) continue;
    if (!record || FINAL_STATUSES.includes(record.status)) return record;
    await sleep(POLL_MS);
  }
}

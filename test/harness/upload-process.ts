// An upload-service process of a test's own, whose S3 is `delayMs` away each way (so an upload is still
// under way when the test acts) behind a proxy the test can cut.
import { spawn } from 'node:child_process';
import getPort from 'get-port';
import { startLatencyProxy } from './latency-proxy';
import { startLossyProxy } from './lossy-proxy';
import { waitUntil } from './worker-process';

export async function startSlowUploadService(env: Record<string, string>, delayMs = 1000) {
  const far = await startLatencyProxy(env.S3_ENDPOINT!, delayMs);
  const cuttable = await startLossyProxy(Number(new URL(far.endpoint).port));
  const port = await getPort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'upload-service/src/main.ts'], {
    env: { ...env, S3_ENDPOINT: `http://127.0.0.1:${new URL(cuttable.url).port}`, PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'silent' },
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  await waitUntil('the API to listen', async () => ((await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) ? true : undefined), 20_000);
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    await cuttable.close();
    await far.close();
  };
  /** Resolves once the archive of deployment `id` has reached the far S3: its upload is under way, held back there. */
  const archiveOnItsWay = (id: string) => waitUntil(`the archive of ${id} on its way`, async () => (far.seen.some((r) => r.startsWith('PUT ') && r.includes(`/source/${id}/source.tar.gz`)) ? true : undefined), 60_000);
  return { child, exited, url, cuttable, close, archiveOnItsWay };
}

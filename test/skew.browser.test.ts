// Skew protection in Chromium: a page loaded from one build lazy-loads a chunk after a new build,
// which renamed every chunk, went live on the same address. The old chunk still loads (from the build
// the site served before); HTML and other mutable paths come from the live build only; past the window
// the old chunk is gone.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skewProductionKey } from '@slipway/shared';
import { launchChromium } from './harness/browser';
import { startStack, type Stack } from './harness/stack';

let browser: Browser;
let stack: Stack;

/** A Vite-like build: an entry that lazy-loads a chunk, both named by their content's hash. */
function build(version: string, hashes: { app: string; chunk: string }, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'index.html': `<!doctype html><title>${version}</title><h1>${version}</h1><script type="module" src="/assets/app-${hashes.app}.js"></script>`,
    [`assets/app-${hashes.app}.js`]: `window.later = () => import('./chunk-${hashes.chunk}.js').then((m) => m.text);`,
    [`assets/chunk-${hashes.chunk}.js`]: `export const text = ${JSON.stringify(`chunk of ${version}`)};`,
    ...extra,
  };
}

async function deploy(files: Record<string, string>): Promise<string> {
  await stack.repo('skew-site', files);
  const res = await stack.post('/projects/skew/deployments', {});
  expect((await stack.waitFor(res.body.id, undefined, 120_000)).status).toBe('deployed');
  return res.body.id as string;
}

beforeAll(async () => {
  [browser, stack] = await Promise.all([
    launchChromium(),
    startStack(),
  ]);
  const repoUrl = await stack.repo('skew-site', build('one', { app: 'A1b2C3d4', chunk: 'Q1w2E3r4' }));
  expect((await stack.post('/projects', { name: 'skew', repoUrl })).status).toBe(201);
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

describe('skew protection', () => {
  it('a page open across a deploy still lazy-loads its own chunk; mutable paths come from the live build', { timeout: 240_000 }, async () => {
    const first = await deploy(build('one', { app: 'A1b2C3d4', chunk: 'Q1w2E3r4' }, { 'about.js': 'one' }));
    const page = await browser.newPage();
    const site = `http://skew.localhost:${stack.config.port}`;
    await page.goto(`${site}/`);
    expect(await page.textContent('h1')).toBe('one');
    await page.waitForFunction('typeof window.later === "function"');

    // The next build renames every chunk and drops about.js.
    await deploy(build('two', { app: 'Z9y8X7w6', chunk: 'P0o9I8u7' }));
    expect(await page.evaluate('window.later()')).toBe('chunk of one');
    const old = await page.evaluate(`fetch('/assets/chunk-Q1w2E3r4.js').then((r) => [r.status, r.headers.get('cache-control')])`);
    expect(old).toEqual([200, 'public, max-age=31536000, immutable']);
    // Not hashed: never from an earlier build.
    expect(await page.evaluate(`fetch('/about.js').then((r) => r.status)`)).toBe(404);
    // A new page is the new build, and its own chunk loads.
    await page.reload();
    expect(await page.textContent('h1')).toBe('two');
    await page.waitForFunction('typeof window.later === "function"');
    expect(await page.evaluate('window.later()')).toBe('chunk of two');
    // The deployment it replaced is kept by retention for the window.
    expect(Number(await stack.redis.hGet(`deployment:${first}`, 'skewUntil'))).toBeGreaterThan(Date.now() + 11 * 3_600_000);

    // Past the window (SKEW_PROTECTION_HOURS, 12), the old chunk is gone.
    await stack.redis.zAdd(skewProductionKey('skew'), { score: Date.now() - 13 * 3_600_000, value: `${first}/${(await stack.queue.get(first))!.liveBuild}` });
    expect(await page.evaluate(`fetch('/assets/chunk-Q1w2E3r4.js', { cache: 'no-store' }).then((r) => r.status)`)).toBe(404);
    await page.close();
  });
});

// In a real browser (Debian's Chromium, driven by playwright-core): a deployed site's page cannot
// make its visitor's browser change anything through the API, and the web page asks for the API
// token once, keeps it, and then deploys and shows the live log.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { staticSite } from './harness/fixtures';
import { startStack, type Stack } from './harness/stack';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'browser-test-token-0123456789';
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
});
afterAll(async () => {
  await browser?.close();
});

describe('a deployed site\'s page', () => {
  let stack: Stack;
  afterAll(async () => {
    await stack?.close();
  });

  it('cannot make the visitor\'s browser redeploy or cancel another deployment, even with no API tokens', async () => {
    stack = await startStack({ workers: 1 }); // no API_TOKENS: only the origin rule stands in the way
    const victim = await stack.deploy({ repoUrl: await stack.repo('victim-site', staticSite()) });
    expect((await stack.waitFor(victim)).status).toBe('deployed');
    const api = `http://localhost:${stack.config.port}`;
    const attacker = await stack.deploy({
      repoUrl: await stack.repo('attacker-site', {
        'index.html': `<!doctype html><title>attacker</title>
<form id="f" method="POST" action="${api}/deployments/${victim}/redeploy"></form>
<script>
(async () => {
  for (const action of ['redeploy', 'cancel']) {
    await fetch('${api}/deployments/${victim}/' + action, { method: 'POST', mode: 'no-cors' }).catch(() => {});
  }
  document.title = 'fetched';
  document.getElementById('f').submit();
})();
</script>`,
      }),
    });
    expect((await stack.waitFor(attacker)).status).toBe('deployed');

    const page = await browser.newPage();
    const answers: number[] = [];
    page.on('response', (res) => {
      if (res.url().startsWith(`${api}/deployments/`)) answers.push(res.status());
    });
    await page.goto(`http://${attacker}.localhost:${stack.config.port}/`);
    await page.waitForURL(`${api}/deployments/${victim}/redeploy`, { timeout: 15_000 }); // the form went through
    expect(await page.textContent('body')).toContain('FORBIDDEN');
    await page.close();

    expect(answers).toEqual([403, 403, 403]);
    expect(await stack.queue.get(victim)).toMatchObject({ status: 'deployed', attempts: 1 });
    expect(await stack.queue.stats()).toMatchObject({ waiting: 0, processing: 0 });
    // The same request without a browser's Origin goes through: it is the origin rule that held.
    expect((await stack.post(`/deployments/${victim}/redeploy`)).status).toBe(202);
  });
});

describe('the web page', () => {
  let stack: Stack;
  afterAll(async () => {
    await stack?.close();
  });

  it('asks for the API token once, keeps it, deploys, and shows the live log and the site link', async () => {
    stack = await startStack({ workers: 1, env: { API_TOKENS: TOKEN, PRIVATE_READS: '1' } });
    // A build that colours its output, as Vite and npm do.
    const repoUrl = await stack.repo('from-page', {
      'package.json': JSON.stringify({ name: 'coloured', private: true, scripts: { build: 'node build.js' } }),
      'build.js': `require('fs').mkdirSync('dist'); require('fs').writeFileSync('dist/index.html', '<h1>page</h1>');
console.log('\\u001b[32m✓\\u001b[39m built in \\u001b[1m12ms\\u001b[22m');`,
    });
    const page = await browser.newPage();
    await page.goto(`http://localhost:${stack.config.port}/`);
    expect(await page.isHidden('#auth')).toBe(true);

    await page.fill('input[name=repoUrl]', repoUrl);
    await page.click('#deploy button');
    await page.waitForSelector('#auth', { state: 'visible' });
    await page.screenshot({ path: path.join(inject('tmpRoot'), 'page-token.png') });
    await page.fill('#token', TOKEN);
    await page.click('#auth button');
    expect(await page.isHidden('#auth')).toBe(true);
    await page.click('#deploy button');
    await page.waitForSelector('#site:not([hidden])', { timeout: 30_000 });
    expect(await page.textContent('#status')).toMatch(/: deployed$/);
    const log = (await page.textContent('#log')) ?? '';
    expect(log).toContain('[slipway] published');
    expect(log).toContain('✓ built in 12ms'); // the colours kept as data in the log, not shown as codes
    expect(log).not.toMatch(/\u001b|\[3\dm/);
    const id = ((await page.textContent('#status')) ?? '').split(':')[0]!;
    expect((await stack.queue.readLog(id)).lines).toContain('\u001b[32m✓\u001b[39m built in \u001b[1m12ms\u001b[22m');
    await page.screenshot({ path: path.join(inject('tmpRoot'), 'page.png') });

    // A fresh visit keeps the token: no question this time.
    await page.reload();
    await page.fill('input[name=repoUrl]', repoUrl);
    await page.click('#deploy button');
    await page.waitForSelector('#status:text-matches(": (queued|building|deployed)")', { timeout: 30_000 });
    expect(await page.isHidden('#auth')).toBe(true);
    await page.close();
  });
});

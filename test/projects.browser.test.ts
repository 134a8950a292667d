// The web page's project views in a real browser (Debian's Chromium, driven by playwright-core):
// create a project, deploy production and follow its live log, deploy again, roll back from the
// history table, and find the same state again after a reload and through a deployment's deep link.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { textSite } from './harness/fixtures';
import { startStack, type Stack } from './harness/stack';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'projects-browser-token-0123456789';
let browser: Browser;
let stack: Stack;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  [browser, stack] = await Promise.all([
    chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    }),
    startStack({ workers: 1, env: { API_TOKENS: TOKEN, PRIVATE_READS: '1' } }),
  ]);
});
afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

const site = (text: string) => textSite(`<h1>${text}</h1>`);

/** What the browser gets at a site's address (Chromium resolves *.localhost to loopback). */
async function visit(url: string): Promise<string> {
  const other = await browser.newPage();
  await other.goto(url);
  const text = (await other.textContent('body')) ?? '';
  await other.close();
  return text.trim();
}

/** Clicks the project page's deploy button and follows the deployment view until it is deployed. */
async function deployFromProjectPage(page: Page): Promise<string> {
  await page.click('#p-deploy button:text("Deploy main")');
  await page.waitForURL(/#\/deployments\/[a-z0-9]+$/);
  const id = new URL(page.url()).hash.split('/')[2]!;
  await page.waitForSelector(`#status:text("${id}: deployed")`, { timeout: 120_000 });
  expect(await page.textContent('#log')).toContain('[slipway] published');
  expect(await page.getAttribute('#site a', 'href')).toBe(`http://${id}.localhost:${stack.config.port}/`);
  return id;
}

describe('the web page\'s project views', () => {
  it('create a project, deploy it twice, roll back from the history table, and keep the state across reloads and deep links', { timeout: 360_000 }, async () => {
    const repoUrl = await stack.repo('browser-shop', site('version one'));
    const base = `http://localhost:${stack.config.port}/`;
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await page.goto(`${base}#/`);
    // With PRIVATE_READS the project list needs the token; it says so without asking at once.
    await page.waitForSelector('#projects-note:text("The projects need the API token")');
    expect(await page.isHidden('#auth')).toBe(true);

    await page.fill('#new-project input[name=name]', 'shop');
    await page.fill('#new-project input[name=repoUrl]', repoUrl);
    await page.click('#new-project button');
    await page.waitForSelector('#auth', { state: 'visible' });
    await page.fill('#token', TOKEN);
    await page.click('#auth button');
    await page.click('#new-project button');
    await page.waitForURL(`${base}#/projects/shop`);
    await page.waitForSelector('#p-production:text("nothing deployed yet")');

    const first = await deployFromProjectPage(page);
    await page.click('#d-back:text("shop")');
    await page.waitForSelector(`#history tr[data-id="${first}"] .badge.production`);
    const production = `http://shop.localhost:${stack.config.port}/`;
    expect(await page.getAttribute('#p-production a', 'href')).toBe(production);
    expect(await visit(production)).toBe('version one');

    // The second version: the project page follows its build without a reload, polling while it runs.
    await stack.repo('browser-shop', site('version two'));
    await page.click('#p-deploy button');
    await page.waitForURL(/#\/deployments\//);
    const second = new URL(page.url()).hash.split('/')[2]!;
    await page.click('#d-back:text("shop")');
    await page.waitForSelector(`#history tr[data-id="${second}"]`);
    await page.waitForSelector(`#history tr[data-id="${second}"] .badge.production`, { timeout: 30_000 });
    expect(await visit(production)).toBe('version two');
    expect(await page.$$eval('#history tbody tr', (rows) => rows.map((r) => r.getAttribute('data-id')))).toEqual([second, first]);
    expect(await page.isVisible(`#history tr[data-id="${second}"] button:text("Rollback to this")`)).toBe(false);

    await page.click(`#history tr[data-id="${first}"] button:text("Rollback to this")`);
    await page.waitForSelector('#p-pinned:visible');
    expect(await page.textContent('#p-msg')).toMatch(/production now serves .* until you promote/);
    await page.waitForSelector(`#history tr[data-id="${first}"] .badge.production`);
    expect(await visit(production)).toBe('version one');
    await page.screenshot({ path: '/tmp/slipway-project-page.png', fullPage: true });

    await page.click('a:text("All projects")');
    await page.waitForSelector('#projects tr[data-name="shop"] .badge:text("pinned")');
    await page.waitForSelector('#projects tr[data-name="shop"] a:text("deployed")');
    await page.screenshot({ path: '/tmp/slipway-home-page.png', fullPage: true });
    await page.fill('#new-project input[name=name]', 'shop');
    await page.fill('#new-project input[name=repoUrl]', repoUrl);
    await page.click('#new-project button');
    await page.waitForSelector('#new-project-msg.error:text("a project named shop exists already")'); // the API's message
    await page.goBack();

    // A reload and a deep link show the same state.
    await page.reload();
    await page.waitForSelector(`#history tr[data-id="${first}"] .badge.production`);
    expect(await page.textContent('#p-pinned')).toContain('new production builds will not move it until you promote');
    expect(await page.isVisible('#p-pinned')).toBe(true);
    expect(await page.isVisible(`#history tr[data-id="${second}"] button:text("Promote")`)).toBe(true);

    const deep = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await deep.goto(`${base}#/deployments/${second}`); // a fresh page without the token: it asks
    await deep.waitForSelector('#auth', { state: 'visible' });
    await deep.fill('#token', TOKEN);
    await deep.click('#auth button');
    await deep.waitForSelector(`#status:text("${second}: deployed")`);
    expect(await deep.textContent('#log')).toContain('[slipway] published');
    expect(await deep.getAttribute('#d-back', 'href')).toBe('#/projects/shop');
    expect(await deep.isVisible('#d-redeploy')).toBe(true);
    await deep.screenshot({ path: '/tmp/slipway-deployment-page.png', fullPage: true });
    await deep.close();
    await page.close();
  });

  it('sets and removes env variables from the project page: the value is sent once, cleared, and never shown', async () => {
    const repoUrl = await stack.repo('browser-env', site('env'));
    const made = await fetch(`${stack.api}/projects`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'browser-env', repoUrl }) });
    expect(made.status).toBe(201);
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await page.goto(`http://localhost:${stack.config.port}/#/projects/browser-env`);
    await page.waitForSelector('#auth', { state: 'visible' });
    await page.fill('#token', TOKEN);
    await page.click('#auth button');
    await page.waitForSelector('#p-env:has-text("No environment variables.")', { state: 'attached' });
    await page.click('#p-secrets summary');
    const secret = 'pk_live_browser-value-7731';
    await page.fill('#p-env-set input[name=name]', 'PAYMENT_KEY');
    await page.fill('#p-env-set input[name=value]', secret);
    await page.selectOption('#p-env-set select[name=target]', 'production');
    await page.click('#p-env-set button');
    await page.waitForSelector('#p-env td:text("PAYMENT_KEY")');
    expect(await page.textContent('#p-secrets-msg')).toContain('set PAYMENT_KEY');
    expect(await page.inputValue('#p-env-set input[name=value]')).toBe('');
    expect(await page.content()).not.toContain(secret);
    expect(await page.textContent('#p-env')).toMatch(/PAYMENT_KEY\s*production/);
    expect(await page.textContent('#p-access')).toContain('Deploy key: none');
    const listed = await (await fetch(`${stack.api}/projects/browser-env/env`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
    expect(listed).toMatchObject({ version: 1, production: ['PAYMENT_KEY'], preview: [] });
    await page.click('#p-env tr:has-text("PAYMENT_KEY") button:text("Remove")');
    await page.waitForSelector('#p-env:has-text("No environment variables.")');

    // The forge token: sent once from its password field, then only "set" is shown.
    await page.click('#p-notify summary');
    expect(await page.textContent('#p-forge')).toContain('Forge token: none');
    expect(await page.textContent('#p-deliveries')).toContain('None yet.');
    const forgeToken = 'ghp_browserForgeToken9931';
    await page.fill('#p-forge-set input[name=token]', forgeToken);
    await page.fill('#p-forge-set input[name=apiUrl]', 'https://github.example.com/api/v3');
    await page.click('#p-forge-set button');
    await page.waitForSelector('#p-forge:has-text("Forge token: set, for https://github.example.com/api/v3")');
    expect(await page.inputValue('#p-forge-set input[name=token]')).toBe('');
    expect(await page.content()).not.toContain(forgeToken);
    const shown = (await (await fetch(`${stack.api}/projects/browser-env`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { forge: unknown };
    expect(shown.forge).toEqual({ apiUrl: 'https://github.example.com/api/v3', set: true });
    await page.close();
  });
});

// The `slipway` command line, run as a child process (the real bin) against a real stack with an API
// token: deploy (a URL, a project, a local checkout's pushed commit), logs, listings, rollback,
// promote, and the exit codes scripts rely on.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import getPort from 'get-port';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { textSite } from './harness/fixtures';
import { startStack, type Stack } from './harness/stack';

const BIN = path.resolve(import.meta.dirname, '../cli/bin/slipway.mjs');
const TOKEN = 'cli-test-token-0123456789abcdef';
const run = promisify(execFile);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { API_TOKENS: TOKEN } });
});
afterAll(async () => {
  await stack?.close();
});


/** The environment without GIT_* (set when tests run from a git hook; they would redirect git). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GIT_') && !k.startsWith('SLIPWAY_')));
  return { ...env, ...extra };
}

/** Runs the real bin; asynchronously, since the API and the workers it talks to run in this process. */
async function slipway(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: cleanEnv({ SLIPWAY_URL: stack.api, SLIPWAY_TOKEN: TOKEN, ...env }), timeout: 90_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const { code, stdout, stderr } = err as { code: unknown; stdout: string; stderr: string };
    if (typeof code !== 'number') throw err;
    return { code, stdout, stderr };
  }
}

/** The bin with `input` on its stdin. */
function slipwayWithStdin(args: string[], input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv({ SLIPWAY_URL: stack.api, SLIPWAY_TOKEN: TOKEN }), timeout: 90_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.com', ...args], { cwd, env: cleanEnv() });
  return stdout.trim();
}

async function api(method: string, urlPath: string, body?: unknown) {
  const res = await fetch(stack.api + urlPath, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json().catch(() => null)) as any };
}

/** The deployment id in a site URL (`http://<id>.localhost:PORT/`). */
const idOf = (url: string) => new URL(url.trim()).hostname.split('.')[0]!;

async function served(label: string): Promise<string> {
  const res = await stack.site(label, '/');
  return res.status === 200 ? res.body.toString() : `HTTP ${res.status}`;
}

describe('slipway', () => {
  const ids = {} as Record<'prod' | 'preview' | 'local' | 'plain', string>;

  it('deploys a repository URL: progress on stderr, only the site URL on stdout, exit 0', async () => {
    const repoUrl = await stack.repo('cli-plain', textSite('plain'));
    const res = await slipway(['deploy', repoUrl]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^http:\/\/[a-z0-9]+\.localhost:\d+\/\n$/);
    ids.plain = idOf(res.stdout);
    // Not a terminal: one line per status change.
    expect(res.stderr).toMatch(new RegExp(`^${ids.plain} queued$`, 'm'));
    expect(res.stderr).toMatch(new RegExp(`^${ids.plain} deployed`, 'm'));
    expect(await served(ids.plain)).toBe('plain');
  });

  it('exits 1 with the error on stderr when the build fails', async () => {
    const res = await slipway(['deploy', await stack.repo('cli-broken', textSite('', true))]);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(/^slipway: deployment [a-z0-9]+ failed: .*the build broke/m);
  });

  it('deploy --no-wait prints the id; logs --follow prints the build log as it comes and ends with the build', async () => {
    const queued = await slipway(['deploy', '--no-wait', await stack.repo('cli-logged', textSite('logged'))]);
    expect(queued.code, queued.stderr).toBe(0);
    const id = queued.stdout.trim();
    expect(id).toMatch(/^[a-z0-9]{10,}$/);
    const followed = await slipway(['logs', id, '--follow']);
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stdout).toContain('building logged');
    expect((await stack.queue.get(id))?.status).toBe('deployed');
    // Without --follow: the whole log once.
    expect((await slipway(['logs', id])).stdout).toBe(followed.stdout);
  });

  it('deploys a project: --prod builds the production branch, --branch a preview; --prod with another branch is refused', async () => {
    const repoUrl = await stack.repo('cli-shop', textSite('v1'), { extraBranches: { preview: textSite('preview') } });
    expect((await api('POST', '/projects', { name: 'cli-shop', repoUrl, productionBranch: 'main' })).status).toBe(201);

    const prod = await slipway(['deploy', '--project', 'cli-shop', '--prod']);
    expect(prod.code, prod.stderr).toBe(0);
    ids.prod = idOf(prod.stdout);
    expect(prod.stderr).toMatch(/^production: http:\/\/cli-shop\.localhost:\d+\/$/m);
    expect((await api('GET', '/projects/cli-shop')).body.production.id).toBe(ids.prod);
    expect(await served('cli-shop')).toBe('v1');

    const preview = await slipway(['deploy', '--project', 'cli-shop', '--branch', 'preview']);
    expect(preview.code, preview.stderr).toBe(0);
    ids.preview = idOf(preview.stdout);
    expect(await served(ids.preview)).toBe('preview');
    expect((await api('GET', '/projects/cli-shop')).body.production.id).toBe(ids.prod);

    const refused = await slipway(['deploy', '--project', 'cli-shop', '--prod', '--branch', 'preview']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/production branch, main; --branch preview names another/);
  });

  it('deploys the checked-out commit of a local checkout, not the newer tip; warns of uncommitted changes; an unpushed commit is refused', async () => {
    const repoUrl = await stack.repo('cli-shop', textSite('v1'), { extraBranches: { preview: textSite('preview') } });
    const dir = await mkdtemp(path.join(inject('tmpRoot'), 'cli-checkout-'));
    await git(dir, 'clone', '--quiet', repoUrl, '.');
    // The git server takes no pushes over HTTP: push to its folder, and keep origin's refs current.
    await git(dir, 'remote', 'set-url', '--push', 'origin', path.join(inject('gitRoot'), new URL(repoUrl).pathname));
    const commit = async (text: string) => {
      for (const [name, content] of Object.entries(textSite(text))) await writeFile(path.join(dir, name), content);
      await git(dir, 'commit', '--quiet', '-am', text);
      await git(dir, 'push', '--quiet', 'origin', 'main');
      return git(dir, 'rev-parse', 'HEAD');
    };
    const checkedOut = await commit('from the checkout');
    await commit('pushed later, not checked out');
    await git(dir, 'reset', '--quiet', '--hard', 'HEAD~1');
    await writeFile(path.join(dir, 'build.js'), 'not committed');

    const res = await slipway(['deploy', dir, '--project', 'cli-shop']);
    expect(res.stderr).toMatch(/warning: .* has uncommitted changes: they are not deployed, only pushed commits are/);
    expect(res.code, res.stderr).toBe(0);
    ids.local = idOf(res.stdout);
    expect((await api('GET', `/deployments/${ids.local}`)).body).toMatchObject({ branch: 'main', commit: checkedOut, status: 'deployed' });
    expect(await served(ids.local)).toBe('from the checkout');
    expect(await served('cli-shop')).toBe('from the checkout');

    await git(dir, 'commit', '--quiet', '-am', 'never pushed');
    const unpushed = await slipway(['deploy', dir, '--project', 'cli-shop']);
    expect(unpushed.stderr).toMatch(/warning: [0-9a-f]{7} is on no branch of origin that this checkout knows of: git push first/);
    expect(unpushed.code).toBe(3);
    expect(unpushed.stderr).toMatch(/^slipway: .*commit [0-9a-f]{40} could not be fetched/m);
  });

  it('ls and projects list what was deployed, with the production marker and the branch alias', async () => {
    const all = await slipway(['ls']);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout.split('\n')[0]).toMatch(/^ID +PROJECT +STATUS +BRANCH +COMMIT +AGE +URL$/);
    for (const id of Object.values(ids)) expect(all.stdout).toContain(id);
    expect(all.stdout).toMatch(/ failed /);

    const shop = await slipway(['ls', '--project', 'cli-shop']);
    const line = (id: string) => shop.stdout.split('\n').find((l) => l.startsWith(id)) ?? '';
    expect(line(ids.local)).toMatch(/ deployed +main +[0-9a-f]{7} +\d+[smh] +http:\S+ +production main--cli-shop$/);
    expect(line(ids.prod)).toMatch(/ deployed +main .* http:\S+$/);
    expect(line(ids.preview)).toMatch(/ preview .* preview--cli-shop$/);
    expect(shop.stdout).not.toContain(ids.plain);

    const json = JSON.parse((await slipway(['ls', '--project', 'cli-shop', '--limit', '2', '--json'])).stdout);
    expect(json.map((d: { id: string }) => d.id)).toEqual([ids.local, ids.preview]);

    const projects = await slipway(['projects']);
    expect(projects.code, projects.stderr).toBe(0);
    expect(projects.stdout).toMatch(new RegExp(`^cli-shop +http://cli-shop\\.localhost:\\d+/ +${ids.local} +main$`, 'm'));
  });

  it('env: set takes the value on stdin (refused on the command line), ls names what is set and by which token, rm removes', async () => {
    const repoUrl = await stack.repo('cli-env', textSite('env'));
    expect((await api('POST', '/projects', { name: 'cli-env', repoUrl })).status).toBe(201);
    const set = await slipwayWithStdin(['env', 'set', 'cli-env', 'API_KEY', '--production'], 's3cret-value\n');
    expect(set, set.stderr).toMatchObject({ code: 0 });
    expect(set.stderr).toMatch(/^set API_KEY for production of cli-env \(env version 1\)/);
    expect((await slipwayWithStdin(['env', 'set', 'cli-env', 'MODE'], 'both')).code).toBe(0);
    const ls = await slipway(['env', 'ls', 'cli-env']);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/^NAME +FOR +SET +BY$/m);
    expect(ls.stdout).toMatch(/^API_KEY +production +\d+[smhd] +token [0-9a-f]{12}$/m);
    expect(ls.stdout).not.toMatch(/^API_KEY +preview/m);
    expect(ls.stdout.match(/^MODE /gm)).toHaveLength(2);
    expect(ls.stdout).not.toContain('s3cret');
    const onArgv = await slipway(['env', 'set', 'cli-env', 'API_KEY=s3cret-value']);
    expect(onArgv.code).toBe(2);
    expect(onArgv.stderr).toMatch(/give the value on stdin, not on the command line/);
    expect((await slipway(['env', 'rm', 'cli-env', 'MODE', '--preview'])).code).toBe(0);
    const after = await api('GET', '/projects/cli-env/env');
    expect(after.body).toMatchObject({ version: 3, production: ['API_KEY', 'MODE'], preview: [] });
    expect((await slipway(['env', 'rm', 'cli-env', 'NOPE'])).code).toBe(3);
    expect((await slipway(['env', 'frob', 'cli-env'])).code).toBe(2);
  });

  it('rollback and promote print the API message and move production', async () => {
    const rolled = await slipway(['rollback', 'cli-shop']);
    expect(rolled.code, rolled.stderr).toBe(0);
    expect(rolled.stdout).toMatch(new RegExp(`^production now serves ${ids.prod}; new production builds will not move it`));
    expect((await api('GET', '/projects/cli-shop')).body).toMatchObject({ production: { id: ids.prod }, pinned: true });
    expect((await slipway(['projects'])).stdout).toMatch(/ pinned$/m);

    const promoted = await slipway(['promote', 'cli-shop', ids.preview]);
    expect(promoted.code, promoted.stderr).toBe(0);
    expect(promoted.stdout).toBe(`production now serves ${ids.preview}; new production builds move it again\n`);
    expect((await api('GET', '/projects/cli-shop')).body).toMatchObject({ production: { id: ids.preview }, pinned: false });
    expect(await served('cli-shop')).toBe('preview');
  });

  it('exit codes: 3 when the API refuses (a wrong token, no such project), 4 when it cannot be reached, 2 for bad usage', async () => {
    const wrongToken = await slipway(['rollback', 'cli-shop'], { SLIPWAY_TOKEN: 'wrong-token-0123456789abcdef' });
    expect(wrongToken.code).toBe(3);
    expect(wrongToken.stderr).toMatch(/^slipway: .*not valid.*set SLIPWAY_TOKEN/);
    const noToken = await slipway(['deploy', await stack.repo('cli-plain', textSite('plain'))], { SLIPWAY_TOKEN: '' });
    expect(noToken.code).toBe(3);
    expect((await slipway(['promote', 'no-such-project', ids.prod])).code).toBe(3);

    const unreachable = await slipway(['ls'], { SLIPWAY_URL: `http://127.0.0.1:${await getPort()}` });
    expect(unreachable.code).toBe(4);
    expect(unreachable.stderr).toMatch(/^slipway: could not reach the API at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);

    for (const args of [['bogus'], ['promote', 'cli-shop'], ['logs'], ['ls', '--bogus'], ['ls', '--limit', 'many'], ['deploy', '--prod', 'https://example.com/x.git']]) {
      const res = await slipway(args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr, args.join(' ')).toMatch(/^slipway: .*/);
    }
    const help = await slipway(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 .*\n {2}3 .*\n {2}4 /);
  });
});

// Private repositories and project secrets, end to end on real parts: a git smart-HTTP server that
// asks for Basic authentication as a forge does, a real worker, redis-server and S3. A project's
// access token clones its repository and is refused, naming the host, when wrong; the token and the
// env values appear nowhere they must not: not on any command line or in any environment while
// git runs, not in a Redis dump, not in any S3 object, not in the log, not anywhere a build can read.
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { ListObjectsV2Command, GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startGitServer, type GitServer } from './harness/git-server';
import { startStack, type Stack } from './harness/stack';

const TOKEN = 'glpat-Pr1vate-T0ken-4f9c2e77';
const USER = 'x-access-token';
const ENV_SECRET = 'sk_live_env-value-93b1d0';
let stack: Stack;
let forge: GitServer;
let slow: GitServer;

beforeAll(async () => {
  stack = await startStack({ workers: 1 });
  forge = await startGitServer(inject('gitRoot'), { auth: { username: USER, password: TOKEN } });
  slow = await startGitServer(inject('gitRoot'), { auth: { username: USER, password: TOKEN }, delayMs: 150 });
});
afterAll(async () => {
  await forge?.close();
  await slow?.close();
  await stack?.close();
});

/** A site whose build prints its env and searches everything it can read for the secrets. */
function site(): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name: 'private-site', private: true, scripts: { build: 'node build.js' } }),
    // The token it looks for is written in halves, so this file itself does not hold it. (The env's
    // values are the build's own: it gets them, and says only how long SECRET is.)
    'build.js': `const fs = require('fs'), path = require('path');
const needles = [${JSON.stringify(TOKEN.slice(0, 8))} + ${JSON.stringify(TOKEN.slice(8))}];
const found = [];
// A canary the build writes itself: the walk must find it, or it proves nothing.
const canary = ['canary', 'in', 'the', 'walk'].join('-');
fs.writeFileSync('canary.txt', canary);
const canaries = [];
const seen = new Set();
function walk(dir, depth) {
  if (depth > 12) return;
  let entries = [];
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    // /usr (and what links into it) is the host's, bound read-only: 850 MB that nothing of Slipway's writes.
    if (['/proc', '/sys', '/dev', '/usr', '/lib', '/lib64', '/bin', '/sbin'].includes(p) || seen.has(p)) continue;
    seen.add(p);
    if (e.isDirectory()) walk(p, depth + 1);
    else if (e.isFile()) {
      try {
        const st = fs.statSync(p);
        if (st.size > 64 << 20) continue;
        const text = fs.readFileSync(p, 'latin1');
        for (const n of needles) if (text.includes(n)) found.push(p);
        if (text.includes(canary)) canaries.push(p);
      } catch {}
    }
  }
}
walk('/', 0);
const environ = fs.readFileSync('/proc/self/environ', 'latin1');
for (const n of needles) if (environ.includes(n)) found.push('environ');
fs.mkdirSync('dist', { recursive: true });
fs.writeFileSync('dist/index.html', JSON.stringify({ mode: process.env.MODE ?? null, secretLength: (process.env.SECRET ?? '').length, found, canaryFound: canaries.length > 0, hasGit: fs.existsSync('.git') }));
`,
  };
}

/** A fixture repository (made by the stack, with its own name prefix) as a server of the test's own serves it. */
async function privateRepo(server: GitServer, name: string, files: Record<string, string>, options?: Parameters<Stack['repo']>[2]): Promise<string> {
  return (await stack.repo(name, files, options)).replace(inject('gitUrl'), server.url);
}

async function project(name: string, body: Record<string, unknown>) {
  return stack.post('/projects', { name, ...body });
}

describe('a private repository, cloned with the project\'s access token', () => {
  it('deploys, and the token is nowhere: not on a command line or in an environment, not in Redis, S3, the log or the build', { timeout: 120_000 }, async () => {
    const repoUrl = await privateRepo(slow, 'private-site', site());
    const created = await project('private-site', { repoUrl, gitAuth: { username: USER, token: TOKEN }, env: { production: { MODE: 'prod', SECRET: ENV_SECRET } } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.gitAuth).toEqual({ username: USER, set: true });
    expect(created.body.env).toMatchObject({ version: 1, production: ['MODE', 'SECRET'], preview: [] });
    expect(JSON.stringify(created.body)).not.toContain(TOKEN);
    expect(JSON.stringify(created.body)).not.toContain(ENV_SECRET);

    // Every process's command line and environment, read while git talks to the slow forge.
    const seen = new Set<string>();
    let watching = true;
    // Every 5 ms while the upload-service clones (before the 202), then every 50 ms while it builds.
    let cloning = true;
    const watch = (async () => {
      while (watching) {
        for (const pid of await readdir('/proc').catch(() => [] as string[])) {
          if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
          for (const file of ['cmdline', 'environ']) {
            const text = await readFile(`/proc/${pid}/${file}`, 'latin1').catch(() => '');
            if (text.includes('git') || text.includes('SLIPWAY')) seen.add(text);
          }
        }
        await new Promise((r) => setTimeout(r, cloning ? 5 : 50));
      }
    })();
    const deploy = await stack.post('/projects/private-site/deployments', {});
    cloning = false;
    expect(deploy.status, JSON.stringify(deploy.body)).toBe(202);
    const record = await stack.waitFor(deploy.body.id, ['deployed', 'failed'], 60_000);
    watching = false;
    await watch;
    expect(record.status, record.error).toBe('deployed');
    expect([...seen].some((t) => t.includes('clone') || t.includes('upload-pack') || t.includes('remote-http')), 'git was seen running').toBe(true);
    expect([...seen].filter((t) => t.includes(TOKEN))).toEqual([]);

    const page = JSON.parse((await stack.site(deploy.body.id, '/')).body.toString());
    expect(page).toEqual({ mode: 'prod', secretLength: ENV_SECRET.length, found: [], canaryFound: true, hasGit: false });

    const { lines } = await stack.queue.readLog(deploy.body.id, '-', 10_000);
    expect(lines.join('\n')).not.toContain(TOKEN);
    expect(lines.join('\n')).not.toContain(ENV_SECRET);
    expect(await redisDump()).not.toMatch(new RegExp(`${TOKEN}|${ENV_SECRET}`));
    expect(await everyObject()).not.toMatch(new RegExp(`${TOKEN}|${ENV_SECRET}`));
    // The deployment's record names its env and the version it built with, never the values.
    const shown = await stack.get(`/deployments/${deploy.body.id}`);
    expect(shown.body).toMatchObject({ envNames: ['MODE', 'SECRET'] });
    expect(JSON.stringify(shown.body)).not.toContain(ENV_SECRET);
    expect(await stack.redis.hGet(`deployment:${deploy.body.id}`, 'envVersion')).toBe('1');
  });

  it('a wrong token is refused before anything is stored, naming the host and not the token', async () => {
    const repoUrl = await privateRepo(forge, 'private-wrong', site());
    const wrong = 'glpat-WRONG-token-1234';
    const res = await project('private-wrong', { repoUrl, gitAuth: { username: USER, token: wrong } });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('CLONE_FAILED');
    expect(res.body.error.message).toMatch(/^authentication failed for 127\.0\.0\.1 with the project's access token \(user x-access-token\)/);
    expect(JSON.stringify(res.body)).not.toContain(wrong);
    expect((await stack.get('/projects/private-wrong')).status).toBe(404);
    // A change to a wrong token is refused the same way, and the project keeps its token.
    expect((await project('private-ok', { repoUrl, gitAuth: { username: USER, token: TOKEN } })).status).toBe(201);
    const patched = await stack.request('PATCH', '/projects/private-ok', { gitAuth: { username: USER, token: wrong } });
    expect(patched.status).toBe(422);
    const deploy = await stack.post('/projects/private-ok/deployments', {});
    expect((await stack.waitFor(deploy.body.id, ['deployed', 'failed'], 60_000)).status).toBe('deployed');
  });

  it('without a token, a private repository fails saying what to set; a revoked token fails naming the host', async () => {
    const repoUrl = await privateRepo(forge, 'private-none', site());
    expect((await project('private-none', { repoUrl })).status).toBe(201);
    const none = await stack.post('/projects/private-none/deployments', {});
    expect(none.status).toBe(422);
    expect(none.body.error.message).toMatch(/asks for credentials: give the project gitAuth/);
    // The token worked when it was set, then the forge stopped taking it.
    const rotating = await startGitServer(inject('gitRoot'), { auth: { username: USER, password: TOKEN } });
    try {
      expect((await project('private-revoked', { repoUrl: repoUrl.replace(forge.url, rotating.url), gitAuth: { username: USER, token: TOKEN } })).status).toBe(201);
    } finally {
      await rotating.close();
    }
    const revoked = await startGitServer(inject('gitRoot'), { auth: { username: USER, password: 'another-token' } });
    try {
      await stack.redis.hSet('project:private-revoked', 'repoUrl', repoUrl.replace(forge.url, revoked.url));
      const res = await stack.post('/projects/private-revoked/deployments', {});
      expect(res.status).toBe(422);
      expect(res.body.error.message).toMatch(/^authentication failed for 127\.0\.0\.1/);
      expect(JSON.stringify(res.body)).not.toContain(TOKEN);
    } finally {
      await revoked.close();
    }
  });
});

describe('env per environment', () => {
  it('production, preview and a branch of its own; a change makes a new version and leaves built deployments as they were', { timeout: 240_000 }, async () => {
    const repoUrl = await stack.repo('env-site', site(), { extraBranches: { 'feature-x': site(), other: site() } });
    const env = { production: { MODE: 'prod' }, preview: { MODE: 'preview' }, branches: { 'feature-x': { MODE: 'fx' } } };
    expect((await project('env-site', { repoUrl, env })).status).toBe(201);
    const modes: Record<string, string> = {};
    const ids: Record<string, string> = {};
    for (const branch of ['main', 'other', 'feature-x']) {
      const res = await stack.post('/projects/env-site/deployments', { branch });
      const record = await stack.waitFor(res.body.id, ['deployed', 'failed'], 60_000);
      expect(record.status, record.error).toBe('deployed');
      ids[branch] = res.body.id;
      modes[branch] = JSON.parse((await stack.site(res.body.id, '/')).body.toString()).mode;
    }
    expect(modes).toEqual({ main: 'prod', other: 'preview', 'feature-x': 'fx' });

    // One variable changed through the env API: a new version; the production deployment built before keeps its value on redeploy.
    const set = await stack.request('PUT', '/projects/env-site/env/MODE', { value: 'prod-2', target: 'production' });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(set.body).toMatchObject({ version: 2, production: ['MODE'] });
    expect(set.body.variables.find((v: { target: string }) => v.target === 'production')).toMatchObject({ name: 'MODE', by: 'anonymous' });
    const redeploy = await stack.post(`/deployments/${ids.main}/redeploy`, {});
    expect(redeploy.status).toBeLessThan(300);
    await stack.waitFor(ids.main!, ['deployed', 'failed'], 60_000);
    expect(JSON.parse((await stack.site(ids.main!, '/')).body.toString()).mode).toBe('prod');
    const fresh = await stack.post('/projects/env-site/deployments', {});
    await stack.waitFor(fresh.body.id, ['deployed', 'failed'], 60_000);
    expect(JSON.parse((await stack.site(fresh.body.id, '/')).body.toString()).mode).toBe('prod-2');
    expect(await stack.redis.hGet(`deployment:${fresh.body.id}`, 'envVersion')).toBe('2');

    // Removed from the branch: that branch falls back to preview's.
    expect((await stack.request('DELETE', '/projects/env-site/env/MODE?branch=feature-x')).status).toBe(200);
    const listed = await stack.get('/projects/env-site/env');
    expect(listed.body).toMatchObject({ version: 3, production: ['MODE'], preview: ['MODE'], branches: {} });
    expect(JSON.stringify(listed.body)).not.toContain('prod-2');
  });

  it("a fork's deployment gets no env unless the project opts in, never the project's token, and no alias of the project's", { timeout: 180_000 }, async () => {
    const repoUrl = await privateRepo(forge, 'fork-upstream', site());
    const env = { production: { MODE: 'prod' }, preview: { MODE: 'preview', SECRET: ENV_SECRET } };
    expect((await project('fork-upstream', { repoUrl, gitAuth: { username: USER, token: TOKEN }, env })).status).toBe(201);
    const forkUrl = await stack.repo('fork-of-upstream', site());
    const first = await stack.post('/projects/fork-upstream/deployments', { repoUrl: forkUrl, branch: 'main' });
    expect(first.status, JSON.stringify(first.body)).toBe(202);
    expect(first.body).toMatchObject({ production: false, aliasUrl: expect.stringMatching(/^http:\/\/fork-[0-9a-f]{6}--fork-upstream\./) });
    expect((await stack.waitFor(first.body.id, ['deployed', 'failed'], 60_000)).status).toBe('deployed');
    expect(JSON.parse((await stack.site(first.body.id, '/')).body.toString())).toMatchObject({ mode: null, secretLength: 0 });
    expect(await stack.redis.hGet(`deployment:${first.body.id}`, 'sealedEnv')).toBeNull();
    // The project's production alias is untouched by the fork's main.
    expect((await stack.get('/projects/fork-upstream')).body.production).toBeNull();

    expect((await stack.request('PATCH', '/projects/fork-upstream', { forkEnv: true })).status).toBe(200);
    const opted = await stack.post('/projects/fork-upstream/deployments', { repoUrl: forkUrl, branch: 'main' });
    expect((await stack.waitFor(opted.body.id, ['deployed', 'failed'], 60_000)).status).toBe('deployed');
    expect(JSON.parse((await stack.site(opted.body.id, '/')).body.toString())).toMatchObject({ mode: 'preview', secretLength: ENV_SECRET.length });

    // A fork on the private forge: the project's token is not sent there, so it is refused.
    const privateFork = await privateRepo(forge, 'fork-private', site());
    const refused = await stack.post('/projects/fork-upstream/deployments', { repoUrl: privateFork, branch: 'main' });
    expect(refused.status).toBe(422);
    expect(refused.body.error.message).toMatch(/asks for credentials/);
  });

  it('refuses bad variables with a 400 naming them, and changes nothing', async () => {
    const repoUrl = await stack.repo('env-bad', site());
    expect((await project('env-bad', { repoUrl, env: { A: '1' } })).status).toBe(201);
    const before = await stack.redis.hGetAll('project:env-bad');
    const cases: [string, string, unknown, number, RegExp][] = [
      ['PUT', '/projects/env-bad/env/1BAD', { value: 'x' }, 400, /env names are letters/],
      ['PUT', '/projects/env-bad/env/PATH', { value: 'x' }, 400, /env may not set PATH/],
      ['PUT', '/projects/env-bad/env/OK', { value: 'x'.repeat(5000) }, 400, /at most 4096/],
      ['PUT', '/projects/env-bad/env/OK', { value: 'x', target: 'production', branch: 'main' }, 400, /give target or branch, not both/],
      ['PUT', '/projects/env-bad/env/OK', { value: 'x', target: 'staging' }, 400, /target is production, preview or all/],
      ['PUT', '/projects/env-bad/env/OK', {}, 400, /value is required/],
      ['DELETE', '/projects/env-bad/env/MISSING', undefined, 404, /MISSING is not set/],
    ];
    for (const [method, url, body, status, message] of cases) {
      const res = await stack.request(method, url, body);
      expect(res.status, `${method} ${url}`).toBe(status);
      expect(res.body.error.message).toMatch(message);
    }
    expect(await stack.redis.hGetAll('project:env-bad')).toEqual(before);
    expect((await stack.request('PUT', '/projects/nope/env/A', { value: '1' })).status).toBe(404);
    // Credentials that could end a line of git's credential protocol, on create and on change.
    for (const gitAuth of [{ username: 'u', token: 'two\nlines' }, { username: 'a b', token: 't' }, { username: 'u' }]) {
      const created = await project('env-bad-auth', { repoUrl, gitAuth });
      expect(created.status, JSON.stringify(gitAuth)).toBe(400);
      expect(created.body.error.message).toMatch(/gitAuth\.(token|username)/);
      expect((await stack.request('PATCH', '/projects/env-bad', { gitAuth })).status).toBe(400);
    }
    expect((await stack.get('/projects/env-bad-auth')).status).toBe(404);
    expect(await stack.redis.hGetAll('project:env-bad')).toEqual(before);
  });
});

/** Everything the stack's Redis holds, as an uncompressed dump file: what a stolen backup would show. */
async function redisDump(): Promise<string> {
  await stack.redis.configSet('rdbcompression', 'no');
  await stack.redis.sendCommand(['SAVE']);
  const [dir, file] = [(await stack.redis.configGet('dir')).dir!, (await stack.redis.configGet('dbfilename')).dbfilename!];
  return (await readFile(path.join(dir, file))).toString('latin1');
}

/** Every object of the stack's bucket, read whole. */
async function everyObject(): Promise<string> {
  const client = stack.storage.client;
  const parts: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: stack.config.s3.bucket, ContinuationToken: token }));
    for (const object of page.Contents ?? []) {
      const got = await client.send(new GetObjectCommand({ Bucket: stack.config.s3.bucket, Key: object.Key! }));
      parts.push(object.Key!, Buffer.from(await got.Body!.transformToByteArray()).toString('latin1'));
    }
    token = page.NextContinuationToken;
  } while (token);
  return parts.join('\n');
}

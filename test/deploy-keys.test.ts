// SSH deploy keys on real parts: a real sshd (git-shell only, an authorized_keys the test writes), a
// worker, redis-server and S3. Slipway makes a project's ed25519 key, shows only its public half,
// clones the project's ssh:// repository with it, trusts only the host keys in SSH_KNOWN_HOSTS (an
// unknown one is refused with its fingerprint), and says so when the forge stops taking the key;
// the private key is in no answer, no Redis dump, no S3 object, no log, no process's command line
// or environment, and nowhere a build can read.
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { projectKey, sealedPlace } from '@slipway/shared';
import { startSshServer, type SshServer } from './harness/sshd';
import { startStack, type Stack } from './harness/stack';

let stack: Stack;
let forge: SshServer;
let stranger: SshServer;

beforeAll(async () => {
  const dir = path.join(inject('tmpRoot'), `sshd-${process.pid}`);
  forge = await startSshServer(path.join(dir, 'forge'));
  stranger = await startSshServer(path.join(dir, 'stranger'));
  stack = await startStack({ workers: 1, env: { SSH_KNOWN_HOSTS: forge.knownHosts } });
});
afterAll(async () => {
  await stack?.close();
  await forge?.close();
  await stranger?.close();
});

/** A fixture repository as `server` serves it over ssh (by its absolute path, as git-shell takes it). */
async function sshRepo(server: SshServer, name: string, files: Record<string, string>): Promise<string> {
  const https = await stack.repo(name, files);
  return server.url(path.join(inject('gitRoot'), new URL(https).pathname));
}

/** A site whose build looks for `needle` (given in halves) everywhere it can read. */
function site(needle: string): Record<string, string> {
  const half = Math.floor(needle.length / 2);
  return {
    'package.json': JSON.stringify({ name: 'ssh-site', private: true, scripts: { build: 'node build.js' } }),
    'build.js': `const fs = require('fs'), path = require('path');
const needle = ${JSON.stringify(needle.slice(0, half))} + ${JSON.stringify(needle.slice(half))};
const found = [];
(function walk(dir, depth) {
  if (depth > 12) return;
  let entries = [];
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (['/proc', '/sys', '/dev'].includes(p)) continue;
    if (e.isDirectory()) walk(p, depth + 1);
    else if (e.isFile()) { try { if (fs.statSync(p).size < (64 << 20) && fs.readFileSync(p, 'latin1').includes(needle)) found.push(p); } catch {} }
  }
})('/', 0);
if (fs.readFileSync('/proc/self/environ', 'latin1').includes(needle)) found.push('environ');
fs.mkdirSync('dist'); fs.writeFileSync('dist/index.html', JSON.stringify({ found }));
`,
  };
}

describe('a deploy key', () => {
  it('is made by Slipway, cloned with over SSH, and its private half is nowhere it must not be', { timeout: 120_000 }, async () => {
    // The key does not exist yet when the repository is made, so the build looks for a stand-in first.
    const repoUrl = await sshRepo(forge, 'ssh-site', site('-----BEGIN OPENSSH PRIVATE KEY-----'));
    expect((await stack.post('/projects', { name: 'ssh-site', repoUrl })).status).toBe(201);
    const keyless = await stack.post('/projects/ssh-site/deployments', {});
    expect(keyless.status).toBe(422);
    expect(keyless.body.error.message).toMatch(/has an SSH repoUrl and no deploy key: POST \/projects\/ssh-site\/deploy-key makes one/);

    const made = await stack.post('/projects/ssh-site/deploy-key', {});
    expect(made.status).toBe(201);
    expect(made.body.publicKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/]+=* slipway-ssh-site$/);
    expect(made.body.fingerprint).toMatch(/^SHA256:/);
    expect(JSON.stringify(made.body)).not.toContain('PRIVATE');
    const shown = await stack.get('/projects/ssh-site');
    expect(shown.body.deployKey).toEqual({ publicKey: made.body.publicKey });
    expect(JSON.stringify(shown.body)).not.toContain('PRIVATE');
    const privateKey = stack.config.secrets.open((await stack.redis.hGet('project:ssh-site', 'deployKey'))!, sealedPlace(projectKey('ssh-site'), 'deployKey'));
    expect(privateKey).toContain('BEGIN OPENSSH PRIVATE KEY');
    // A line from the middle of the key's body: what a leak of the key would show.
    const body = privateKey.split('\n').filter((l) => !l.startsWith('-----') && l.length > 40)[1]!;
    await stack.repo('ssh-site', site(body));

    // Not yet on the forge: refused, saying what to do.
    const refused = await stack.post('/projects/ssh-site/deployments', {});
    expect(refused.status).toBe(422);
    expect(refused.body.error.message).toMatch(/^127\.0\.0\.1 refused the project's deploy key: add its public key/);

    await forge.authorize(made.body.publicKey);
    const seen = new Set<string>();
    let watching = true;
    const watch = (async () => {
      while (watching) {
        for (const pid of await readdir('/proc').catch(() => [] as string[])) {
          if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
          for (const file of ['cmdline', 'environ']) {
            const text = await readFile(`/proc/${pid}/${file}`, 'latin1').catch(() => '');
            if (text.includes('ssh') || text.includes('git')) seen.add(text);
          }
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const deploy = await stack.post('/projects/ssh-site/deployments', {});
    expect(deploy.status, JSON.stringify(deploy.body)).toBe(202);
    const record = await stack.waitFor(deploy.body.id, ['deployed', 'failed'], 60_000);
    watching = false;
    await watch;
    expect(record.status, record.error).toBe('deployed');
    expect([...seen].some((t) => t.includes('IdentitiesOnly=yes')), 'ssh was seen running').toBe(true);
    expect([...seen].filter((t) => t.includes(body) || t.includes('PRIVATE KEY'))).toEqual([]);
    expect(JSON.parse((await stack.site(deploy.body.id, '/')).body.toString())).toEqual({ found: [] });

    const { lines } = await stack.queue.readLog(deploy.body.id, '-', 10_000);
    expect(lines.join('\n')).not.toContain(body);
    await stack.redis.configSet('rdbcompression', 'no');
    await stack.redis.sendCommand(['SAVE']);
    const dump = await readFile(path.join((await stack.redis.configGet('dir')).dir!, (await stack.redis.configGet('dbfilename')).dbfilename!), 'latin1');
    expect(dump).not.toContain(body);
    expect(dump).toContain(made.body.publicKey.split(' ')[1]);

    // The forge drops the key: the next deployment says so; a new key replaces the old one.
    await forge.authorize();
    const revoked = await stack.post('/projects/ssh-site/deployments', {});
    expect(revoked.status).toBe(422);
    expect(revoked.body.error.message).toMatch(/refused the project's deploy key/);
    const again = await stack.post('/projects/ssh-site/deploy-key', {});
    expect(again.body.publicKey).not.toBe(made.body.publicKey);
    expect(again.body.message).toMatch(/replaces the project's previous key/);
  });

  it('trusts only the host keys in SSH_KNOWN_HOSTS: another host is refused with its fingerprint', async () => {
    const repoUrl = await sshRepo(stranger, 'ssh-stranger', site('unused'));
    expect((await stack.post('/projects', { name: 'ssh-stranger', repoUrl })).status).toBe(201);
    const made = await stack.post('/projects/ssh-stranger/deploy-key', {});
    await stranger.authorize(made.body.publicKey);
    const res = await stack.post('/projects/ssh-stranger/deployments', {});
    expect(res.status).toBe(422);
    expect(res.body.error.message).toContain(`the SSH host key of [127.0.0.1]:${stranger.port} is not one SSH_KNOWN_HOSTS (${forge.knownHosts}) trusts; it offers ED25519 ${stranger.fingerprint}`);
  });

  it('refuses what does not go with SSH, before anything is stored', async () => {
    const repoUrl = await sshRepo(forge, 'ssh-bad', site('unused'));
    const token = await stack.post('/projects', { name: 'ssh-bad', repoUrl, gitAuth: { username: 'u', token: 't' } });
    expect(token.status).toBe(400);
    expect(token.body.error.message).toMatch(/gitAuth is for https:\/\/ repositories/);
    expect((await stack.get('/projects/ssh-bad')).status).toBe(404);
    const direct = await stack.post('/deploy', { repoUrl });
    expect(direct.status).toBe(400);
    expect(direct.body.error.message).toMatch(/an SSH repoUrl needs a deploy key/);
    expect((await stack.request('DELETE', '/projects/nope/deploy-key')).status).toBe(404);
  });
});

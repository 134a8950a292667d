// Push to deploy end to end: GitHub's signed webhook, GitLab's token webhook and the generic deploy
// hook URL deploy the pushed branch at the pushed commit; forged, unsigned, oversized, replayed and
// malformed deliveries are refused and leave nothing behind.
import { createHmac } from 'node:crypto';
import net from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { textSite } from './harness/fixtures';
import { startStack, type Stack } from './harness/stack';

let stack: Stack;
let repoUrl: string;
let secret: string;
let deployHookUrl: string;
const sha = {} as Record<'main' | 'feature', string>;


beforeAll(async () => {
  stack = await startStack();
  repoUrl = await stack.repo('hooked-site', textSite('pushed main'), { extraBranches: { 'feature/x': textSite('pushed feature') } });
  const { stdout } = await promisify(execFile)('git', ['ls-remote', repoUrl]);
  sha.main = /^([0-9a-f]{40})\trefs\/heads\/main$/m.exec(stdout)![1]!;
  sha.feature = /^([0-9a-f]{40})\trefs\/heads\/feature\/x$/m.exec(stdout)![1]!;
});
afterAll(async () => {
  await stack?.close();
});

async function send(path: string, body: string | Buffer, headers: Record<string, string>) {
  const res = await fetch(`${stack.api}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const sign = (body: string | Buffer, key = secret) => `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
const github = (event: string, body: string | Buffer, signature = sign(body)) =>
  send('/hooks/github?project=hooked', body, { 'x-github-event': event, 'x-github-delivery': crypto.randomUUID(), 'x-hub-signature-256': signature });
const pushBody = (ref: string, after: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ ref, before: '0'.repeat(40), after, deleted: false, repository: { clone_url: repoUrl }, pusher: { name: 'dev' }, ...extra });

async function projectDeployments(): Promise<string[]> {
  const res = await fetch(`${stack.api}/projects/hooked/deployments?limit=100`);
  return ((await res.json()) as { items: { id: string }[] }).items.map((d) => d.id);
}

describe('push hooks', () => {
  it('gives the hook secret once, at creation', async () => {
    const created = await send('/projects', JSON.stringify({ name: 'hooked', repoUrl }), {});
    expect(created.status).toBe(201);
    secret = created.body.hookSecret;
    deployHookUrl = created.body.deployHookUrl;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(deployHookUrl).toMatch(/^\/hooks\/deploy\/hooked\/[A-Za-z0-9_-]{43}$/);
    expect(created.body.hooks).toEqual({ github: '/hooks/github?project=hooked', gitlab: '/hooks/gitlab?project=hooked' });
    const read = await fetch(`${stack.api}/projects/hooked`).then((r) => r.text());
    expect(read).not.toContain(secret);
    expect(read).not.toContain(deployHookUrl.split('/').pop()!);
  });

  it('deploys a signed GitHub push of the production branch at its commit, and a branch push as a preview', async () => {
    expect(await github('ping', JSON.stringify({ zen: 'Keep it logically awesome.' }))).toMatchObject({ status: 200, body: { ok: true } });
    const pushed = await github('push', pushBody('refs/heads/main', sha.main));
    expect(pushed.status, JSON.stringify(pushed.body)).toBe(202);
    expect(pushed.body).toMatchObject({ branch: 'main', commit: sha.main, status: 'queued' });
    expect((await stack.waitFor(pushed.body.id)).status).toBe('deployed');
    expect((await stack.site('hooked', '/')).body.toString()).toBe('pushed main');

    const preview = await github('push', pushBody('refs/heads/feature/x', sha.feature));
    expect(preview.status).toBe(202);
    const record = await stack.waitFor(preview.body.id);
    expect(record).toMatchObject({ status: 'deployed', branch: 'feature/x', commit: sha.feature });
    expect(record.production).toBeUndefined();
    expect((await stack.site('hooked', '/')).body.toString()).toBe('pushed main');
  });

  it('refuses forged, unsigned, oversized, replayed and malformed deliveries, and ignores other events', async () => {
    const before = await projectDeployments();
    const body = pushBody('refs/heads/main', sha.main, { head_commit: { id: sha.main, message: 'again' } });
    const forged = await github('push', body, sign(body, 'not-the-secret'));
    expect(forged.status).toBe(401);
    expect(forged.body.error.code).toBe('UNAUTHORIZED');
    expect((await github('push', body, '')).status).toBe(401);
    expect((await github('push', body.replace('again', 'agaim'), sign(body))).status).toBe(401); // body changed after signing
    expect((await send('/hooks/github?project=hooked', body, { 'x-github-event': 'push' })).status).toBe(401);

    const huge = Buffer.alloc(2 * 1024 * 1024 + 1, 'a');
    const oversized = await github('push', huge);
    expect(oversized.status).toBe(413);
    expect(oversized.body.error.message).toMatch(/limit is 2 MB/);

    expect(await github('issues', JSON.stringify({ action: 'opened' }))).toMatchObject({ status: 202, body: { ignored: expect.stringMatching(/only push/) } });
    expect((await github('push', pushBody('refs/tags/v1.0.0', sha.main))).body.ignored).toMatch(/not a branch/);
    expect((await github('push', pushBody('refs/heads/gone', '0'.repeat(40), { deleted: true }))).body.ignored).toMatch(/was deleted/);
    const malformed = await github('push', '{"ref": "refs/heads/main", "after"');
    expect(malformed.status).toBe(400);
    expect((await github('push', pushBody('refs/heads/main', 'not-a-commit'))).status).toBe(400);
    expect((await send('/hooks/github?project=nope', body, { 'x-github-event': 'push', 'x-hub-signature-256': sign(body) })).status).toBe(404);
    expect((await send('/hooks/github', body, { 'x-github-event': 'push', 'x-hub-signature-256': sign(body) })).status).toBe(404);

    // The first delivery deploys; the same signed body again (a new delivery id or not) is refused.
    const first = await github('push', body);
    expect(first.status).toBe(202);
    const replayed = await github('push', body);
    expect(replayed.status).toBe(409);
    expect(replayed.body.error.message).toMatch(/already taken/);
    await stack.waitFor(first.body.id);
    expect((await projectDeployments()).length).toBe(before.length + 1);
  });

  it('a failed deployment lets the same delivery come again', async () => {
    const body = pushBody('refs/heads/main', 'deadbeef'.repeat(5));
    expect((await github('push', body)).status).toBe(422);
    expect((await github('push', body)).status).toBe(422); // not 409: nothing was taken
  });

  it('deploys a GitLab push with the right token only', async () => {
    const body = JSON.stringify({ object_kind: 'push', ref: 'refs/heads/feature/x', before: sha.main, after: sha.feature, checkout_sha: sha.feature, project: { git_http_url: repoUrl } });
    const gitlab = (event: string, token: string, b = body) => send('/hooks/gitlab?project=hooked', b, { 'x-gitlab-event': event, 'x-gitlab-token': token });
    expect((await gitlab('Push Hook', 'wrong')).status).toBe(401);
    expect((await gitlab('Push Hook', '')).status).toBe(401);
    expect(await gitlab('Merge Request Hook', secret, '{}')).toMatchObject({ status: 400, body: { error: { message: expect.stringMatching(/names no number/) } } });
    expect(await gitlab('Pipeline Hook', secret, '{}')).toMatchObject({ status: 202, body: { ignored: expect.any(String) } });
    const pushed = await gitlab('Push Hook', secret);
    expect(pushed.status, JSON.stringify(pushed.body)).toBe(202);
    // feature/x already serves this very commit (the GitHub push above): nothing of it changed, so it is not built again.
    expect(await stack.waitFor(pushed.body.id, ['deployed', 'skipped'])).toMatchObject({ status: 'skipped', branch: 'feature/x', commit: sha.feature });
    expect((await gitlab('Push Hook', secret)).status).toBe(409);
  });

  it('deploys from the generic deploy hook URL; rotating the secret revokes it and the webhook secret', async () => {
    const hooked = await send(`${deployHookUrl}?branch=feature/x`, '', {});
    expect(hooked.status, JSON.stringify(hooked.body)).toBe(202);
    expect(hooked.body.branch).toBe('feature/x');
    await stack.waitFor(hooked.body.id);
    expect((await send(`${deployHookUrl.slice(0, -4)}AAAA`, '', {})).status).toBe(401);
    expect((await send(`${deployHookUrl}?branch=..`, '', {})).status).toBe(400);

    const rotated = await send('/projects/hooked/hook-secret', '', {});
    expect(rotated.status).toBe(200);
    expect(rotated.body.hookSecret).not.toBe(secret);
    expect((await send(deployHookUrl, '', {})).status).toBe(401);
    const body = pushBody('refs/heads/main', sha.main, { after_rotation: true });
    expect((await github('push', body)).status).toBe(401);
    expect((await github('push', body, sign(body, rotated.body.hookSecret))).status).toBe(202);
    secret = rotated.body.hookSecret;
  });

  it('answers an unknown project or a missing signature before the body is read', async () => {
    // Headers that announce a 2 MB body that never comes: only an answer given before reading it arrives.
    const early = (path: string, headers: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(Number(new URL(stack.api).port), '127.0.0.1', () => {
          socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n${headers}\r\n`);
        });
        let text = '';
        socket.on('data', (c: Buffer) => {
          text += c.toString();
          if (text.includes('\r\n\r\n')) {
            socket.destroy();
            resolve(text.split('\r\n')[0]!);
          }
        });
        socket.on('error', reject);
        setTimeout(() => (socket.destroy(), reject(new Error(`no answer to ${path} before the body`))), 3000);
      });
    expect(await early('/hooks/github?project=no-such-project', 'X-Hub-Signature-256: sha256=00\r\n')).toMatch(/^HTTP\/1\.1 404/);
    expect(await early('/hooks/github?project=hooked', '')).toMatch(/^HTTP\/1\.1 401/);
    expect(await early('/hooks/gitlab?project=hooked', '')).toMatch(/^HTTP\/1\.1 401/);
    expect(await early('/hooks/deploy/hooked/not-the-token', '')).toMatch(/^HTTP\/1\.1 401/);
  });

  it('throttles failed signatures per address and project: past AUTH_FAILURE_LIMIT, 429 before anything is checked', async () => {
    const created = await send('/projects', JSON.stringify({ name: 'guessed', repoUrl }), {});
    expect(created.status).toBe(201);
    const body = pushBody('refs/heads/main', sha.main, { guess: true });
    const deliver = (signature: string) => send('/hooks/github?project=guessed', body, { 'x-github-event': 'push', 'x-hub-signature-256': signature });
    for (let i = 0; i < 20; i++) expect((await deliver(sign(body, `guess-${i}`))).status).toBe(401);
    const throttled = await deliver(sign(body, created.body.hookSecret));
    expect(throttled.status).toBe(429);
    expect(throttled.body.error.message).toMatch(/AUTH_FAILURE_LIMIT/);
    // Another project's deliveries from the same address (a forge's) are not held back.
    expect((await github('ping', JSON.stringify({ zen: 'still here' }))).status).toBe(200);
  });
});

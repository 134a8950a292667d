// Pull-request previews end to end: GitHub's pull_request and GitLab's Merge Request Hook, signed as
// push hooks are, build the head commit (from the fork when it comes from one) at the stable alias
// pr-<number>--<project>; closing removes the alias and stops what still builds for it.
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { textSite } from './harness/fixtures';
import { startStack, type Stack } from './harness/stack';
import { startForge, type Forge } from './harness/forge';
import { waitUntil } from './harness/worker-process';

let stack: Stack;
let repoUrl: string;
let forkUrl: string;
let secret: string;
let forge: Forge;
const FORGE_TOKEN = 'ghp_forgeToken0123456789abcdefSECRET';
const sha = {} as Record<'main' | 'x' | 'y' | 'fork' | 'broken', string>;

async function heads(url: string): Promise<Record<string, string>> {
  const { stdout } = await promisify(execFile)('git', ['ls-remote', '--heads', url]);
  return Object.fromEntries(stdout.trim().split('\n').map((line) => line.split('\t').reverse().map((v, i) => (i === 0 ? v.replace('refs/heads/', '') : v))));
}

beforeAll(async () => {
  stack = await startStack({ env: { NOTIFY_RETRY_BASE_MS: '100' } });
  forge = await startForge(FORGE_TOKEN);
  repoUrl = await stack.repo('pr-site', textSite('main'), { extraBranches: { 'feature/x': textSite('pr first'), 'feature/y': textSite('pr second'), 'feature/broken': textSite('never', true) } });
  forkUrl = await stack.repo('pr-fork', textSite('from the fork'), { branch: 'patch-1' });
  const mine = await heads(repoUrl);
  [sha.main, sha.x, sha.y, sha.broken] = [mine.main!, mine['feature/x']!, mine['feature/y']!, mine['feature/broken']!];
  sha.fork = (await heads(forkUrl))['patch-1']!;
  const created = await stack.post('/projects', { name: 'prs', repoUrl });
  expect(created.status).toBe(201);
  secret = created.body.hookSecret;
}, 120_000);
afterAll(async () => {
  await stack?.close();
  await forge?.close();
});

async function send(path: string, body: string, headers: Record<string, string>) {
  const res = await fetch(`${stack.api}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}
const github = (event: string, body: string, project = 'prs', key = secret) =>
  send(`/hooks/github?project=${project}`, body, { 'x-github-event': event, 'x-github-delivery': crypto.randomUUID(), 'x-hub-signature-256': `sha256=${createHmac('sha256', key).update(body).digest('hex')}` });
const gitlab = (body: string, project = 'prs', key = secret) => send(`/hooks/gitlab?project=${project}`, body, { 'x-gitlab-event': 'Merge Request Hook', 'x-gitlab-token': key });

/** A pull_request event as GitHub sends it (the parts Slipway reads, and some it does not). */
function pullRequest(action: string, number: number, head: { ref: string; sha: string; fullName?: string; cloneUrl?: string }) {
  const base = { ref: 'main', sha: sha.main, repo: { full_name: 'acme/site', clone_url: repoUrl } };
  return JSON.stringify({
    action,
    number,
    pull_request: { number, state: action === 'closed' ? 'closed' : 'open', merged: false, title: 'A change', head: { ref: head.ref, sha: head.sha, repo: { full_name: head.fullName ?? 'acme/site', clone_url: head.cloneUrl ?? repoUrl } }, base },
    repository: { full_name: 'acme/site', clone_url: repoUrl },
    sender: { login: 'dev' },
    at: Date.now(), // GitHub's bodies differ in their times; a replayed body is refused
  });
}

/** A Merge Request Hook as GitLab sends it. */
function mergeRequest(action: string, iid: number, commit: string, extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    object_kind: 'merge_request',
    event_type: 'merge_request',
    project: { id: 14, path_with_namespace: 'acme/web/site', git_http_url: repoUrl },
    object_attributes: { iid, action, state: 'opened', source_branch: 'feature/x', target_branch: 'main', source_project_id: 14, target_project_id: 14, last_commit: { id: commit }, source: { git_http_url: repoUrl }, updated_at: new Date().toISOString(), ...extra },
  });
}

const page = async (host: string) => {
  const res = await stack.site(host, '/');
  return { status: res.status, text: res.body.toString() };
};

describe('pull-request previews', () => {
  it('opened, synchronize and closed on GitHub: pr-<number>--<project> follows the head, then goes; the deployments stay', async () => {
    const opened = await github('pull_request', pullRequest('opened', 7, { ref: 'feature/x', sha: sha.x }));
    expect(opened.status, JSON.stringify(opened.body)).toBe(202);
    expect(opened.body).toMatchObject({ branch: 'feature/x', commit: sha.x, alias: 'pr-7--prs', status: 'queued' });
    const first = await stack.waitFor(opened.body.id);
    expect(first).toMatchObject({ status: 'deployed', aliasLabel: 'pr-7', forge: { kind: 'github', repo: 'acme/site', pr: 7 } });
    expect(first.production).toBeUndefined();
    expect(await page('pr-7--prs')).toEqual({ status: 200, text: 'pr first' });
    // Each change of state is on the events stream once, written by the step that made it.
    const entries = (await stack.redis.sendCommand(['XRANGE', 'deployment-events', '-', '+'])) as [string, string[]][];
    expect(entries.filter(([, f]) => f[1] === opened.body.id).map(([, f]) => f[3])).toEqual(['queued', 'building', 'deployed']);
    // The branch alias is the branch's; production is not touched by a pull request.
    expect((await page('prs')).status).toBe(404);

    const pushed = await github('pull_request', pullRequest('synchronize', 7, { ref: 'feature/x', sha: sha.y }));
    expect(pushed.status).toBe(202);
    expect((await stack.waitFor(pushed.body.id)).status).toBe('deployed');
    expect(await page('pr-7--prs')).toEqual({ status: 200, text: 'pr second' });

    expect(await github('pull_request', pullRequest('labeled', 7, { ref: 'feature/x', sha: sha.y }))).toMatchObject({ status: 202, body: { ignored: expect.stringMatching(/labeled action does not deploy/) } });

    const closed = await github('pull_request', pullRequest('closed', 7, { ref: 'feature/x', sha: sha.y }));
    expect(closed).toMatchObject({ status: 202, body: { closed: 'pr-7--prs', served: pushed.body.id } });
    expect((await page('pr-7--prs')).status).toBe(404);
    // Retention keeps the deployments; each still answers at its own address.
    expect((await stack.get(`/deployments/${pushed.body.id}`)).body.status).toBe('deployed');
    expect((await page(pushed.body.id)).text).toBe('pr second');
    // Closing again changes nothing.
    expect(await github('pull_request', pullRequest('closed', 7, { ref: 'feature/x', sha: sha.y }))).toMatchObject({ status: 202, body: { closed: 'pr-7--prs', served: null } });

    const reopened = await github('pull_request', pullRequest('reopened', 7, { ref: 'feature/x', sha: sha.x }));
    expect((await stack.waitFor(reopened.body.id)).status).toBe('deployed');
    expect(await page('pr-7--prs')).toEqual({ status: 200, text: 'pr first' });
  });

  it("a fork's pull request builds the fork's commit from the fork's URL, as a preview", async () => {
    const opened = await github('pull_request', pullRequest('opened', 8, { ref: 'patch-1', sha: sha.fork, fullName: 'someone/site', cloneUrl: forkUrl }));
    expect(opened.status, JSON.stringify(opened.body)).toBe(202);
    const record = await stack.waitFor(opened.body.id);
    expect(record).toMatchObject({ status: 'deployed', repoUrl: forkUrl, commit: sha.fork, aliasLabel: 'pr-8' });
    expect(await page('pr-8--prs')).toEqual({ status: 200, text: 'from the fork' });
    // A fork's URL is checked like any other: a local path is refused, nothing stored.
    const bad = await github('pull_request', pullRequest('opened', 9, { ref: 'patch-1', sha: sha.fork, fullName: 'someone/site', cloneUrl: '/srv/git/site.git' }));
    expect(bad).toMatchObject({ status: 400, body: { error: { code: 'INVALID_URL' } } });
    // A deleted fork leaves nothing to clone.
    const gone = JSON.parse(pullRequest('synchronize', 8, { ref: 'patch-1', sha: sha.fork })) as { pull_request: { head: { repo: unknown } } };
    gone.pull_request.head.repo = null;
    expect(await github('pull_request', JSON.stringify(gone))).toMatchObject({ status: 202, body: { ignored: expect.stringMatching(/deleted/) } });
  });

  it('closing a pull request stops its build, and the alias never comes back for it', async () => {
    const opened = await github('pull_request', pullRequest('opened', 10, { ref: 'feature/x', sha: sha.x }));
    expect(opened.status).toBe(202);
    const closed = await github('pull_request', pullRequest('closed', 10, { ref: 'feature/x', sha: sha.x }));
    expect(closed.status).toBe(202);
    const record = await stack.waitFor(opened.body.id, ['deployed', 'failed', 'canceled']);
    // Either the close came first (canceled, as the answer says) or the build did and the alias went with the close.
    if (closed.body.canceled) expect(record.status).toBe('canceled');
    expect((await page('pr-10--prs')).status).toBe(404);
  });

  it("GitLab's merge requests: open deploys, an update without commits does not, merge closes", async () => {
    const opened = await gitlab(mergeRequest('open', 3, sha.x));
    expect(opened.status, JSON.stringify(opened.body)).toBe(202);
    expect(await stack.waitFor(opened.body.id)).toMatchObject({ status: 'deployed', aliasLabel: 'pr-3', forge: { kind: 'gitlab', repo: 'acme/web/site', pr: 3 } });
    expect(await page('pr-3--prs')).toEqual({ status: 200, text: 'pr first' });
    expect(await gitlab(mergeRequest('update', 3, sha.x))).toMatchObject({ status: 202, body: { ignored: expect.stringMatching(/update action does not deploy/) } });
    const updated = await gitlab(mergeRequest('update', 3, sha.y, { oldrev: sha.x }));
    expect(updated.status).toBe(202);
    expect((await stack.waitFor(updated.body.id)).status).toBe('deployed');
    expect(await page('pr-3--prs')).toEqual({ status: 200, text: 'pr second' });
    expect(await gitlab(mergeRequest('merge', 3, sha.y))).toMatchObject({ status: 202, body: { closed: 'pr-3--prs' } });
    expect((await page('pr-3--prs')).status).toBe(404);
  });

  it('refuses malformed pull-request events with 400, nothing deployed', async () => {
    const before = (await stack.get('/projects/prs/deployments?limit=100')).body.items.length;
    expect((await github('pull_request', JSON.stringify({ action: 'opened' }))).status).toBe(400);
    expect((await github('pull_request', pullRequest('opened', 11, { ref: 'feature/x', sha: 'not-a-commit' }))).status).toBe(400);
    expect((await github('pull_request', pullRequest('opened', 11, { ref: '--upload-pack=x', sha: sha.x }))).status).toBe(400);
    expect((await github('pull_request', pullRequest('opened', -1, { ref: 'feature/x', sha: sha.x }))).status).toBe(400);
    expect((await gitlab(mergeRequest('open', 0, sha.x))).status).toBe(400);
    expect((await stack.get('/projects/prs/deployments?limit=100')).body.items.length).toBe(before);
  });

  it('a branch called pr-7 does not take the pull request\'s alias', async () => {
    const { branchLabel } = await import('@slipway/shared');
    expect(branchLabel('pr-7', 'prs')).toMatch(/^pr-7-[0-9a-f]{6}$/);
    expect(branchLabel('fork-abcdef', 'prs')).toMatch(/^fork-abcdef-[0-9a-f]{6}$/);
    expect(branchLabel('pr-review', 'prs')).toBe('pr-review');
  });
});

/** A project whose forge is the harness's, and its hook secret. */
async function forgeProject(name: string, apiUrl: string | null, token = FORGE_TOKEN): Promise<string> {
  const created = await stack.post('/projects', { name, repoUrl, ...(apiUrl ? { forge: { apiUrl, token } } : {}) });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body.hookSecret as string;
}
const statesOf = (commit: string, context: string) => (forge.statuses.get(commit) ?? []).filter((s) => s.context === context || s.name === context).map((s) => s.state);
const waitForState = (commit: string, context: string, state: string) =>
  waitUntil(`${context} ${state} on ${commit}`, async () => (statesOf(commit, context).at(-1) === state ? true : undefined), 30_000);

/**
 * Waits until the notifier has handled every event so far (the group's lag and pending are 0) and no
 * delivery is due: after that, a delivery that was not made will not be.
 */
async function notifierIdle(): Promise<void> {
  await waitUntil('the notifier to be idle', async () => {
    const raw = (await stack.redis.sendCommand(['XINFO', 'GROUPS', 'deployment-events'])) as unknown[];
    const group = (raw[0] ?? {}) as Record<string, unknown> | unknown[];
    const info = Array.isArray(group) ? Object.fromEntries(Array.from({ length: group.length / 2 }, (_, i) => [group[2 * i], group[2 * i + 1]])) : group;
    const idle = Number(info.lag) === 0 && Number(info.pending) === 0 && (await stack.redis.zCard('notify:due')) === 0;
    return idle ? true : undefined;
  }, 30_000);
}

describe('the forge loop: commit statuses and one comment per pull request', () => {
  it('GitHub: pending, then success with the URL, and one comment edited on each push, never added twice', async () => {
    const key = await forgeProject('loop', forge.githubUrl);
    const shown = await stack.get('/projects/loop');
    expect(shown.body.forge).toEqual({ apiUrl: forge.githubUrl, set: true });
    expect(JSON.stringify(shown.body)).not.toContain(FORGE_TOKEN);

    const opened = await github('pull_request', pullRequest('opened', 21, { ref: 'feature/x', sha: sha.x }), 'loop', key);
    expect(opened.status).toBe(202);
    const record = await stack.waitFor(opened.body.id);
    expect(record.status).toBe('deployed');
    await waitForState(sha.x, 'slipway/loop', 'success');
    const posted = forge.statuses.get(sha.x)!.filter((s) => s.context === 'slipway/loop');
    expect(posted[0]).toMatchObject({ repo: 'acme/site', state: 'pending' });
    expect(posted.at(-1)).toMatchObject({ state: 'success', target_url: record.url, description: 'Deployed' });
    expect(posted.slice(0, -1).every((s) => s.state === 'pending')).toBe(true);
    await waitUntil('the comment to say deployed', async () => (forge.comments.get('acme/site#21')?.[0]?.body.includes('Deployed') ? true : undefined), 30_000);
    const [comment] = forge.comments.get('acme/site#21')!;
    expect(forge.comments.get('acme/site#21')).toHaveLength(1);
    expect(comment!.body).toContain('http://pr-21--loop.');
    expect(comment!.body).toContain(sha.x);
    // Every call carried the token as GitHub wants it; only the calls named in the contract were made.
    const mine = forge.calls.filter((c) => c.path.includes('/acme/site/') && (c.path.includes('/issues/21') || c.path.includes('/issues/comments/') || c.path.includes(sha.x)));
    expect(mine.every((c) => c.auth === `Bearer ${FORGE_TOKEN}`)).toBe(true);
    expect(new Set(mine.map((c) => `${c.method} ${c.path.replace(/\/\d+$/, '/:id').replace(sha.x, ':sha')}`))).toEqual(
      new Set(['POST /github/repos/acme/site/statuses/:sha', 'GET /github/repos/acme/site/issues/21/comments?per_page=100', 'POST /github/repos/acme/site/issues/21/comments', 'PATCH /github/repos/acme/site/issues/comments/:id']),
    );
    expect(mine.filter((c) => c.method === 'POST' && c.path.endsWith('/issues/21/comments'))).toHaveLength(1);

    // A new push: the same comment now names the new commit.
    const pushed = await github('pull_request', pullRequest('synchronize', 21, { ref: 'feature/x', sha: sha.y }), 'loop', key);
    expect((await stack.waitFor(pushed.body.id)).status).toBe('deployed');
    await waitForState(sha.y, 'slipway/loop', 'success');
    await waitUntil('the comment to name the new commit', async () => (forge.comments.get('acme/site#21')?.[0]?.body.includes(sha.y) && forge.comments.get('acme/site#21')?.[0]?.body.includes('Deployed') ? true : undefined), 30_000);
    expect(forge.comments.get('acme/site#21')).toHaveLength(1);
    const deliveries = (await stack.get(`/deployments/${pushed.body.id}/deliveries`)).body.items as { kind: string; ok: boolean }[];
    expect(deliveries.filter((d) => d.kind === 'status' && d.ok).length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(deliveries)).not.toContain(FORGE_TOKEN);
  });

  it('retries a 502 with backoff and says so on the deployment; a lost reply to the comment adds no second comment', async () => {
    const key = await forgeProject('flaky', forge.githubUrl);
    forge.failNext(2, 502, /POST \/github\/repos\/acme\/site\/statuses/);
    forge.loseReplies(1, /POST \/github\/repos\/acme\/site\/issues\/22\/comments/);
    const opened = await github('pull_request', pullRequest('opened', 22, { ref: 'feature/y', sha: sha.y }), 'flaky', key);
    expect((await stack.waitFor(opened.body.id)).status).toBe('deployed');
    await waitForState(sha.y, 'slipway/flaky', 'success');
    await waitUntil('the comment to say deployed', async () => (forge.comments.get('acme/site#22')?.at(-1)?.body.includes('Deployed') ? true : undefined), 30_000);
    expect(forge.comments.get('acme/site#22')).toHaveLength(1);
    const items = (await stack.get(`/deployments/${opened.body.id}/deliveries`)).body.items as { kind: string; ok: boolean; code?: number; retryAt?: string; error?: string }[];
    const failed = items.filter((d) => !d.ok);
    expect(failed.filter((d) => d.kind === 'status' && d.code === 502 && d.retryAt)).toHaveLength(2);
    expect(failed.filter((d) => d.kind === 'comment' && d.code === 502)).toHaveLength(1);
    expect(items.some((d) => d.kind === 'status' && d.ok)).toBe(true);
  });

  it('a failed build is a failure status with the reason; a refused token is given up at once and the deployment is untouched', async () => {
    const key = await forgeProject('broken', forge.githubUrl);
    const opened = await github('pull_request', pullRequest('opened', 23, { ref: 'feature/broken', sha: sha.broken }), 'broken', key);
    const record = await stack.waitFor(opened.body.id);
    expect(record.status).toBe('failed');
    await waitForState(sha.broken, 'slipway/broken', 'failure');
    expect(forge.statuses.get(sha.broken)!.at(-1)!.description).toMatch(/^Failed: .+/);
    await waitUntil('the comment to say failed', async () => (forge.comments.get('acme/site#23')?.[0]?.body.includes('Failed') ? true : undefined), 30_000);

    const wrong = await forgeProject('refused', forge.githubUrl, 'not-the-token');
    const before = forge.calls.length;
    const again = await github('pull_request', pullRequest('opened', 24, { ref: 'feature/x', sha: sha.x }), 'refused', wrong);
    expect((await stack.waitFor(again.body.id)).status).toBe('deployed');
    const given = await waitUntil('the refusals to be recorded', async () => {
      const items = (await stack.get(`/deployments/${again.body.id}/deliveries`)).body.items as { ok: boolean; code?: number; retryAt?: string }[];
      return items.filter((d) => d.code === 401).length >= 2 ? items : undefined;
    });
    expect(given.every((d) => !d.ok && d.code === 401 && d.retryAt === undefined)).toBe(true);
    // Not asked again: a 401 will not change by waiting.
    await notifierIdle();
    const refusedCalls = forge.calls.slice(before).filter((c) => c.auth === 'Bearer not-the-token');
    expect(refusedCalls.every((c) => c.answered === 401)).toBe(true);
    expect(refusedCalls.filter((c) => c.path.includes('/statuses/')).length).toBeLessThanOrEqual(3); // pending, building, deployed: once each
  });

  it('without a forge token nothing is sent', async () => {
    const key = await forgeProject('silent', null);
    const before = forge.calls.length;
    const opened = await github('pull_request', pullRequest('opened', 25, { ref: 'feature/x', sha: sha.x }), 'silent', key);
    expect((await stack.waitFor(opened.body.id)).status).toBe('deployed');
    await notifierIdle();
    expect(forge.calls.length).toBe(before);
    expect((await stack.get(`/deployments/${opened.body.id}/deliveries`)).body.items).toEqual([]);
  });

  it('GitLab: statuses pending, running, success with PRIVATE-TOKEN, and one note on the merge request', async () => {
    const key = await forgeProject('lab', forge.gitlabUrl);
    const opened = await gitlab(mergeRequest('open', 5, sha.x), 'lab', key);
    expect(opened.status).toBe(202);
    expect((await stack.waitFor(opened.body.id)).status).toBe('deployed');
    await waitForState(sha.x, 'slipway/lab', 'success');
    // Each delivery sends the state as it is when it runs: a build that started at once skips `pending`.
    expect(['pending', 'running']).toContain(statesOf(sha.x, 'slipway/lab')[0]);
    expect(statesOf(sha.x, 'slipway/lab').slice(0, -1).every((s) => s === 'pending' || s === 'running')).toBe(true);
    await waitUntil('the note to say deployed', async () => (forge.comments.get('acme/web/site#5')?.[0]?.body.includes('Deployed') ? true : undefined), 30_000);
    expect(forge.comments.get('acme/web/site#5')).toHaveLength(1);
    const mine = forge.calls.filter((c) => c.path.startsWith('/gitlab/projects/acme%2Fweb%2Fsite/'));
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((c) => c.auth === FORGE_TOKEN)).toBe(true);
  });

  it('refuses a bad forge setting with 400, nothing stored', async () => {
    for (const forgeSetting of [{ apiUrl: forge.githubUrl }, { apiUrl: 'ftp://example.com', token: 't' }, { apiUrl: 'https://user:pw@example.com', token: 't' }, { token: 'a b' }, { token: 't', extra: 1 }]) {
      const res = await stack.post('/projects', { name: 'badforge', repoUrl, forge: forgeSetting });
      expect(res.status, JSON.stringify(forgeSetting)).toBe(400);
      expect(res.body.error.code).toBe('INVALID_INPUT');
    }
    expect((await stack.get('/projects/badforge')).status).toBe(404);
    const patched = await stack.request('PATCH', '/projects/loop', { forge: null });
    expect(patched.status).toBe(200);
    expect(patched.body.forge).toBeNull();
  });
});

describe('outgoing notifications', () => {
  it('signs each event to each webhook, retries a 502 with the same delivery id, and shows the answers', async () => {
    const got: { path: string; headers: http.IncomingHttpHeaders; raw: string; answered: number }[] = [];
    let failFirst = true;
    const receiver = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        const answered = failFirst ? 502 : 204;
        failFirst = false;
        got.push({ path: req.url ?? '', headers: req.headers, raw, answered });
        res.writeHead(answered).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/slipway`;
    const hookSecret = 'whsec-0123456789abcdef';
    try {
      const created = await stack.post('/projects', { name: 'notified', repoUrl, notifications: [{ url, secret: hookSecret }, { url: `${url}/failures`, secret: 'other-secret-0123456789', events: ['failed'] }] });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(created.body.notifications).toEqual([{ url }, { url: `${url}/failures`, events: ['failed'] }]);
      expect(JSON.stringify(await stack.get('/projects/notified'))).not.toContain(hookSecret);

      const first = await stack.post('/projects/notified/deployments', {});
      expect((await stack.waitFor(first.body.id)).status).toBe('deployed');
      const second = await stack.post('/projects/notified/deployments', {});
      expect((await stack.waitFor(second.body.id)).status).toBe('deployed');
      expect((await stack.post('/projects/notified/rollback', {})).status).toBe(200);
      // The same rollback asked again (a client whose answer was lost) changes nothing and tells nothing.
      expect((await stack.post('/projects/notified/rollback', { deploymentId: first.body.id })).status).toBe(200);

      const told = (id: string) => got.filter((g) => g.answered === 204 && JSON.parse(g.raw).deployment.id === id).map((g) => JSON.parse(g.raw).event as string);
      await waitUntil('every event to be told', async () => (told(first.body.id).includes('rolled-back') && told(second.body.id).includes('deployed') ? true : undefined), 30_000);
      await notifierIdle(); // a second rolled-back, were there one, would be sent by now
      expect(told(first.body.id).sort()).toEqual(['building', 'deployed', 'queued', 'rolled-back']);
      expect(told(second.body.id).sort()).toEqual(['building', 'deployed', 'queued']);
      for (const { headers, raw } of got) {
        expect(headers['x-slipway-signature']).toBe(`sha256=${createHmac('sha256', hookSecret).update(raw).digest('hex')}`);
        const body = JSON.parse(raw);
        expect(String(body.timestamp)).toBe(headers['x-slipway-timestamp']);
        expect(headers['x-slipway-event']).toBe(body.event);
        expect(body).toMatchObject({ project: 'notified', deployment: { url: expect.any(String), branch: 'main', production: true } });
        expect(headers['content-type']).toBe('application/json');
      }
      // The 502 was asked again with the same delivery id; every other delivery id is told once.
      const ids = got.map((g) => String(g.headers['x-slipway-delivery']));
      expect(ids.filter((id) => id === ids[0])).toHaveLength(2);
      expect(new Set(ids).size).toBe(ids.length - 1);
      // Only failures go to the second hook: none.
      expect(got.map((g) => g.path).filter((p) => p !== '/slipway')).toEqual([]);
      const items = (await stack.get('/projects/notified/deliveries')).body.items as { ok: boolean; code?: number; retryAt?: string; kind: string }[];
      expect(items.filter((d) => !d.ok)).toEqual([expect.objectContaining({ kind: 'webhook', code: 502, retryAt: expect.any(String) })]);
      expect(items.filter((d) => d.ok).length).toBe(got.length - 1);
      expect(JSON.stringify(items)).not.toContain(hookSecret);
    } finally {
      receiver.closeAllConnections();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });

  it('refuses bad notifications with 400, nothing stored', async () => {
    const bad = [
      [{ url: 'file:///etc/passwd', secret: 'whsec-0123456789abcdef' }],
      [{ url: 'https://hooks.example.com/x', secret: 'short' }],
      [{ url: 'https://hooks.example.com/x' }],
      [{ url: 'https://hooks.example.com/x', secret: 'whsec-0123456789abcdef', events: ['exploded'] }],
      Array.from({ length: 11 }, (_, i) => ({ url: `https://hooks.example.com/${i}`, secret: 'whsec-0123456789abcdef' })),
    ];
    for (const notifications of bad) {
      const res = await stack.post('/projects', { name: 'badhooks', repoUrl, notifications });
      expect(res.status, JSON.stringify(notifications)).toBe(400);
    }
    expect((await stack.get('/projects/badhooks')).status).toBe(404);
  });
});

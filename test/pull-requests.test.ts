// Pull-request previews end to end: GitHub's pull_request and GitLab's Merge Request Hook, signed as
// push hooks are, build the head commit (from the fork when it comes from one) at the stable alias
// pr-<number>--<project>; closing removes the alias and stops what still builds for it.
import { createHmac } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { textSite } from './harness/fixtures';
import { startStack, type Stack } from './harness/stack';

let stack: Stack;
let repoUrl: string;
let forkUrl: string;
let secret: string;
const sha = {} as Record<'main' | 'x' | 'y' | 'fork', string>;

async function heads(url: string): Promise<Record<string, string>> {
  const { stdout } = await promisify(execFile)('git', ['ls-remote', '--heads', url]);
  return Object.fromEntries(stdout.trim().split('\n').map((line) => line.split('\t').reverse().map((v, i) => (i === 0 ? v.replace('refs/heads/', '') : v))));
}

beforeAll(async () => {
  stack = await startStack();
  repoUrl = await stack.repo('pr-site', textSite('main'), { extraBranches: { 'feature/x': textSite('pr first'), 'feature/y': textSite('pr second') } });
  forkUrl = await stack.repo('pr-fork', textSite('from the fork'), { branch: 'patch-1' });
  const mine = await heads(repoUrl);
  [sha.main, sha.x, sha.y] = [mine.main!, mine['feature/x']!, mine['feature/y']!];
  sha.fork = (await heads(forkUrl))['patch-1']!;
  const created = await stack.post('/projects', { name: 'prs', repoUrl });
  expect(created.status).toBe(201);
  secret = created.body.hookSecret;
}, 120_000);
afterAll(async () => {
  await stack?.close();
});

async function send(path: string, body: string, headers: Record<string, string>) {
  const res = await fetch(`${stack.api}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}
const github = (event: string, body: string) =>
  send('/hooks/github?project=prs', body, { 'x-github-event': event, 'x-github-delivery': crypto.randomUUID(), 'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}` });
const gitlab = (body: string) => send('/hooks/gitlab?project=prs', body, { 'x-gitlab-event': 'Merge Request Hook', 'x-gitlab-token': secret });

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

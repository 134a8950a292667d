// What Slipway tells a forge about a deployment: a commit status on its commit, and for a pull (merge)
// request one comment with the preview link, the commit and the state, edited on each change. The
// calls are the forges' REST APIs:
//   GitHub  POST  {api}/repos/{owner}/{repo}/statuses/{sha}                 Authorization: Bearer <token>
//           GET   {api}/repos/{owner}/{repo}/issues/{number}/comments?per_page=100
//           POST  {api}/repos/{owner}/{repo}/issues/{number}/comments
//           PATCH {api}/repos/{owner}/{repo}/issues/comments/{id}
//   GitLab  POST  {api}/projects/{path}/statuses/{sha}                      PRIVATE-TOKEN: <token>
//           GET   {api}/projects/{path}/merge_requests/{iid}/notes?per_page=100
//           POST  {api}/projects/{path}/merge_requests/{iid}/notes
//           PUT   {api}/projects/{path}/merge_requests/{iid}/notes/{id}
// The comment carries a marker naming the project, so one whose creation's answer was lost is found
// (and edited) instead of added again.
import type { DeploymentRecord, ForgeRef } from '@slipway/shared';
import { send, type Answer } from './http';

export interface ForgeTarget {
  kind: ForgeRef['kind'];
  apiUrl: string;
  token: string;
  repo: string;
  allowPrivateNetworks: boolean;
}

/** A failure a delivery records and may retry: the forge's answer, or none (a network failure). */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly answer: Answer | null,
  ) {
    super(message);
  }
}

const GITHUB_STATES = { pending: 'pending', running: 'pending', success: 'success', failed: 'failure', canceled: 'error' } as const;
const GITLAB_STATES = { pending: 'pending', running: 'running', success: 'success', failed: 'failed', canceled: 'canceled' } as const;
export type State = keyof typeof GITHUB_STATES;

/** A deployment's state as a forge's commit status tells it, with a line (GitHub keeps 140 characters). */
export function stateOf(record: DeploymentRecord): { state: State; description: string } {
  const cut = (text: string) => (text.length > 140 ? `${text.slice(0, 139)}…` : text);
  switch (record.status) {
    case 'uploading':
    case 'queued':
      return { state: 'pending', description: 'Waiting for a build slot' };
    case 'building':
      return { state: 'running', description: 'Building' };
    case 'deployed':
      return { state: 'success', description: 'Deployed' };
    case 'failed':
      return { state: 'failed', description: cut(`Failed: ${record.error ?? 'the build failed'}`) };
    case 'canceled':
      return { state: 'canceled', description: cut(`Canceled${record.error ? `: ${record.error}` : ''}`) };
    case 'skipped':
      return { state: 'success', description: cut(`Skipped: none of the watched paths changed; ${record.skip?.serving ?? 'the deployment before'} still serves`) };
  }
}

async function call(target: ForgeTarget, method: string, path: string, body?: unknown): Promise<Answer> {
  const url = new URL(`${target.apiUrl}${path}`);
  const auth: Record<string, string> =
    target.kind === 'github' ? { authorization: `Bearer ${target.token}`, accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' } : { 'private-token': target.token };
  try {
    return await send(url, { method, headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body), allowPrivateNetworks: target.allowPrivateNetworks });
  } catch (err) {
    throw new DeliveryError(`${method} ${url.host}${url.pathname}: ${(err as Error).message}`, null);
  }
}

function ok(answer: Answer, what: string): Answer {
  if (answer.status >= 200 && answer.status < 300) return answer;
  const detail = /"message"\s*:\s*"([^"]{0,200})/.exec(answer.body)?.[1];
  throw new DeliveryError(`${what}: ${answer.status}${detail ? ` ${detail}` : ''}`, answer);
}

const repoPath = (target: ForgeTarget) => (target.kind === 'github' ? `/repos/${target.repo}` : `/projects/${encodeURIComponent(target.repo)}`);

/** Posts the commit status; answers the forge's status code. */
export async function postStatus(target: ForgeTarget, sha: string, status: { state: State; description: string; targetUrl?: string; context: string }): Promise<number> {
  const body =
    target.kind === 'github'
      ? { state: GITHUB_STATES[status.state], description: status.description, context: status.context, ...(status.targetUrl ? { target_url: status.targetUrl } : {}) }
      : { state: GITLAB_STATES[status.state], description: status.description, name: status.context, ...(status.targetUrl ? { target_url: status.targetUrl } : {}) };
  const answer = await call(target, 'POST', `${repoPath(target)}/statuses/${sha}`, body);
  // GitLab refuses a status the commit already has ("Cannot transition status via :run from :running"): it is told already.
  if (target.kind === 'gitlab' && answer.status === 400 && /Cannot transition status/i.test(answer.body)) return answer.status;
  return ok(answer, 'commit status').status;
}

/**
 * Makes the pull request's one comment say `body`: edits the comment `known` (its id, when Slipway has
 * one), else the one carrying `marker`, else adds one. Answers the comment's id.
 */
export async function syncComment(target: ForgeTarget, number: number, known: string | null, marker: string, body: string): Promise<string> {
  const list = target.kind === 'github' ? `${repoPath(target)}/issues/${number}/comments` : `${repoPath(target)}/merge_requests/${number}/notes`;
  const one = (id: string) => (target.kind === 'github' ? `${repoPath(target)}/issues/comments/${id}` : `${list}/${id}`);
  const edit = target.kind === 'github' ? 'PATCH' : 'PUT';
  if (known) {
    const answer = await call(target, edit, one(known), { body });
    if (answer.status !== 404) return (ok(answer, 'comment edit'), known);
    // Deleted on the forge: found or added again below.
  }
  const found = await call(target, 'GET', `${list}?per_page=100`);
  ok(found, 'comment list');
  let existing: string | null = null;
  try {
    const items = JSON.parse(found.body) as { id?: unknown; body?: unknown }[];
    const mine = Array.isArray(items) ? items.find((c) => typeof c.body === 'string' && c.body.includes(marker)) : undefined;
    if (mine && (typeof mine.id === 'number' || typeof mine.id === 'string')) existing = String(mine.id);
  } catch {
    // Not a list: add one.
  }
  if (existing) {
    ok(await call(target, edit, one(existing), { body }), 'comment edit');
    return existing;
  }
  const created = ok(await call(target, 'POST', list, { body }), 'comment');
  const id = (JSON.parse(created.body) as { id?: unknown }).id;
  if (typeof id !== 'number' && typeof id !== 'string') throw new DeliveryError('comment: the answer names no id', created);
  return String(id);
}

// Push to deploy. A git host calls one of these when someone pushes; each is authenticated with the
// project's hook secret (made with the project, shown once, rotated with POST
// /projects/:name/hook-secret) and deploys the pushed branch at the pushed commit:
//   POST /hooks/github?project=<name>   X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>
//   POST /hooks/gitlab?project=<name>   X-Gitlab-Token: <the secret>
//   POST /hooks/deploy/<name>/<token>   any host or script; ?branch= (default the production branch)
// GitHub's `push` and `pull_request` and GitLab's `Push Hook` and `Merge Request Hook` deploy: a pull
// request's head commit (from the fork when it comes from one, under the fork rules) builds the preview
// `pr-<number>--<project>`; closing it removes that alias and stops what still builds for it. A push
// (or pull-request update) that changed none of the project's watchPaths ends `skipped`, unbuilt.
// Bodies are read raw (capped) so the signature is checked over the bytes sent; a body already taken
// is refused for a week (GitHub and GitLab put the pushed commits in it, so a real push is never the
// same twice), so a captured request cannot be replayed.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import express, { type Request, type RequestHandler } from 'express';
import {
  ConflictError,
  ForgeRefSchema,
  InvalidInputError,
  NotFoundError,
  ProjectDeploySchema,
  ProjectNameSchema,
  UnauthorizedError,
  pullRequestLabel,
  type DeploymentRecord,
  type ForgeRef,
  type ProjectRecord,
  type Projects,
} from '@slipway/shared';
import { createProjectDeployment, describeIssues, type DeployDeps } from '../deploy/deploy';
import { clientKey, type FailureThrottle } from '../access/throttle';

/** GitHub sends up to 25 MB; a push of a few hundred commits is well under this. */
export const HOOK_MAX_BYTES = 2 * 1024 * 1024;
const REPLAY_WINDOW_SECONDS = 7 * 24 * 3600;
const ZERO_COMMIT = /^0+$/;

/** What an event asks for, or why it is ignored. */
type Push = { branch: string; commit: string; forge?: ForgeRef; fork?: string; pullRequest?: number } | { ignored: string } | { close: number };

export function hooksRouter(deps: DeployDeps & { projects: Projects; failures: FailureThrottle }, limit: RequestHandler): express.Router {
  const { projects, failures } = deps;
  const router = express.Router();
  const raw = express.raw({ type: () => true, limit: HOOK_MAX_BYTES });

  /**
   * Everything that can be checked before the body is read: the address is not throttled, the project
   * exists, and the request carries the header its secret is checked with. Failures are counted per
   * address and project: forges deliver every project's hooks from a few shared addresses.
   */
  const before = (header: string | null, nameOf: (req: Request) => string): RequestHandler =>
    async (req, res, next) => {
      const name = nameOf(req);
      const key = `${clientKey(req)} ${name.slice(0, 64)}`;
      failures.check(key);
      const project = ProjectNameSchema.safeParse(name).success ? await projects.get(name) : null;
      if (!project) {
        failures.fail(key);
        throw new NotFoundError(`no project named ${JSON.stringify(name.slice(0, 64))}: the hook URL names the project, e.g. /hooks/github?project=my-site`);
      }
      if (header !== null && !req.get(header)) {
        failures.fail(key);
        throw new UnauthorizedError(`${header === 'x-hub-signature-256' ? 'X-Hub-Signature-256' : 'X-Gitlab-Token'} is missing: set the webhook's secret to the project's hook secret`);
      }
      res.locals.project = project;
      res.locals.failureKey = key;
      next();
    };
  const refuse = (res: express.Response, message: string) => {
    failures.fail(res.locals.failureKey as string);
    return new UnauthorizedError(message);
  };
  const byQuery = (req: Request) => String(req.query.project ?? '');

  router.post('/hooks/github', before('x-hub-signature-256', byQuery), raw, async (req, res) => {
    const project = res.locals.project as ProjectRecord;
    const body = bodyOf(req);
    const signature = req.get('x-hub-signature-256') ?? '';
    if (!project.hookSecret || !equal(signature, `sha256=${createHmac('sha256', project.hookSecret).update(body).digest('hex')}`)) {
      throw refuse(res, 'X-Hub-Signature-256 does not match the body signed with this project\'s hook secret');
    }
    const event = req.get('x-github-event') ?? '';
    if (event === 'ping') return void res.json({ ok: true, project: project.name });
    if (event === 'pull_request') return void res.status(202).json(await deployOnce(project, body, githubPullRequest(json(body))));
    if (event !== 'push') return void res.status(202).json({ ignored: `the ${event || 'unnamed'} event does not deploy; only push and pull_request do` });
    const payload = json(body);
    res.status(202).json(await deployOnce(project, body, withForge(pushOf(payload, 'deleted'), 'github', field(payload, 'repository', 'full_name'))));
  });

  router.post('/hooks/gitlab', before('x-gitlab-token', byQuery), raw, async (req, res) => {
    const project = res.locals.project as ProjectRecord;
    const body = bodyOf(req);
    const token = req.get('x-gitlab-token') ?? '';
    if (!project.hookSecret || !equal(token, project.hookSecret)) throw refuse(res, 'X-Gitlab-Token is not this project\'s hook secret');
    const event = req.get('x-gitlab-event') ?? '';
    if (event === 'Merge Request Hook') return void res.status(202).json(await deployOnce(project, body, gitlabMergeRequest(json(body))));
    if (event !== 'Push Hook') return void res.status(202).json({ ignored: `the ${event || 'unnamed'} event does not deploy; only Push Hook and Merge Request Hook do` });
    const payload = json(body);
    res.status(202).json(await deployOnce(project, body, withForge(pushOf(payload), 'gitlab', field(payload, 'project', 'path_with_namespace'))));
  });

  // The token is in the URL: checked before the body (which this hook does not use) is read.
  router.post('/hooks/deploy/:name/:token', limit, before(null, (req) => String(req.params.name)), async (req, res) => {
    const project = res.locals.project as ProjectRecord;
    if (!project.hookSecret || !equal(String(req.params.token), deployHookToken(project.hookSecret))) throw refuse(res, 'this deploy hook URL is not valid (was the hook secret rotated?)');
    const branch = typeof req.query.branch === 'string' ? req.query.branch : undefined;
    const parsed = ProjectDeploySchema.safeParse({ branch });
    if (!parsed.success) throw new InvalidInputError(describeIssues(parsed.error.issues));
    res.status(202).json(summary(await createProjectDeployment(deps, project, { branch: parsed.data.branch })));
  });

  return router;

  /** Deploys a push unless the same body was taken before; a deploy that fails lets it come again. */
  async function deployOnce(project: ProjectRecord, body: Buffer, push: Push) {
    if ('ignored' in push) return push;
    if ('close' in push) return close(project, push.close);
    const digest = createHash('sha256').update(body).digest('hex');
    if (!(await projects.firstDelivery(project.name, digest, REPLAY_WINDOW_SECONDS))) {
      throw new ConflictError('this delivery was already taken: a replayed hook does not deploy again (redeploy the deployment instead)');
    }
    try {
      const { branch, commit, fork, pullRequest, forge } = push;
      // A pushed commit that changed none of the project's watched paths is not built (projects/watch.ts).
      return summary(await createProjectDeployment(deps, project, { branch, commit, fork, pullRequest, forge, skipUnchanged: true }));
    } catch (err) {
      await projects.forgetDelivery(project.name, digest);
      throw err;
    }
  }

  /**
   * A closed (or merged) pull request: its alias goes, and the deployment still waiting or building
   * for it is canceled (a deployment made before the close never moves the alias back). Safe to repeat.
   */
  async function close(project: ProjectRecord, number: number) {
    const label = pullRequestLabel(number);
    const { served, pending } = await projects.closeAlias(project.name, label);
    const canceled = pending ? await deps.queue.cancel(pending) : null;
    return { closed: `${label}--${project.name}`, served, ...(canceled === 'canceled' || canceled === 'canceling' ? { canceled: pending } : {}) };
  }
}

/** The token in a project's generic deploy hook URL: derived from the hook secret, so rotating it revokes the URL. */
export function deployHookToken(hookSecret: string): string {
  return createHmac('sha256', hookSecret).update('slipway deploy hook').digest('base64url');
}

/** Constant-time comparison of two strings of any lengths (their SHA-256s are compared). */
function equal(given: string, expected: string): boolean {
  return timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(expected).digest());
}

function bodyOf(req: Request): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

function json(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new InvalidInputError('the hook body is not JSON (GitHub: set the content type to application/json)');
  }
}

/** A push event's branch and commit (GitHub's and GitLab's share `ref` and `after`). */
function pushOf(payload: unknown, deletedField?: string): Push {
  const p = (typeof payload === 'object' && payload !== null ? payload : {}) as Record<string, unknown>;
  const ref = typeof p.ref === 'string' ? p.ref : '';
  const after = typeof p.after === 'string' ? p.after : '';
  if (!ref.startsWith('refs/heads/')) return { ignored: `${ref || 'a push without a ref'} is not a branch` };
  if ((deletedField && p[deletedField] === true) || ZERO_COMMIT.test(after)) return { ignored: `${ref} was deleted` };
  const parsed = ProjectDeploySchema.safeParse({ branch: ref.slice('refs/heads/'.length), commit: after });
  if (!parsed.success) throw new InvalidInputError(`the push names no branch and commit Slipway can deploy: ${describeIssues(parsed.error.issues)}`);
  return { branch: parsed.data.branch!, commit: parsed.data.commit! };
}

/** A string at `a.b` of a payload, or ''. */
function field(payload: unknown, a: string, b: string): string {
  const outer = (payload as Record<string, unknown> | null)?.[a];
  const value = typeof outer === 'object' && outer !== null ? (outer as Record<string, unknown>)[b] : undefined;
  return typeof value === 'string' ? value : '';
}

/** A push's commit, with where its statuses go when the payload names a repository Slipway can address. */
function withForge(push: Push, kind: ForgeRef['kind'], repo: string): Push {
  if (!('branch' in push)) return push;
  const forge = ForgeRefSchema.safeParse({ kind, repo });
  return forge.success ? { ...push, forge: forge.data } : push;
}

const COMMIT = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/** What a pull request's change means for its preview; the reason when it means nothing. */
function pullRequestOf(kind: ForgeRef['kind'], p: { number: unknown; action: string; deploys: boolean; closes: boolean; branch: unknown; commit: unknown; repo: string; fork: boolean; forkUrl: unknown }): Push {
  if (typeof p.number !== 'number' || !Number.isSafeInteger(p.number) || p.number < 1) throw new InvalidInputError(`the ${kind === 'github' ? 'pull request' : 'merge request'} event names no number`);
  if (p.closes) return { close: p.number };
  if (!p.deploys) return { ignored: `the ${p.action || 'unnamed'} action does not deploy: a ${kind === 'github' ? 'pull request' : 'merge request'} deploys when it is opened, reopened or gets new commits` };
  if (typeof p.commit !== 'string' || !COMMIT.test(p.commit)) throw new InvalidInputError('the event names no head commit Slipway can deploy');
  const parsed = ProjectDeploySchema.safeParse({ branch: p.branch, commit: p.commit, ...(p.fork ? { repoUrl: p.forkUrl } : {}) });
  if (!parsed.success) throw new InvalidInputError(`the event names no branch Slipway can deploy: ${describeIssues(parsed.error.issues)}`);
  const forge = ForgeRefSchema.safeParse({ kind, repo: p.repo, pr: p.number });
  return {
    branch: parsed.data.branch!,
    commit: parsed.data.commit!,
    pullRequest: p.number,
    ...(p.fork ? { fork: parsed.data.repoUrl! } : {}),
    ...(forge.success ? { forge: forge.data } : {}),
  };
}

/** GitHub's pull_request: opened, reopened and synchronize deploy the head; closed (merged or not) closes. */
function githubPullRequest(payload: unknown): Push {
  const p = (payload ?? {}) as { action?: unknown; number?: unknown; pull_request?: { head?: { ref?: unknown; sha?: unknown; repo?: { full_name?: unknown; clone_url?: unknown } | null }; base?: { repo?: { full_name?: unknown } } } };
  const action = typeof p.action === 'string' ? p.action : '';
  const head = p.pull_request?.head;
  const base = String(p.pull_request?.base?.repo?.full_name ?? field(payload, 'repository', 'full_name'));
  const deploys = ['opened', 'reopened', 'synchronize'].includes(action);
  // A fork that was deleted leaves head.repo null: nothing to clone.
  if (deploys && head?.repo === null) return { ignored: 'the pull request\'s repository was deleted: there is nothing to clone' };
  const headName = String(head?.repo?.full_name ?? base);
  return pullRequestOf('github', {
    number: p.number,
    action,
    deploys,
    closes: action === 'closed',
    branch: head?.ref,
    commit: head?.sha,
    repo: base,
    fork: headName.toLowerCase() !== base.toLowerCase(),
    forkUrl: head?.repo?.clone_url,
  });
}

/**
 * GitLab's Merge Request Hook: open and reopen deploy the last commit, update only when it brought
 * commits (`oldrev` is set); close and merge close.
 */
function gitlabMergeRequest(payload: unknown): Push {
  const a = ((payload as { object_attributes?: unknown } | null)?.object_attributes ?? {}) as {
    iid?: unknown; action?: unknown; oldrev?: unknown; source_branch?: unknown; last_commit?: { id?: unknown }; source_project_id?: unknown; target_project_id?: unknown; source?: { git_http_url?: unknown };
  };
  const action = typeof a.action === 'string' ? a.action : '';
  return pullRequestOf('gitlab', {
    number: a.iid,
    action,
    deploys: action === 'open' || action === 'reopen' || (action === 'update' && typeof a.oldrev === 'string'),
    closes: action === 'close' || action === 'merge',
    branch: a.source_branch,
    commit: a.last_commit?.id,
    repo: field(payload, 'project', 'path_with_namespace'),
    fork: a.source_project_id !== a.target_project_id,
    forkUrl: a.source?.git_http_url,
  });
}

function summary(record: DeploymentRecord) {
  const alias = record.aliasLabel && record.project ? { alias: `${record.aliasLabel}--${record.project}` } : {};
  return { id: record.id, status: record.status, branch: record.branch, commit: record.commit, ...alias, ...(record.skip ? { skip: record.skip } : {}), statusUrl: `/deployments/${record.id}`, url: record.url };
}

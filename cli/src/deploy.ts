// `slipway deploy`: works out what to deploy (a repository URL, a project's branch, or the pushed
// commit of a local checkout), asks the API for it, and follows the deployment to its end.
import type { Accepted, Api, Deployment, Project } from './api';
import { EXIT, UsageError, type ExitCode } from './errors';
import { waitForDeployment } from './follow';
import { cloneUrl, readCheckout } from './git';
import { Progress } from './progress';

export interface DeployOptions {
  /** A repository URL or a local checkout; none means the project's repository, or "." without a project. */
  target: string | undefined;
  project: string | undefined;
  branch: string | undefined;
  prod: boolean;
  commit: string | undefined;
  wait: boolean;
  json: boolean;
}

/** The request to make. */
interface Plan {
  path: string;
  body: Record<string, string>;
}

/** What the API takes as `commit`: an abbreviation cannot be fetched by id. */
const FULL_COMMIT = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

export async function deploy(api: Api, options: DeployOptions): Promise<ExitCode> {
  const plan = await makePlan(api, options);
  const accepted = await api.postOnce<Accepted>(plan.path, plan.body);
  if (!options.wait) {
    // The site is not up yet: the id is what a script needs next (`slipway logs <id> --follow`).
    process.stdout.write(options.json ? `${JSON.stringify(accepted)}\n` : `${accepted.id}\n`);
    process.stderr.write(`${accepted.id} ${accepted.status}; it will be served at ${accepted.url}\n`);
    return EXIT.ok;
  }

  const progress = new Progress(accepted.id);
  // The answer's own status first: a fast worker may have moved on before the first poll.
  progress.update(accepted.status);
  const record = await waitForDeployment(api, accepted.id, progress);
  if (options.json) process.stdout.write(`${JSON.stringify(record)}\n`);
  if (record.status !== 'deployed') {
    const how = record.status === 'canceled' ? 'was canceled' : 'failed';
    process.stderr.write(`slipway: deployment ${record.id} ${how}${record.error ? `: ${record.error}` : ''}\n`);
    process.stderr.write(`the build's log: slipway logs ${record.id}\n`);
    return EXIT.deploymentFailed;
  }
  if (options.project && accepted.production) await sayProduction(api, options.project, record);
  else if (accepted.aliasUrl) process.stderr.write(`branch alias: ${accepted.aliasUrl}\n`);
  if (!options.json) process.stdout.write(`${record.url}\n`);
  return EXIT.ok;
}

async function makePlan(api: Api, options: DeployOptions): Promise<Plan> {
  const { target, project, prod } = options;
  if (prod && !project) throw new UsageError('--prod needs --project: only a project has a production branch');
  const path = project ? `/projects/${encodeURIComponent(project)}/deployments` : '/deploy';

  if (target !== undefined && looksLikeUrl(target)) {
    if (project) throw new UsageError(`--project ${project} deploys the project's own repository: leave out ${target}, or give a local checkout to deploy its commit`);
    return { path, body: defined({ repoUrl: cloneUrl(target), branch: options.branch, commit: fullCommit(options.commit) }) };
  }

  const production = prod ? (await api.get<Project>(`/projects/${encodeURIComponent(project!)}`)).productionBranch : undefined;
  if (target === undefined && project) {
    if (production && options.branch && options.branch !== production) {
      throw new UsageError(`--prod deploys ${project}'s production branch, ${production}; --branch ${options.branch} names another`);
    }
    return { path, body: defined({ branch: production ?? options.branch, commit: fullCommit(options.commit) }) };
  }

  // A checkout: its pushed commit, on the branch checked out. The API clones; it sees nothing local.
  const dir = target ?? '.';
  const checkout = await readCheckout(dir, options.commit);
  if (options.branch && checkout.branch && options.branch !== checkout.branch) {
    throw new UsageError(`${dir} has ${checkout.branch} checked out, not ${options.branch}: check it out, or leave out --branch`);
  }
  const branch = options.branch ?? checkout.branch;
  if (!branch) throw new UsageError(`HEAD is detached in ${dir}: give --branch, the pushed branch that holds ${checkout.commit.slice(0, 7)}`);
  if (production && branch !== production) {
    throw new UsageError(`--prod deploys ${project}'s production branch, ${production}, but ${dir} has ${branch} checked out`);
  }
  const commit = checkout.commit.slice(0, 7);
  if (checkout.dirty) warn(`${dir} has uncommitted changes: they are not deployed, only pushed commits are`);
  if (!checkout.pushed) warn(`${commit} is on no branch of origin that this checkout knows of: git push first, Slipway deploys pushed commits only`);
  process.stderr.write(`deploying ${branch} at ${commit}, as pushed to ${checkout.repoUrl}\n`);
  return { path, body: { ...(project ? {} : { repoUrl: checkout.repoUrl }), branch, commit: checkout.commit } };
}

/** Prints where production stands once a production build of a project is deployed. */
async function sayProduction(api: Api, name: string, record: Deployment): Promise<void> {
  const project = await api.get<Project>(`/projects/${encodeURIComponent(name)}`);
  if (project.production?.id === record.id) process.stderr.write(`production: ${project.url}\n`);
  else if (project.pinned) process.stderr.write(`production stays on ${project.production?.id} (pinned by a rollback): slipway promote ${name} ${record.id}\n`);
}

function fullCommit(commit: string | undefined): string | undefined {
  if (commit === undefined || FULL_COMMIT.test(commit)) return commit;
  throw new UsageError(`--commit ${JSON.stringify(commit)} is not a full commit id (40 hex digits; \`git rev-parse <commit>\` gives it)`);
}

function looksLikeUrl(target: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(target) || /^[\w.-]+@[\w.-]+:/.test(target);
}

function defined(body: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(body).filter((e): e is [string, string] => e[1] !== undefined));
}

function warn(text: string): void {
  process.stderr.write(`warning: ${text}\n`);
}

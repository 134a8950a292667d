// The projects API: create, read, change and delete projects; deploy one; list its deployments;
// point production back (rollback) or at another deployment (promote). Also the list of all
// deployments. Changes need the API token (see app.ts); reads follow PRIVATE_READS.
import express, { type Request, type RequestHandler } from 'express';
import { ConflictError, CreateProjectSchema, InvalidInputError, NotFoundError, ProjectDeploySchema, openGitAuth, ProjectNameSchema, Projects, UpdateProjectSchema, describeError, isDeploymentId, saveProjectCopy, siteUrl, withDeadline, type Config, type DeploymentRecord, type ProjectRecord, type Queue } from '@slipway/shared';
import { z } from 'zod';
import { checkDeliveryUrl } from '../notify/http';
import { createProjectDeployment, describeIssues, idempotencyOf, type DeployDeps } from '../deploy/deploy';
import { deployHookToken } from './hooks';
import { previewLinksRouter } from './preview-links';
import type { PreviewGate } from '../sites/protect';
import { checkRepoUrl } from '../deploy/url-policy';
import { HIDDEN_FIELDS, envRouter, secretsView, storedChange, storedCreate, tokenId, verifyAccess } from './project-secrets';

const DEFAULT_PAGE = 20;
/** A change waits this long for its project's copy in S3; past it the janitor writes the copy. */
const COPY_WAIT_MS = 5_000;
const MAX_PAGE = 100;

export function projectsRouter(deps: DeployDeps & { projects: Projects; gate: PreviewGate }, guards: { change: RequestHandler[]; read: RequestHandler }): express.Router {
  const { config, queue, projects } = deps;
  const router = express.Router();
  router.post(['/projects', '/projects/:name', '/projects/:name/deployments', '/projects/:name/rollback', '/projects/:name/promote', '/projects/:name/hook-secret'], ...guards.change);
  router.patch('/projects/:name', ...guards.change);
  router.delete('/projects/:name', ...guards.change);
  router.get(['/projects', '/projects/:name', '/projects/:name/deployments', '/projects/:name/deliveries', '/deployments'], guards.read);

  router.use(envRouter({ config, projects }, guards, mustGet));
  router.use(previewLinksRouter({ config, projects, gate: deps.gate }, guards, mustGet, saveCopy));

  router.post('/projects', async (req, res) => {
    const input = parse(CreateProjectSchema, req.body);
    checkDomains(input.domains, req);
    const target = await checkRepoUrl(input.repoUrl, { allowPrivateNetworks: config.allowPrivateNetworks, allowedHosts: config.gitAllowedHosts }, { ssh: true });
    if (input.gitAuth && target.transport === 'ssh') throw new InvalidInputError(SSH_NOT_TOKEN);
    if (input.forge?.apiUrl) checkDeliveryUrl(input.forge.apiUrl, config.allowPrivateNetworks, 'forge.apiUrl');
    for (const n of input.notifications ?? []) checkDeliveryUrl(n.url, config.allowPrivateNetworks, 'notifications[].url');
    const stored = storedCreate(input, config, tokenId(req));
    // A token that cannot read the repository is refused before anything is stored.
    if (input.gitAuth) await verifyAccess(config, target, input.gitAuth);
    const created = await projects.create(stored);
    if (created === 'exists') throw new ConflictError(`a project named ${input.name} exists already`);
    if (created !== 'ok') throw domainTaken(created);
    await saveCopy(input.name);
    const project = await mustGet(input.name);
    res.status(201).json({ ...(await view(project)), ...hookSecrets(project.name, project.hookSecret!) });
  });

  router.get('/projects', async (req, res) => {
    const page = await projects.list(cursorOf(req), limitOf(req));
    res.json({ items: await Promise.all(page.items.map(view)), next: page.next });
  });

  // What the project's webhooks were sent and answered: the last 50, newest first (notify/).
  router.get('/projects/:name/deliveries', async (req, res) => {
    const project = await mustGet(req.params.name);
    res.json({ items: await deps.queue.deliveries(project.name, 50, true) });
  });

  router.get('/projects/:name', async (req, res) => {
    res.json(await view(await mustGet(req.params.name)));
  });

  router.patch('/projects/:name', async (req, res) => {
    const change = parse(UpdateProjectSchema, req.body);
    checkDomains(change.domains, req);
    const name = nameOf(req);
    const current = await mustGet(name);
    const target = change.repoUrl ? await checkRepoUrl(change.repoUrl, { allowPrivateNetworks: config.allowPrivateNetworks, allowedHosts: config.gitAllowedHosts }, { ssh: true }) : null;
    if (change.forge?.apiUrl) checkDeliveryUrl(change.forge.apiUrl, config.allowPrivateNetworks, 'forge.apiUrl');
    for (const n of change.notifications ?? []) checkDeliveryUrl(n.url, config.allowPrivateNetworks, 'notifications[].url');
    const stored = storedChange(change, current, config, tokenId(req));
    // A new token, or a new repository for the token the project has, is checked before it is stored.
    const auth = change.gitAuth === null ? null : (change.gitAuth ?? (target ? openGitAuth(current, config.secrets) : null));
    const checked = auth ? (target ?? (await checkRepoUrl(current.repoUrl, { allowPrivateNetworks: config.allowPrivateNetworks, allowedHosts: config.gitAllowedHosts }, { ssh: true }))) : null;
    if (change.gitAuth && checked?.transport === 'ssh') throw new InvalidInputError(SSH_NOT_TOKEN);
    if (auth && checked?.transport === 'https') await verifyAccess(config, checked, auth);
    const updated = await projects.update(name, stored);
    if (updated === 'no-project') throw new NotFoundError(`no project named ${name}`);
    if (updated !== 'ok') throw domainTaken(updated);
    await saveCopy(name);
    res.json(await view(await mustGet(name)));
  });

  router.delete('/projects/:name', async (req, res) => {
    const name = nameOf(req);
    if (!(await projects.delete(name))) throw new NotFoundError(`no project named ${name}`);
    await saveCopy(name);
    res.status(204).end();
  });

  router.post('/projects/:name/deployments', async (req, res) => {
    const { branch, commit, repoUrl } = parse(ProjectDeploySchema, req.body ?? {});
    const project = await mustGet(req.params.name);
    const record = await createProjectDeployment(deps, project, { branch, commit, idempotency: idempotencyOf(req, `project:${project.name}`), fork: repoUrl });
    res.status(202).json({
      id: record.id,
      status: record.status,
      branch: record.branch,
      commit: record.commit,
      production: record.production === '1',
      statusUrl: `/deployments/${record.id}`,
      logsUrl: `/deployments/${record.id}/logs`,
      url: record.url,
      aliasUrl: record.aliasLabel ? siteUrl(config, `${record.aliasLabel}--${project.name}`) : null,
    });
  });

  router.get('/projects/:name/deployments', async (req, res) => {
    const project = await mustGet(req.params.name);
    const page = await projects.deployments(project.name, cursorOf(req), limitOf(req));
    const branches = await projects.branchAliases(project.name);
    const items = await listed(page.items, (record) => markers(project, branches, record));
    res.json({ items, next: page.next });
  });

  router.post('/projects/:name/rollback', async (req, res) => {
    const { deploymentId } = parse(PointSchema.partial(), req.body ?? {});
    const project = await mustGet(req.params.name);
    const target =
      deploymentId ??
      (await projects.previousProduction(project, async (id) => {
        const r = await queue.get(id);
        return r?.status === 'deployed' && r.production === '1' && r.liveBuild !== undefined;
      }));
    if (!target) throw new ConflictError(`project ${project.name} has no earlier deployed production deployment to roll back to`);
    await point(project, target, true);
    res.json({
      production: target,
      pinned: true,
      url: siteUrl(config, project.name),
      message: `production now serves ${target}; new production builds will not move it until you promote a deployment`,
    });
  });

  router.post('/projects/:name/promote', async (req, res) => {
    const { deploymentId } = parse(PointSchema, req.body);
    const project = await mustGet(req.params.name);
    await point(project, deploymentId, false);
    res.json({ production: deploymentId, pinned: false, url: siteUrl(config, project.name), message: `production now serves ${deploymentId}; new production builds move it again` });
  });

  router.post('/projects/:name/hook-secret', async (req, res) => {
    const name = nameOf(req);
    const secret = await projects.rotateHookSecret(name);
    if (!secret) throw new NotFoundError(`no project named ${name}`);
    res.json(hookSecrets(name, secret));
  });

  router.get('/deployments', async (req, res) => {
    const page = await queue.deployments(cursorOf(req), limitOf(req));
    res.json({ items: await listed(page.items, () => ({})), next: page.next });
  });
  return router;

  async function point(project: ProjectRecord, id: string, pin: boolean): Promise<void> {
    const result = await projects.point(project.name, id, pin, config.skew);
    if (result === 'no-project') throw new NotFoundError(`no project named ${project.name}`);
    if (result === 'not-in-project') throw new NotFoundError(`deployment ${id} is not a deployment of ${project.name}`);
    if (result === 'not-deployed') throw new ConflictError(`deployment ${id} has no deployed build to serve`);
    await saveCopy(project.name);
  }

  /** Writes the project's copy in S3 (backup.ts); when S3 cannot, the change stands and the janitor writes it. */
  async function saveCopy(name: string): Promise<void> {
    await withDeadline(saveProjectCopy(projects, deps.storage, name), COPY_WAIT_MS, `no answer from object storage within ${COPY_WAIT_MS} ms`).catch((err: unknown) =>
      deps.logger.warn({ err: describeError(err), project: name }, 'could not write the project\'s copy in S3; the janitor writes it later'),
    );
  }

  /**
   * Host names under BASE_DOMAIN are Slipway's own (deployments, aliases); custom domains are others.
   * Never the API's: its page keeps the token in the browser, so a site at its origin could read it.
   * The host this very request came to is the API's, whatever API_HOSTS says.
   */
  function checkDomains(domains: string[] | null | undefined, req: Request): void {
    const base = config.baseDomain.toLowerCase();
    const inside = domains?.find((d) => d === base || d.endsWith(`.${base}`));
    if (inside) throw new InvalidInputError(`domains: ${inside} is under BASE_DOMAIN (${base}), whose names Slipway gives out itself; add a host name of your own`);
    const api = domains?.find((d) => config.apiHosts.includes(d));
    if (api) throw new InvalidInputError(`domains: ${api} is the API's own host name (API_HOSTS)`);
    const own = hostName(req.get('host'));
    if (own && domains?.includes(own)) throw new InvalidInputError(`domains: ${own} is the host this request came to, the API's own; a site cannot take it (list the API's host names in API_HOSTS)`);
  }

  async function mustGet(name: string): Promise<ProjectRecord> {
    const project = ProjectNameSchema.safeParse(name).success ? await projects.get(name) : null;
    if (!project) throw new NotFoundError(`no project named ${JSON.stringify(name.slice(0, 64))}`);
    return project;
  }

  /** A project as the API shows it: env names only, never a secret; its aliases with their addresses. */
  async function view(project: ProjectRecord) {
    const { production, productionAt: _at, pinned, domains, ...rest } = project;
    const settings = Object.fromEntries(Object.entries(rest).filter(([k]) => !(HIDDEN_FIELDS as readonly string[]).includes(k)));
    const branches = await projects.branchAliases(project.name);
    return {
      ...settings,
      ...secretsView(project),
      url: siteUrl(config, project.name),
      production: production ? { id: production, url: siteUrl(config, production) } : null,
      pinned: pinned === '1',
      domains: (domains ?? []).map((host) => ({ host, url: `http://${host}/` })),
      hooks: { github: `/hooks/github?project=${project.name}`, gitlab: `/hooks/gitlab?project=${project.name}` },
      branches: Object.entries(branches)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([label, id]) => ({ alias: `${label}--${project.name}`, id, url: siteUrl(config, `${label}--${project.name}`) })),
    };
  }

  /** The listed deployments' summaries, in order; ids whose record expired are left out. */
  async function listed(ids: string[], extra: (record: DeploymentRecord) => Record<string, unknown>) {
    const items = [];
    for (const id of ids) {
      const r = await queue.get(id);
      if (!r) continue;
      items.push({ id: r.id, project: r.project ?? null, status: r.status, branch: r.branch ?? null, commit: r.commit ?? null, createdAt: r.createdAt, finishedAt: r.finishedAt ?? null, error: r.error ?? null, url: r.url, ...extra(r) });
    }
    return items;
  }
}

/** Shown only when a secret is made: at creation and by POST /projects/:name/hook-secret. */
function hookSecrets(name: string, secret: string) {
  return {
    hookSecret: secret,
    deployHookUrl: `/hooks/deploy/${name}/${deployHookToken(secret)}`,
    message: 'keep hookSecret: it is the secret of the GitHub or GitLab webhook and is not shown again (POST /projects/:name/hook-secret makes a new one)',
  };
}

function domainTaken(result: string): ConflictError {
  return new ConflictError(`domain ${result.slice('domain:'.length)} belongs to another project; remove it there first`);
}

const SSH_NOT_TOKEN = "gitAuth is for https:// repositories; an SSH repoUrl is cloned with the project's deploy key (POST /projects/:name/deploy-key)";

const PointSchema = z.strictObject({
  deploymentId: z.string({ error: 'deploymentId is required' }).refine(isDeploymentId, 'deploymentId is a deployment id'),
});

function markers(project: ProjectRecord, branches: Record<string, string>, r: DeploymentRecord): Record<string, unknown> {
  const label = r.aliasLabel;
  return {
    production: project.production === r.id,
    target: r.production === '1' ? 'production' : 'preview',
    alias: label && branches[label] === r.id ? `${label}--${project.name}` : null,
  };
}

function parse<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidInputError('the request body must be a JSON object');
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new InvalidInputError(describeIssues(parsed.error.issues));
  return parsed.data;
}

function nameOf(req: Request): string {
  const name = String(req.params.name);
  if (!ProjectNameSchema.safeParse(name).success) throw new NotFoundError(`no project named ${JSON.stringify(name.slice(0, 64))}`);
  return name;
}

function cursorOf(req: Request): string | null {
  const cursor = req.query.cursor;
  if (cursor === undefined || cursor === '') return null;
  if (typeof cursor !== 'string' || !/^\d{1,16}:[a-z0-9-]{1,64}$/.test(cursor)) throw new InvalidInputError('cursor is the `next` value of the previous page');
  return cursor;
}

function limitOf(req: Request): number {
  const raw = req.query.limit;
  if (raw === undefined) return DEFAULT_PAGE;
  const n = Number(raw);
  if (typeof raw !== 'string' || !Number.isInteger(n) || n < 1 || n > MAX_PAGE) throw new InvalidInputError(`limit is a whole number from 1 to ${MAX_PAGE}`);
  return n;
}

/** The host name of a Host header: lower case, without the port or a trailing dot. */
function hostName(header: string | undefined): string | null {
  if (!header) return null;
  return header.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
}

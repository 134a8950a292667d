// A project's secrets through the API: what a create or a change stores of its env and its git
// credentials (sealed: shared/src/projects/secrets.ts), what the API shows of them (names, where,
// when and by which token; never a value), the check that a token can read the repository before
// it is stored, and the env endpoints:
//   GET    /projects/:name/env                 what is set, by environment, and the env's version
//   PUT    /projects/:name/env/:variable       {value, target: production|preview|all, or branch}
//   DELETE /projects/:name/env/:variable       ?target=production|preview|all or ?branch=<branch>
//   POST   /projects/:name/deploy-key          a new SSH deploy key (ed25519): 201 {publicKey, fingerprint}
//   DELETE /projects/:name/deploy-key
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import express, { type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import {
  BranchSchema,
  ConflictError,
  EnvSchema,
  InvalidInputError,
  NotFoundError,
  ProjectEnvSchema,
  openPreviewPassword,
  openProjectEnv,
  projectKey,
  sealGitAuth,
  sealForgeAuth,
  sealNotifications,
  sealPreviewPassword,
  sealProjectEnv,
  sealedPlace,
  type Config,
  type CreateProject,
  type GitAuth,
  type ProjectEnv,
  type ProjectRecord,
  type Projects,
  type StoredChange,
  type StoredProject,
  type UpdateProject,
} from '@slipway/shared';
import { checkAccess } from '../deploy/clone';
import { describeIssues } from '../deploy/deploy';
import type { RepoTarget } from '../deploy/url-policy';

/** Who made a change, as the env listing names it: the API token's id (its hash's first 12 hex digits), never the token. */
export function tokenId(req: Request): string {
  const token = /^Bearer +(\S+)$/i.exec(req.get('authorization') ?? '')?.[1];
  return token ? `token ${createHash('sha256').update(token).digest('hex').slice(0, 12)}` : 'anonymous';
}

/** What a new project stores: its settings, and its secrets sealed. */
export function storedCreate(input: CreateProject, config: Config, by: string): StoredProject {
  const { env, gitAuth, forkEnv, forge, notifications, previewPassword, ...settings } = input;
  if (env || gitAuth || forge || notifications?.length || previewPassword) config.secrets.ensureEnabled();
  return {
    ...settings,
    ...(env ? sealProjectEnv(input.name, env, config.secrets, by) : {}),
    ...(gitAuth ? sealGitAuth(input.name, gitAuth, config.secrets) : {}),
    ...(forge ? sealForgeAuth(input.name, forge, config.secrets) : {}),
    ...(notifications?.length ? sealNotifications(input.name, notifications, config.secrets) : {}),
    ...(forkEnv ? { forkEnv: '1' as const } : {}),
    ...(previewPassword ? sealPreviewPassword(input.name, previewPassword, config.secrets) : {}),
  };
}

/** What a change stores: null clears; a new env keeps the entries of values that did not change. */
export function storedChange(change: UpdateProject, current: ProjectRecord, config: Config, by: string): StoredChange {
  const { env, gitAuth, forkEnv, forge, notifications, previewPassword, ...rest } = change;
  const out: StoredChange = { ...rest };
  if (env || gitAuth || forge || notifications?.length || previewPassword) config.secrets.ensureEnabled();
  if (previewPassword === null) Object.assign(out, { previewPassword: null, previewStamp: null });
  // The same password again (a PATCH repeated after a lost answer) changes nothing: no one is signed out.
  else if (previewPassword && openPreviewPassword(current, config.secrets) !== previewPassword) Object.assign(out, sealPreviewPassword(current.name, previewPassword, config.secrets));
  if (notifications !== undefined) Object.assign(out, sealNotifications(current.name, notifications ?? [], config.secrets));
  if (forge === null) Object.assign(out, { forgeApiUrl: null, forgeToken: null });
  else if (forge) Object.assign(out, sealForgeAuth(current.name, forge, config.secrets));
  if (env === null) Object.assign(out, { sealedEnv: null, envMeta: null, env: null });
  else if (env) Object.assign(out, sealProjectEnv(current.name, env, config.secrets, by, before(current, config)), { env: null });
  if (gitAuth === null) Object.assign(out, { gitUser: null, gitToken: null });
  else if (gitAuth) Object.assign(out, sealGitAuth(current.name, gitAuth, config.secrets));
  if (forkEnv !== undefined) out.forkEnv = forkEnv ? '1' : null;
  return out;
}

function before(project: ProjectRecord, config: Config): { env: ProjectEnv; meta: ProjectRecord['envMeta'] & object } {
  return { env: openProjectEnv(project, config.secrets), meta: project.envMeta ?? [] };
}

const run = promisify(execFile);

/** A new ed25519 key pair in OpenSSH's formats (made by ssh-keygen in a folder of its own, removed at once). */
export async function makeDeployKey(config: Config, project: string): Promise<{ privateKey: string; publicKey: string; fingerprint: string }> {
  const work = await mkdtemp(path.join(config.workDir ?? tmpdir(), `slipway-clone-${process.pid}-`));
  try {
    const file = path.join(work, 'key');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `slipway-${project}`, '-f', file], { timeout: 10_000 });
    const [privateKey, publicKey] = await Promise.all([readFile(file, 'utf8'), readFile(`${file}.pub`, 'utf8')]);
    const { stdout } = await run('ssh-keygen', ['-l', '-f', `${file}.pub`], { timeout: 10_000 });
    return { privateKey, publicKey: publicKey.trim(), fingerprint: stdout.split(' ')[1] ?? '' };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Checks that `auth` can read the repository (git ls-remote) before it is stored; CloneFailedError (422) naming the host, never the token. */
export async function verifyAccess(config: Config, target: RepoTarget, auth: GitAuth): Promise<void> {
  const work = await mkdtemp(path.join(config.workDir ?? tmpdir(), `slipway-clone-${process.pid}-`));
  try {
    const scratch = path.join(work, 'check');
    await mkdir(scratch);
    await checkAccess(target, { kind: 'token', auth }, scratch, config.cloneTimeoutMs);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The secrets part of a project as the API shows it. */
export function secretsView(project: ProjectRecord) {
  const meta = project.envMeta ?? Object.keys(project.env ?? {}).flatMap((name) => (['production', 'preview'] as const).map((target) => ({ name, target, updatedAt: project.updatedAt, by: 'unknown' })));
  const names = (target: string, branch?: string) => meta.filter((e) => e.target === target && (e as { branch?: string }).branch === branch).map((e) => e.name);
  const branches = [...new Set(meta.map((e) => (e as { branch?: string }).branch).filter((b): b is string => b !== undefined))].sort();
  return {
    envNames: [...new Set(meta.map((e) => e.name))].sort(),
    env: { version: project.envVersion ?? 0, production: names('production'), preview: names('preview'), branches: Object.fromEntries(branches.map((b) => [b, names('branch', b)])) },
    gitAuth: project.gitUser !== undefined ? { username: project.gitUser, set: true } : null,
    deployKey: project.deployKeyPublic !== undefined ? { publicKey: project.deployKeyPublic } : null,
    forge: project.forgeToken !== undefined ? { apiUrl: project.forgeApiUrl ?? null, set: true } : null,
    notifications: project.notificationsMeta ?? [],
    forkEnv: project.forkEnv === '1',
    // Whether previews ask for a password (or a share link); a stamp without one: closed until a password is set.
    previewProtection: project.previewStamp !== undefined ? { enabled: true, passwordSet: project.previewPassword !== undefined } : { enabled: false, passwordSet: false },
  };
}

/** The project fields never shown, sealed or not. */
export const HIDDEN_FIELDS = ['env', 'sealedEnv', 'envMeta', 'envVersion', 'gitUser', 'gitToken', 'deployKey', 'deployKeyPublic', 'forgeApiUrl', 'forgeToken', 'sealedNotifications', 'notificationsMeta', 'forkEnv', 'previewPassword', 'previewStamp', 'hookSecret'] as const;

const SetSchema = z
  .strictObject({
    value: z.string({ error: 'value is required: the variable\'s value, a string' }),
    target: z.enum(['production', 'preview', 'all'], { error: 'target is production, preview or all (both)' }).optional(),
    branch: BranchSchema.optional(),
  })
  .refine((b) => !(b.target && b.branch), 'give target or branch, not both: a branch\'s value overrides preview for that branch');

const RemoveSchema = z.strictObject({
  target: z.enum(['production', 'preview', 'all']).optional(),
  branch: BranchSchema.optional(),
});

/** How many times a change is tried again when another change of the same env came first. */
const SWAP_TRIES = 5;

export function envRouter(deps: { config: Config; projects: Projects }, guards: { change: RequestHandler[]; read: RequestHandler }, mustGet: (name: string) => Promise<ProjectRecord>): express.Router {
  const { config, projects } = deps;
  const router = express.Router();
  router.get('/projects/:name/env', guards.read, async (req, res) => {
    const project = await mustGet(String(req.params.name));
    const view = secretsView(project);
    res.json({ ...view.env, variables: project.envMeta ?? [] });
  });

  router.put('/projects/:name/env/:variable', ...guards.change, async (req, res) => {
    const variable = checkedName(String(req.params.variable));
    const body = SetSchema.safeParse(req.body ?? {});
    if (!body.success) throw new InvalidInputError(describeIssues(body.error.issues));
    const { value, target = 'all', branch } = body.data;
    checkValue(variable, value);
    const project = await change(String(req.params.name), tokenId(req), (env) => {
      if (branch) env.branches[branch] = { ...env.branches[branch], [variable]: value };
      else for (const t of target === 'all' ? (['production', 'preview'] as const) : [target]) env[t][variable] = value;
    });
    res.json({ ...secretsView(project).env, variables: project.envMeta ?? [] });
  });

  router.delete('/projects/:name/env/:variable', ...guards.change, async (req, res) => {
    const variable = checkedName(String(req.params.variable));
    const query = RemoveSchema.safeParse(req.query);
    if (!query.success) throw new InvalidInputError(describeIssues(query.error.issues));
    const { target, branch } = query.data;
    let removed = 0;
    const project = await change(String(req.params.name), tokenId(req), (env) => {
      const from = (values: Record<string, string>) => {
        if (variable in values) removed++;
        delete values[variable];
      };
      if (branch) from(env.branches[branch] ?? {});
      else if (target === 'production' || target === 'preview') from(env[target]);
      else {
        // Everywhere it is set, branches too, unless a target was named.
        from(env.production);
        from(env.preview);
        if (!target) for (const values of Object.values(env.branches)) from(values);
      }
      for (const [b, values] of Object.entries(env.branches)) if (Object.keys(values).length === 0) delete env.branches[b];
    });
    if (removed === 0) throw new NotFoundError(`${variable} is not set there in project ${project.name}`);
    res.json({ ...secretsView(project).env, variables: project.envMeta ?? [] });
  });

  router.post('/projects/:name/deploy-key', ...guards.change, async (req, res) => {
    const project = await mustGet(String(req.params.name));
    config.secrets.ensureEnabled();
    const key = await makeDeployKey(config, project.name);
    const sealed = config.secrets.seal(key.privateKey, sealedPlace(projectKey(project.name), 'deployKey'));
    if ((await projects.update(project.name, { deployKey: sealed, deployKeyPublic: key.publicKey })) === 'no-project') throw new NotFoundError(`no project named ${project.name}`);
    res.status(201).json({
      publicKey: key.publicKey,
      fingerprint: key.fingerprint,
      message: `add publicKey to the repository as a deploy key (read access is enough); ${project.deployKey ? 'it replaces the project\'s previous key, which no longer works' : 'the project then clones its ssh:// or git@host:path repoUrl with it'}`,
    });
  });

  router.delete('/projects/:name/deploy-key', ...guards.change, async (req, res) => {
    const project = await mustGet(String(req.params.name));
    if (!project.deployKey) throw new NotFoundError(`project ${project.name} has no deploy key`);
    await projects.update(project.name, { deployKey: null, deployKeyPublic: null });
    res.status(204).end();
  });
  return router;

  /** Reads, changes and writes the env, again when another change came first; the project after. */
  async function change(name: string, by: string, edit: (env: ProjectEnv) => void): Promise<ProjectRecord> {
    config.secrets.ensureEnabled();
    for (let attempt = 0; attempt < SWAP_TRIES; attempt++) {
      const project = await mustGet(name);
      const env = openProjectEnv(project, config.secrets);
      const next: ProjectEnv = structuredClone(env);
      edit(next);
      // Nothing to change (a variable that was not there): nothing written, no new version.
      if (JSON.stringify(next) === JSON.stringify(env)) return project;
      const checked = ProjectEnvSchema.safeParse(next);
      if (!checked.success) throw new InvalidInputError(describeIssues(checked.error.issues.map((i) => ({ ...i, path: ['env', ...i.path] }))));
      const fields = sealProjectEnv(name, checked.data, config.secrets, by, { env, meta: project.envMeta ?? [] });
      const result = await projects.swapEnv(name, project.sealedEnv ?? '', fields);
      if (result === 'no-project') throw new NotFoundError(`no project named ${name}`);
      if (result === 'ok') return mustGet(name);
    }
    throw new ConflictError(`the env of project ${name} kept changing while this change was made; try again`);
  }
}

function checkedName(variable: string): string {
  const parsed = EnvSchema.safeParse({ [variable]: '' });
  if (!parsed.success) throw new InvalidInputError(`${JSON.stringify(variable.slice(0, 130))}: ${parsed.error.issues[0]?.message ?? 'not a variable name'}`);
  return variable;
}

function checkValue(variable: string, value: string): void {
  const parsed = EnvSchema.safeParse({ [variable]: value });
  if (!parsed.success) throw new InvalidInputError(`value: ${parsed.error.issues[0]?.message ?? 'not a value'}`);
}

// A project's secrets: its environment variables by environment and its git credentials, kept in
// the `project:<name>` hash, sealed (secrets/seal.ts) for places named by that key and the field:
//   sealedEnv        sealed JSON {production, preview, branches: {<branch>: {...}}}
//   envMeta          plain JSON [{name, target, branch?, updatedAt, by}]: what is set, never a value
//   envVersion       a count of env changes; each deployment records the one it built with
//   gitUser          the access token's user name (plain); gitToken: the token, sealed
//   deployKey        the SSH deploy key's private half, sealed; deployKeyPublic: its public half
//   forkEnv          '1': deployments from another repository than the project's get the env too
//   previewPassword  the password previews ask for, sealed; previewStamp: random, made anew with each
//                    password and each revocation, signed into every preview cookie and share link
//                    (sites/protect.ts), so a new one ends them all. A stamp without a password keeps
//                    previews closed (a project restored from S3, whose password never left Redis)
// A deployment keeps a sealed copy of the values it built with (record.ts), so a redeploy or a
// rollback builds with the same values whatever changed since.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { BranchSchema, EnvSchema } from '../deployment/request';
import { jsonField } from '../deployment/record';
import { projectKey } from '../keys';
import { sealedPlace } from '../secrets/keyring';
import type { Secrets } from '../secrets/seal';

export const ENVIRONMENTS = ['production', 'preview'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];
export const MAX_BRANCH_ENVS = 50;

const NestedEnvSchema = z.strictObject({
  production: EnvSchema.default({}),
  preview: EnvSchema.default({}),
  branches: z
    .record(BranchSchema, EnvSchema)
    .refine((b) => Object.keys(b).length <= MAX_BRANCH_ENVS, `env.branches holds at most ${MAX_BRANCH_ENVS} branches`)
    .default({}),
});

/**
 * A project's env as a request gives it: `{production, preview, branches}`, or one flat map of
 * names to values, which both environments get. `branches` override preview for those branches.
 */
export const ProjectEnvSchema = z.preprocess((v) => (isFlat(v) ? { production: { ...(v as object) }, preview: { ...(v as object) } } : v), NestedEnvSchema);
export type ProjectEnv = z.output<typeof NestedEnvSchema>;

function isFlat(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

/** A token a forge gave: visible ASCII only, so it can end no line of git's credential protocol or an HTTP header. */
function accessToken(field: string, what: string) {
  return z
    .string({ error: `${field} is required (${what})` })
    .min(1)
    .max(4096)
    .regex(/^[\x21-\x7e]+$/, `${field} is visible ASCII, without spaces or line breaks`);
}

/** Credentials for HTTPS: a forge user name and an access token. Nothing in them may end a line of git's credential protocol. */
export const GitAuthSchema = z.strictObject({
  username: z
    .string({ error: 'gitAuth.username is required (the forge user, e.g. x-access-token or oauth2)' })
    .min(1)
    .max(256)
    .regex(/^[^\s:/@\\]+$/, 'gitAuth.username has no spaces, colons, slashes or @'),
  token: accessToken('gitAuth.token', 'an access token'),
});
export type GitAuth = z.output<typeof GitAuthSchema>;

/**
 * A forge API token for commit statuses and pull-request comments (notify/), and the forge's API base
 * URL when it is not the default (GitHub Enterprise, a self-hosted GitLab). The token is sealed.
 */
export const ForgeAuthSchema = z.strictObject({
  apiUrl: z
    .url({ protocol: /^https?$/, error: 'forge.apiUrl is an http(s) URL such as https://api.github.com or https://gitlab.example.com/api/v4' })
    .max(500)
    .refine((u) => { const url = new URL(u); return !url.username && !url.password && !url.search && !url.hash; }, 'forge.apiUrl has no credentials, query or fragment')
    .transform((u) => u.replace(/\/+$/, ''))
    .optional(),
  token: accessToken('forge.token', 'a token that may write commit statuses and comments'),
});
export type ForgeAuth = z.output<typeof ForgeAuthSchema>;

/** The password a project's previews ask for (sites/protect.ts); null clears it and opens the previews. */
export const PreviewPasswordSchema = z
  .string({ error: 'previewPassword is a string of 8 to 256 characters' })
  .min(8, 'previewPassword has at least 8 characters')
  .max(256, 'previewPassword has at most 256 characters')
  .refine((p) => !/[\x00-\x1f\x7f]/.test(p), 'previewPassword has no control characters');

export const NOTIFY_EVENTS = ['queued', 'building', 'deployed', 'failed', 'canceled', 'skipped', 'promoted', 'rolled-back'] as const;
export const MAX_NOTIFICATIONS = 10;

/** A project's outgoing webhooks: each delivery is signed with its secret (sealed, never shown again). */
export const NotificationsSchema = z
  .array(
    z.strictObject({
      url: z.url({ protocol: /^https?$/, error: 'notifications[].url is an http(s) URL' }).max(2000),
      secret: z
        .string({ error: 'notifications[].secret is required (16 to 256 visible characters: the key of the X-Slipway-Signature HMAC)' })
        .min(16, 'notifications[].secret has at least 16 characters')
        .max(256)
        .regex(/^[\x21-\x7e]+$/, 'notifications[].secret is visible ASCII, without spaces'),
      /** The events it is sent (default: all of them). */
      events: z.array(z.enum(NOTIFY_EVENTS)).min(1).optional(),
    }),
  )
  .max(MAX_NOTIFICATIONS, `a project has at most ${MAX_NOTIFICATIONS} notifications`);
export type Notification = z.output<typeof NotificationsSchema>[number];

const EnvEntrySchema = z.object({ name: z.string(), target: z.enum(['production', 'preview', 'branch']), branch: z.string().optional(), updatedAt: z.string(), by: z.string() });
export type EnvEntry = z.output<typeof EnvEntrySchema>;

/** The project hash's secret fields (as stored), for ProjectRecordSchema. */
export const projectSecretFields = {
  sealedEnv: z.string().optional(),
  envMeta: jsonField(z.array(EnvEntrySchema)).optional(),
  envVersion: z.coerce.number().int().min(0).optional(),
  gitUser: z.string().optional(),
  gitToken: z.string().optional(),
  deployKey: z.string().optional(),
  deployKeyPublic: z.string().optional(),
  forgeApiUrl: z.string().optional(),
  forgeToken: z.string().optional(),
  /** The notifications, sealed whole; notificationsMeta: their URLs and events (plain, for the view). */
  sealedNotifications: z.string().optional(),
  notificationsMeta: jsonField(z.array(z.object({ url: z.string(), events: z.array(z.string()).optional() }))).optional(),
  forkEnv: z.literal('1').optional(),
  previewPassword: z.string().optional(),
  previewStamp: z.string().optional(),
};

type Stored = { [K in keyof typeof projectSecretFields]?: z.output<(typeof projectSecretFields)[K]> } & { name: string; env?: Record<string, string> };

/** The project's env, opened (legacy projects kept one plain map for every branch). */
export function openProjectEnv(project: Stored, secrets: Secrets): ProjectEnv {
  if (project.sealedEnv !== undefined) return JSON.parse(secrets.open(project.sealedEnv, sealedPlace(projectKey(project.name), 'sealedEnv'))) as ProjectEnv;
  const flat = project.env ?? {};
  return { production: { ...flat }, preview: { ...flat }, branches: {} };
}

/**
 * The fields that store `env` for project `name`, with what is set, when and by whom (`by`: the API
 * token's id). A value that `before` already held keeps its entry (when and by whom it was set).
 */
export function sealProjectEnv(name: string, env: ProjectEnv, secrets: Secrets, by: string, before?: { env: ProjectEnv; meta: readonly EnvEntry[] }, now = new Date()): { sealedEnv: string; envMeta: EnvEntry[] } {
  const entries: EnvEntry[] = [];
  const add = (values: Record<string, string>, target: EnvEntry['target'], branch?: string) => {
    const was = before && (target === 'branch' ? before.env.branches[branch!] : before.env[target]);
    for (const entryName of Object.keys(values).sort()) {
      const old = was?.[entryName] === values[entryName] ? before!.meta.find((e) => e.name === entryName && e.target === target && e.branch === branch) : undefined;
      entries.push(old ?? { name: entryName, target, ...(branch ? { branch } : {}), updatedAt: now.toISOString(), by });
    }
  };
  add(env.production, 'production');
  add(env.preview, 'preview');
  for (const branch of Object.keys(env.branches).sort()) add(env.branches[branch]!, 'branch', branch);
  return { sealedEnv: secrets.seal(JSON.stringify(env), sealedPlace(projectKey(name), 'sealedEnv')), envMeta: entries };
}

/** What a deployment of the project builds with: production's env, or preview's with the branch's own over it; none for a fork unless opted in. */
export function envForDeployment(env: ProjectEnv, deployment: { branch: string; production: boolean; fork: boolean }, forkEnv: boolean): Record<string, string> {
  if (deployment.fork && !forkEnv) return {};
  if (deployment.production) return { ...env.production };
  return { ...env.preview, ...(env.branches[deployment.branch] ?? {}) };
}

/** The project's access token, opened; null without one. */
export function openGitAuth(project: Stored, secrets: Secrets): GitAuth | null {
  if (project.gitUser === undefined || project.gitToken === undefined) return null;
  return { username: project.gitUser, token: secrets.open(project.gitToken, sealedPlace(projectKey(project.name), 'gitToken')) };
}

/** The project's forge token (and API URL, when it set one), opened; null without a token. */
export function openForgeAuth(project: Stored, secrets: Secrets): ForgeAuth | null {
  if (project.forgeToken === undefined) return null;
  return { apiUrl: project.forgeApiUrl, token: secrets.open(project.forgeToken, sealedPlace(projectKey(project.name), 'forgeToken')) };
}

export function sealForgeAuth(name: string, forge: ForgeAuth, secrets: Secrets): { forgeApiUrl: string | null; forgeToken: string } {
  return { forgeApiUrl: forge.apiUrl ?? null, forgeToken: secrets.seal(forge.token, sealedPlace(projectKey(name), 'forgeToken')) };
}

export function openNotifications(project: Stored, secrets: Secrets): Notification[] {
  if (project.sealedNotifications === undefined) return [];
  return JSON.parse(secrets.open(project.sealedNotifications, sealedPlace(projectKey(project.name), 'sealedNotifications'))) as Notification[];
}

export function sealNotifications(name: string, list: Notification[], secrets: Secrets): { sealedNotifications: string | null; notificationsMeta: { url: string; events?: string[] }[] | null } {
  if (list.length === 0) return { sealedNotifications: null, notificationsMeta: null };
  return {
    sealedNotifications: secrets.seal(JSON.stringify(list), sealedPlace(projectKey(name), 'sealedNotifications')),
    notificationsMeta: list.map((n) => ({ url: n.url, ...(n.events ? { events: n.events } : {}) })),
  };
}

/** The project's preview password, opened; null without one. */
export function openPreviewPassword(project: Stored, secrets: Secrets): string | null {
  if (project.previewPassword === undefined) return null;
  return secrets.open(project.previewPassword, sealedPlace(projectKey(project.name), 'previewPassword'));
}

/** The fields that store a new preview password, with a new stamp (every cookie and share link made before stops working). */
export function sealPreviewPassword(name: string, password: string, secrets: Secrets): { previewPassword: string; previewStamp: string } {
  return { previewPassword: secrets.seal(password, sealedPlace(projectKey(name), 'previewPassword')), previewStamp: newPreviewStamp() };
}

export function newPreviewStamp(): string {
  return randomBytes(16).toString('base64url');
}

export function sealGitAuth(name: string, auth: GitAuth, secrets: Secrets): { gitUser: string; gitToken: string } {
  return { gitUser: auth.username, gitToken: secrets.seal(auth.token, sealedPlace(projectKey(name), 'gitToken')) };
}

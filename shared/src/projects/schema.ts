// Projects: a name (a host-name label), a repository and the build settings every deployment of it
// uses; the request schemas for creating and changing one, the stored record, and the host-safe
// label of a branch alias (`<branch>--<project>.<BASE_DOMAIN>`).
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { jsonField } from '../deployment/record';
import { DeployRequestSchema, SOURCE_SCOPES } from '../deployment/request';
import { WatchPathsSchema } from './watch';
import { ForgeAuthSchema, GitAuthSchema, NotificationsSchema, PreviewPasswordSchema, ProjectEnvSchema, projectSecretFields } from './secrets';

/** Deployment ids are 10+ lowercase letters and digits: a project name must never look like one. */
const LOOKS_LIKE_DEPLOYMENT_ID = /^[a-z][a-z0-9]{9,}$/;
/** Host names an operator may give the platform itself under BASE_DOMAIN: never a site. */
const RESERVED_NAMES = new Set(['api', 'www', 'app', 'admin', 'dashboard', 'slipway', 'status', 'static', 'assets', 'mail']);

export const ProjectNameSchema = z
  .string({ error: 'name is required: a host-name label such as my-site' })
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/, 'name is a host-name label: lowercase letters, digits and hyphens, at most 40, not starting or ending with a hyphen')
  .refine((n) => !n.includes('--'), 'name must not contain "--" (it separates a branch from the project in alias host names)')
  .refine((n) => !LOOKS_LIKE_DEPLOYMENT_ID.test(n), 'name must not look like a deployment id (10 or more letters and digits without a hyphen): add a hyphen')
  .refine((n) => !RESERVED_NAMES.has(n), `name is one of ${[...RESERVED_NAMES].join(', ')}, kept for the platform's own host names under BASE_DOMAIN`);

export const MAX_DOMAINS = 20;

/** A custom host name for a project's production site: a DNS name of two or more labels, no port. */
export const DomainSchema = z
  .string()
  .max(253)
  .transform((v) => v.toLowerCase().replace(/\.$/, ''))
  .refine((v) => /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(v), 'domains are host names such as www.example.com (no scheme, port or path)');
const DomainsSchema = z
  .array(DomainSchema)
  .max(MAX_DOMAINS, `a project has at most ${MAX_DOMAINS} domains`)
  .transform((list) => [...new Set(list)]);

const settings = DeployRequestSchema.pick({ repoUrl: true, rootDir: true, installCommand: true, buildCommand: true, outputDir: true, nodeVersion: true, spaFallback: true, buildMemoryMb: true, sourceScope: true }).extend({
  productionBranch: DeployRequestSchema.shape.branch,
  env: ProjectEnvSchema.optional(),
  /** An access token for an HTTPS repository that is not public; never shown again. */
  gitAuth: GitAuthSchema.optional(),
  /** A forge token (and API URL) for commit statuses and pull-request comments; never shown again. */
  forge: ForgeAuthSchema.optional(),
  /** Webhooks for deployment events, each signed with its own secret. */
  notifications: NotificationsSchema.optional(),
  /** Previews (every host but production's and the custom domains) ask for it; sealed, never shown again. */
  previewPassword: PreviewPasswordSchema.optional(),
  /** What a pushed commit must change to be built (projects/watch.ts); default: what the build reads. */
  watchPaths: WatchPathsSchema.optional(),
  /** Whether deployments from another repository (a fork's pull request) get the env; off by default. */
  forkEnv: z.boolean({ error: 'forkEnv is true or false' }).optional(),
  domains: DomainsSchema.optional(),
});

export const CreateProjectSchema = z.strictObject({ name: ProjectNameSchema, ...settings.shape });
/** A change: any setting; null clears an optional one. */
export const UpdateProjectSchema = z.strictObject({
  repoUrl: settings.shape.repoUrl.optional(),
  productionBranch: settings.shape.productionBranch.unwrap().optional(),
  rootDir: settings.shape.rootDir.unwrap().nullable().optional(),
  installCommand: settings.shape.installCommand.unwrap().nullable().optional(),
  buildCommand: settings.shape.buildCommand.unwrap().nullable().optional(),
  outputDir: settings.shape.outputDir.unwrap().nullable().optional(),
  nodeVersion: settings.shape.nodeVersion.unwrap().nullable().optional(),
  spaFallback: settings.shape.spaFallback.unwrap().nullable().optional(),
  buildMemoryMb: settings.shape.buildMemoryMb.unwrap().nullable().optional(),
  sourceScope: settings.shape.sourceScope.unwrap().nullable().optional(),
  env: ProjectEnvSchema.nullable().optional(),
  gitAuth: GitAuthSchema.nullable().optional(),
  forge: ForgeAuthSchema.nullable().optional(),
  notifications: NotificationsSchema.nullable().optional(),
  previewPassword: PreviewPasswordSchema.nullable().optional(),
  watchPaths: WatchPathsSchema.nullable().optional(),
  forkEnv: settings.shape.forkEnv.unwrap().nullable().optional(),
  domains: DomainsSchema.nullable().optional(),
});
export const ProjectDeploySchema = z.strictObject({
  branch: DeployRequestSchema.shape.branch,
  commit: DeployRequestSchema.shape.commit,
  /** Another repository (a fork's) to build as a preview of the project: a public https one. */
  repoUrl: DeployRequestSchema.shape.repoUrl.optional(),
});

export type CreateProject = z.output<typeof CreateProjectSchema>;
export type UpdateProject = z.output<typeof UpdateProjectSchema>;

/** The `project:<name>` hash. */
export const ProjectRecordSchema = z.object({
  name: z.string(),
  repoUrl: z.string(),
  productionBranch: z.string(),
  rootDir: z.string().optional(),
  installCommand: jsonField(z.array(z.string())).optional(),
  buildCommand: jsonField(z.array(z.string())).optional(),
  outputDir: z.string().optional(),
  nodeVersion: z.string().optional(),
  spaFallback: z.string().optional(),
  buildMemoryMb: z.coerce.number().int().positive().optional(),
  sourceScope: z.enum(SOURCE_SCOPES).optional(),
  watchPaths: jsonField(z.array(z.string())).optional(),
  /** Only in projects from before sealing: one plain env for every branch (sealed at the next start). */
  env: jsonField(z.record(z.string(), z.string())).optional(),
  ...projectSecretFields,
  /** Custom host names that serve production (each also in the `domains` hash, owned by one project). */
  domains: jsonField(z.array(z.string())).optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  /** Signs and authenticates push hooks (GitHub's HMAC key, GitLab's token); shown only when made. */
  hookSecret: z.string().optional(),
  /** The deployment `<name>.<BASE_DOMAIN>` serves. */
  production: z.string().optional(),
  /** Its createdAt (ms): a slower, older build finishing later never takes the alias back. */
  productionAt: z.coerce.number().optional(),
  /** '1' after a rollback: new production builds leave the alias alone until a promote. */
  pinned: z.literal('1').optional(),
});
export type ProjectRecord = z.output<typeof ProjectRecordSchema>;

export const MAX_LABEL = 63;

/**
 * A branch as the host-name label `<branch>--<project>` uses: lowercase letters, digits and single
 * hyphens. When that loses anything (`feature/a` and `feature-a` would meet) or must be cut short,
 * six hex digits of the branch name's hash are added, so two branches never share an alias.
 */
export function branchLabel(branch: string, project: string): string {
  const label = slugLabel(branch, project);
  // `pr-<n>` and `fork-<hex>` name pull requests' and forks' previews: a branch called so gets a hash.
  return RESERVED_LABEL.test(label) ? `${label.slice(0, MAX_LABEL - project.length - 9)}-${createHash('sha256').update(branch).digest('hex').slice(0, 6)}` : label;
}

/** The alias label of a pull request's (or merge request's) preview. */
export function pullRequestLabel(number: number): string {
  return `pr-${number}`;
}

const RESERVED_LABEL = /^(pr-[0-9]+|fork-[0-9a-f]{6})$/;

function slugLabel(branch: string, project: string): string {
  const slug = branch
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
  const room = MAX_LABEL - project.length - 2;
  if (slug === branch && slug.length <= room && !slug.includes('--')) return slug;
  const hash = createHash('sha256').update(branch).digest('hex').slice(0, 6);
  return `${slug.slice(0, Math.max(0, room - 7)).replace(/-$/, '')}-${hash}`.replace(/^-/, '');
}

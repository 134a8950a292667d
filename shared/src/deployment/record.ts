// The deployment record: the schema of the `deployment:<id>` hash, and its conversion to and from
// the flat strings Redis stores. Key names live in keys.ts, writes in queue/.
import { z } from 'zod';
import { BUILD_ID_PATTERN } from './ids';
import { SOURCE_SCOPES } from './request';
import { MAX_WARNINGS, MAX_WARNING_CHARS } from '../site/warnings';
import { recordKey } from '../keys';
import { sealedPlace } from '../secrets/keyring';
import type { Secrets } from '../secrets/seal';

export const STATUSES = ['uploading', 'queued', 'building', 'deployed', 'failed', 'canceled', 'skipped'] as const;
export type Status = (typeof STATUSES)[number];
/** `skipped`: a pushed commit that changed none of its project's watchPaths, never built (projects/watch.ts). */
export const FINAL_STATUSES: readonly Status[] = ['deployed', 'failed', 'canceled', 'skipped'];

const count = z.coerce.number().int().min(0);
/** A hash field holding JSON, parsed and then checked by `schema` (arrays and objects are stored so). */
export const jsonField = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

const argv = jsonField(z.array(z.string()).min(1));
const envJson = jsonField(z.record(z.string(), z.string()));

/**
 * Where a hook's commit lives on its forge: the repository that gets the commit statuses and, for a
 * pull request (GitHub) or merge request (GitLab), its number, whose one comment links the preview.
 * `repo` is GitHub's `owner/name` or GitLab's project path (`group/sub/name`).
 */
export const ForgeRefSchema = z.strictObject({
  kind: z.enum(['github', 'gitlab']),
  repo: z.string().min(3).max(300).regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)+$/),
  pr: z.number().int().positive().max(1e9).optional(),
});
export type ForgeRef = z.output<typeof ForgeRefSchema>;

export const DeploymentRecordSchema = z.object({
  id: z.string(),
  repoUrl: z.string(),
  branch: z.string().optional(),
  commit: z.string().optional(),
  rootDir: z.string().optional(),
  installCommand: argv.optional(),
  buildCommand: argv.optional(),
  outputDir: z.string().optional(),
  /**
   * The build's own environment variables, sealed (secrets/seal.ts, for `deployment:<id>:sealedEnv`):
   * never logged, never shown by the API; envNames are their names.
   */
  sealedEnv: z.string().optional(),
  envNames: jsonField(z.array(z.string())).optional(),
  /** The version of its project's env it was given (projects/secrets.ts). */
  envVersion: z.coerce.number().int().min(0).optional(),
  /** The same, plain: only in records from before sealing (sealed at the next start with SECRETS_KEY). */
  env: envJson.optional(),
  nodeVersion: z.string().optional(),
  buildMemoryMb: z.coerce.number().int().positive().optional(),
  sourceScope: z.enum(SOURCE_SCOPES).optional(),
  /** A page at the output's root served for routes that have no file (instead of index.html). */
  spaFallback: z.string().optional(),
  /** false: the build neither uses nor saves the build cache. */
  cache: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
  status: z.enum(STATUSES),
  attempts: count.default(0),
  error: z.string().optional(),
  worker: z.string().optional(),
  /** The mark the outcome's SETTLE left ("<slot> <status> <build>"), so a repeat of it after a lost reply is known. */
  settled: z.string().optional(),
  /** The build a deployed build replaced as live, for a repeated SETTLE to answer the same. */
  replacedBuild: z.string().regex(BUILD_ID_PATTERN).optional(),
  createdAt: z.string(),
  queuedAt: z.string().optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  url: z.string(),
  /**
   * How the source is stored: `tar.gz`, one archive (`source/<id>/source.tar.gz`); absent, a file per
   * object under `source/<id>/` (every deployment before the archive, readable until retention removes it).
   */
  sourceFormat: z.enum(['tar.gz']).optional(),
  sourceFiles: count.optional(),
  sourceBytes: count.optional(),
  outputFiles: count.optional(),
  outputBytes: count.optional(),
  /** What the deployed build's _redirects and _headers asked for that was skipped (site/warnings.ts), written by its SETTLE. */
  warnings: jsonField(z.array(z.string().max(MAX_WARNING_CHARS)).max(MAX_WARNINGS)).optional(),
  /** The build whose output the site serves (`dist/<id>/<liveBuild>/`); switched only by a recorded `deployed`. */
  liveBuild: z.string().regex(BUILD_ID_PATTERN).optional(),
  /** Until when (ms) retention keeps it: an address served it until lately (skew protection, SETTLE and POINT). */
  skewUntil: z.coerce.number().optional(),
  /** '1' once retention has chosen to remove it: nothing may point at it or rebuild it any more. */
  removing: z.literal('1').optional(),
  /** The project this deployment belongs to, its branch's alias label, and '1' when it builds the production branch. */
  project: z.string().optional(),
  aliasLabel: z.string().optional(),
  production: z.literal('1').optional(),
  /** Set by a forge's hook: where the commit statuses and the pull request's comment go. */
  forge: jsonField(ForgeRefSchema).optional(),
  /**
   * What a project deployment's source held at its watched paths (projects/watch.ts): each path's git
   * object id (null when missing) and a digest of the settings it builds with, for the next push to compare.
   */
  watched: jsonField(z.object({ paths: z.array(z.string()), ids: z.record(z.string(), z.string().nullable()), settings: z.string() })).optional(),
  /** A skipped deployment's account: the deployment that still serves, and the paths compared with it. */
  skip: jsonField(z.object({ serving: z.string(), commit: z.string().optional(), compared: z.array(z.string()), message: z.string() })).optional(),
  /** When reconcile put the record back from S3 after Redis lost it (its env values were not restored). */
  restoredAt: z.string().optional(),
  /** Set while a cancel waits for the build's owner to stop it. */
  cancelRequested: z.literal('1').optional(),
});

export type DeploymentRecord = z.output<typeof DeploymentRecordSchema>;

/** Flattens record fields to the strings a Redis hash holds; undefined fields are left out. */
export function toHash(fields: Partial<DeploymentRecord> | Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out[key] = typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  return out;
}

/** Parses a hash read from Redis; null when the hash is empty (no such deployment) or malformed. */
export function fromHash(hash: Record<string, string>): DeploymentRecord | null {
  if (Object.keys(hash).length === 0) return null;
  const parsed = DeploymentRecordSchema.safeParse(hash);
  return parsed.success ? parsed.data : null;
}

/** A record as the API shows it: the env's names only, never its values, sealed or not. */
export function publicRecord(record: DeploymentRecord): Omit<DeploymentRecord, 'env' | 'sealedEnv'> {
  const { env, sealedEnv: _sealed, ...rest } = record;
  return env && !rest.envNames ? { ...rest, envNames: Object.keys(env).sort() } : rest;
}

/** A deployment's env values, opened (the worker's, to give its build). */
export function deploymentEnv(record: Pick<DeploymentRecord, 'id' | 'sealedEnv' | 'env'>, secrets: Secrets): Record<string, string> {
  if (record.sealedEnv === undefined) return record.env ?? {};
  return JSON.parse(secrets.open(record.sealedEnv, sealedPlace(recordKey(record.id), 'sealedEnv'))) as Record<string, string>;
}

/** The record fields that keep `env` for deployment `id`: sealed, with the names beside. */
export function sealDeploymentEnv(id: string, env: Record<string, string> | undefined, secrets: Secrets): Pick<DeploymentRecord, 'sealedEnv' | 'envNames'> {
  if (!env || Object.keys(env).length === 0) return {};
  return { sealedEnv: secrets.seal(JSON.stringify(env), sealedPlace(recordKey(id), 'sealedEnv')), envNames: Object.keys(env).sort() };
}

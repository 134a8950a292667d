// What S3 keeps of Redis's state so that losing Redis loses no site (reconcile.ts reads it back):
//   dist/<id>/<build>.json                   a deployment's facts as its build was published: the
//                                           record's settings, its project and alias, the build
//                                           (directly under dist/<id>/, so every S3 lists the id)
//   projects/<name>.json                     a project's settings, domains and production pin
// Neither holds a secret: env values, git credentials and hook secrets stay in Redis only (sealed;
// their names are kept, so what was lost can be named). A deployment's facts are written once, by publish, beside its manifest,
// and removed with its build; a project's copy is written after each change (the change marks it
// unsaved in the same Redis step, so a copy that failed is written again by the janitor).
import { z } from 'zod';
import { BUILD_ID_PATTERN } from '../deployment/ids';
import { ProjectRecordSchema } from '../projects/schema';
import type { Projects } from '../projects/store';
import { toHash, type DeploymentRecord } from '../deployment/record';
import type { Storage } from '../io/s3';

export const BACKUP_VERSION = 1;
/** Both copies are small JSON; a larger object is not one of ours. */
export const MAX_BACKUP_BYTES = 256 * 1024;

export const backupKeys = {
  facts: (id: string, build: string) => `dist/${id}/${build}.json`,
  projects: 'projects/',
  project: (name: string) => `projects/${name}.json`,
} as const;

/** The record fields a published deployment's facts keep (the rest is state, or secret). */
const FACT_FIELDS = [
  'id', 'repoUrl', 'branch', 'commit', 'rootDir', 'installCommand', 'buildCommand', 'outputDir', 'nodeVersion', 'spaFallback', 'buildMemoryMb', 'sourceScope', 'cache',
  'createdAt', 'url', 'sourceFiles', 'sourceBytes', 'project', 'aliasLabel', 'production', 'attempts',
] as const satisfies readonly (keyof DeploymentRecord)[];

/** The project fields its copy keeps: not `env` (values) nor `hookSecret`. */
const PROJECT_FIELDS = [
  'name', 'repoUrl', 'productionBranch', 'rootDir', 'installCommand', 'buildCommand', 'outputDir', 'nodeVersion', 'spaFallback', 'buildMemoryMb', 'sourceScope', 'watchPaths', 'domains',
  'createdAt', 'updatedAt', 'production', 'productionAt', 'pinned',
  // Not a secret (sites/protect.ts): restored, it keeps previews closed, and share links open, without the password.
  'previewStamp',
] as const satisfies readonly (keyof z.output<typeof ProjectRecordSchema>)[];

const HashSchema = z.record(z.string(), z.string());
/** Closed aliases a project's copy keeps (the newest). */
const MAX_CLOSED_ALIASES = 1000;

export const DeploymentFactsSchema = z.object({
  version: z.literal(BACKUP_VERSION),
  build: z.string().regex(BUILD_ID_PATTERN),
  publishedAt: z.string(),
  outputFiles: z.number().int().min(0),
  outputBytes: z.number().int().min(0),
  /** The names of the build's env variables; their values are never written to S3. */
  envNames: z.array(z.string()),
  /** The record's fields as Redis holds them (strings). */
  fields: HashSchema,
});
export type DeploymentFacts = z.output<typeof DeploymentFactsSchema>;

export const ProjectCopySchema = z.object({
  version: z.literal(BACKUP_VERSION),
  savedAt: z.string(),
  envNames: z.array(z.string()),
  /** Which credentials the project had (`gitAuth`, `deployKey`): named so a loss can be told, never kept. */
  credentials: z.array(z.string()).default([]),
  fields: HashSchema,
  /** Aliases closed (a closed pull request's) → when (ms): restored first, so no older deployment brings one back. */
  closed: z.record(z.string(), z.number()).default({}),
});
export type ProjectCopy = z.output<typeof ProjectCopySchema>;

export function deploymentFacts(record: DeploymentRecord, build: string, output: { files: number; bytes: number }, now = new Date()): DeploymentFacts {
  const kept = Object.fromEntries(FACT_FIELDS.map((field) => [field, record[field]]));
  return {
    version: BACKUP_VERSION,
    build,
    publishedAt: now.toISOString(),
    outputFiles: output.files,
    outputBytes: output.bytes,
    envNames: record.envNames ?? Object.keys(record.env ?? {}).sort(),
    fields: toHash(kept),
  };
}

/** Written by publish, after the build's files and before its manifest (which marks it complete). */
export async function writeDeploymentFacts(storage: Storage, facts: DeploymentFacts): Promise<void> {
  await storage.putText(backupKeys.facts(facts.fields.id!, facts.build), JSON.stringify(facts), 'application/json');
}

/**
 * Writes the S3 copy of a project as Redis holds it now (or removes it, the project gone), then
 * marks it saved unless it changed meanwhile. Safe to repeat; the janitor repeats what failed.
 */
export async function saveProjectCopy(projects: Projects, storage: Storage, name: string, now = new Date()): Promise<void> {
  const changes = await projects.changes(name);
  const hash = await projects.hash(name);
  if (Object.keys(hash).length === 0) {
    await storage.deletePrefix(backupKeys.project(name));
  } else {
    const fields = Object.fromEntries(PROJECT_FIELDS.filter((f) => hash[f] !== undefined).map((f) => [f, hash[f]!]));
    let envNames: string[] = [];
    try {
      // The names of a sealed env are in envMeta; a plain one (from before sealing) is its own list.
      const names = hash.envMeta !== undefined ? (JSON.parse(hash.envMeta) as { name: string }[]).map((e) => e.name) : Object.keys(JSON.parse(hash.env ?? '{}') as Record<string, unknown>);
      envNames = [...new Set(names)].sort();
    } catch {
      // An unreadable env is named as none; the record's own reads report it.
    }
    const credentials = [...(hash.gitToken ? ['gitAuth'] : []), ...(hash.deployKey ? ['deployKey'] : []), ...(hash.forgeToken ? ['forge'] : []), ...(hash.sealedNotifications ? ['notifications'] : []), ...(hash.previewPassword ? ['previewPassword'] : [])];
    // The newest closes only: a project with years of pull requests keeps a bounded copy.
    const closed = Object.fromEntries(Object.entries(await projects.closedAliases(name)).sort(([, a], [, b]) => b - a).slice(0, MAX_CLOSED_ALIASES));
    const copy: ProjectCopy = { version: BACKUP_VERSION, savedAt: now.toISOString(), envNames, credentials, fields, closed };
    await storage.putText(backupKeys.project(name), JSON.stringify(copy), 'application/json');
  }
  if (changes !== '0') await projects.saved(name, changes);
}

/** A JSON copy read back, checked against its schema; null when missing, unreadable or not ours. */
export async function readCopy<T extends z.ZodType>(storage: Storage, key: string, schema: T): Promise<z.output<T> | null> {
  const text = await storage.getText(key, MAX_BACKUP_BYTES);
  if (text === null) return null;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

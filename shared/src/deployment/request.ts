// The body of POST /deploy: its schema, and the type both services derive from it.
import { z } from 'zod';
import { parse as parseShell } from 'shell-quote';
import { safeRelativePath } from '../io/paths';

const MAX_COMMAND_LENGTH = 1000;
export const MAX_ENV_VARIABLES = 64;
export const MAX_ENV_VALUE_LENGTH = 4096;

/**
 * Names a build's `env` may not set: what the sandbox itself sets (paths, the proxy, CI) and the
 * platform's own SLIPWAY_* variables. The values reach only the sandboxed command, never the
 * processes that set the sandbox up.
 */
export function reservedEnvName(name: string): boolean {
  return (
    /^(PATH|HOME|TMPDIR|CI|(HTTPS?|NO|ALL)_PROXY)$/i.test(name) || /^npm_config_(https_proxy|proxy|cache)$/i.test(name) || name.startsWith('SLIPWAY_')
  );
}

/** Build environment variables: shell-style names, string values, capped in count and length. */
export const EnvSchema = z
  .record(
    z.string(),
    z.string({ error: 'env values must be strings' }).max(MAX_ENV_VALUE_LENGTH, `env values are at most ${MAX_ENV_VALUE_LENGTH} characters`).refine((v) => !v.includes('\0'), 'env values must not contain NUL characters'),
  )
  .superRefine((env, ctx) => {
    const names = Object.keys(env);
    if (names.length > MAX_ENV_VARIABLES) ctx.addIssue({ code: 'custom', message: `env holds at most ${MAX_ENV_VARIABLES} variables; it has ${names.length}` });
    for (const name of names) {
      if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(name)) {
        ctx.addIssue({ code: 'custom', path: [name], message: 'env names are letters, digits and _, not starting with a digit (at most 128)' });
      } else if (reservedEnvName(name)) {
        ctx.addIssue({ code: 'custom', path: [name], message: `env may not set ${name}: Slipway sets PATH, HOME, TMPDIR, CI, the proxy variables and SLIPWAY_* itself` });
      }
    }
  });

const relativeDir = (field: string) =>
  z
    .string()
    .min(1)
    .max(255)
    .refine((v) => !v.startsWith('-'), `${field} must not start with "-"`)
    .transform((v, ctx) => {
      try {
        return safeRelativePath(v);
      } catch {
        ctx.addIssue({ code: 'custom', message: `${field} must be a relative path inside the repository (no "..", no leading "/")` });
        return z.NEVER;
      }
    });

// git check-ref-format, restricted to the characters branch names use in practice.
export const BranchSchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9._/+-]+$/, 'branch may hold letters, digits and . _ / + - only')
  .refine((v) => !v.startsWith('-') && !v.startsWith('/') && !v.endsWith('/') && !v.endsWith('.lock') && !v.endsWith('.'), 'branch is not a valid git branch name')
  .refine((v) => !v.includes('..') && !v.includes('//') && !v.includes('/.'), 'branch is not a valid git branch name');

/** A command as an argument vector: given as an array, or as a string split like a shell would, minus the shell. */
const command = (field: string) =>
  z
    .union([z.string().min(1).max(MAX_COMMAND_LENGTH), z.array(z.string().min(1).max(MAX_COMMAND_LENGTH)).min(1).max(64)])
    .transform((v, ctx) => {
      const argv = typeof v === 'string' ? parseShell(v) : v;
      if (!argv.every((a): a is string => typeof a === 'string')) {
        ctx.addIssue({ code: 'custom', message: `${field} must be a plain command; shell operators, globs and comments are not run` });
        return z.NEVER;
      }
      if (argv.length === 0 || argv[0]!.startsWith('-')) {
        ctx.addIssue({ code: 'custom', message: `${field} must start with a program name` });
        return z.NEVER;
      }
      if (argv.some((a) => a.includes('\0'))) {
        ctx.addIssue({ code: 'custom', message: `${field} must not contain NUL characters` });
        return z.NEVER;
      }
      return argv;
    });

/** A full commit id (SHA-1, or SHA-256 for such repositories): an abbreviation cannot be fetched by id. */
export const CommitSchema = z
  .string()
  .regex(/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/, 'commit is a full commit id: 40 (or 64) lowercase hex digits');

/** What of a repository is uploaded: all of it, or what rootDir needs (the request's sourceScope). */
export const SOURCE_SCOPES = ['repository', 'rootDir'] as const;

export const DeployRequestSchema = z.strictObject({
  repoUrl: z.string({ error: 'repoUrl is required: the https:// URL of a public git repository' }).min(1).max(2048),
  branch: BranchSchema.optional(),
  commit: CommitSchema.optional(),
  rootDir: relativeDir('rootDir').optional(),
  installCommand: command('installCommand').optional(),
  buildCommand: command('buildCommand').optional(),
  outputDir: relativeDir('outputDir').optional(),
  env: EnvSchema.optional(),
  cache: z.boolean({ error: 'cache is true or false' }).optional(),
  spaFallback: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,100}\.html$/, 'spaFallback is the name of an .html file at the root of the output, such as 200.html')
    .refine((v) => !v.startsWith('.'), 'spaFallback is the name of an .html file at the root of the output, such as 200.html')
    .optional(),
  nodeVersion: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9.*^~<>=|/ -]+$/, 'nodeVersion is a version or range such as 22, 22.x, >=20 or lts/jod')
    .optional(),
  /** The build's memory; a worker allows at most its BUILD_MEMORY_MAX_MB. */
  buildMemoryMb: z
    .number({ error: 'buildMemoryMb is a whole number of megabytes, such as 8192' })
    .int('buildMemoryMb is a whole number of megabytes, such as 8192')
    .min(256, 'buildMemoryMb is at least 256')
    .max(1_048_576, 'buildMemoryMb is at most 1048576 (1 TB)')
    .optional(),
  /**
   * What of the repository is uploaded and built: all of it (the default), or with rootDir only that
   * folder, the top-level files and the workspace packages it uses (for very large monorepos).
   */
  sourceScope: z.enum(SOURCE_SCOPES, { error: 'sourceScope is "repository" (the default: the whole repository) or "rootDir" (only what rootDir needs)' }).optional(),
});

export type DeployRequest = z.output<typeof DeployRequestSchema>;

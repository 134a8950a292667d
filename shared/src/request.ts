// The body of POST /deploy: its schema, and the type both services derive from it.
import { z } from 'zod';
import { parse as parseShell } from 'shell-quote';
import { safeRelativePath } from './paths';

const MAX_COMMAND_LENGTH = 1000;

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
const branch = z
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

export const DeployRequestSchema = z.strictObject({
  repoUrl: z.string({ error: 'repoUrl is required: the https:// URL of a public git repository' }).min(1).max(2048),
  branch: branch.optional(),
  rootDir: relativeDir('rootDir').optional(),
  installCommand: command('installCommand').optional(),
  buildCommand: command('buildCommand').optional(),
  outputDir: relativeDir('outputDir').optional(),
});

export type DeployRequest = z.output<typeof DeployRequestSchema>;

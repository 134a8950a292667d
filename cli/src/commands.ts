// The commands: their arguments, options and help, and what each does with the API. `deploy` has
// a file of its own; the rest are one request (or a paged listing) each.
import type { Api, Listed, Pointed, Project } from './api';
import { deploy } from './deploy';
import { env } from './env';
import { EXIT, UsageError, type ExitCode } from './errors';
import { printLog } from './follow';
import { age, table } from './table';

export type Values = Record<string, string | boolean | undefined>;

export interface Command {
  /** The arguments, as the help shows them: `<project> [deploymentId]`. */
  args: string;
  summary: string;
  /** More for the command's help, if the summary is not enough. */
  about?: string;
  /** Its option lines for the help, before those every command takes. */
  help: string;
  options: Record<string, { type: 'string' | 'boolean'; short?: string }>;
  positionals: { min: number; max: number };
  run(api: Api, positionals: string[], values: Values): Promise<ExitCode>;
}

const JSON_OPTION = { json: { type: 'boolean' } } as const;

export const COMMANDS: Record<string, Command> = {
  deploy: {
    args: '[path-or-url]',
    summary: "deploy a checkout's pushed commit, a repository URL or a project, and wait",
    about: `Without an argument or --project: the checkout in "." (its origin, branch and HEAD commit).
From a checkout only pushed commits deploy: the API clones the repository, it never sees your
uncommitted changes. --project NAME alone deploys the project's own repository (its branch's newest
commit); with a checkout, that checkout's commit.
Prints the site's URL on stdout once it is deployed (url=$(slipway deploy) works); progress goes to stderr.`,
    help: `  --project NAME   deploy project NAME (its own repository, or the given checkout's commit)
  --branch BRANCH  the branch to deploy (default: the checkout's, or the project's production branch)
  --prod           the project's production branch (refused with another --branch)
  --commit SHA     this commit of the branch instead of its newest: a full id, or with a checkout
                   any revision it knows (HEAD~1, a tag); it must be pushed
  --no-wait        print the deployment id and return once it is queued
  --json           print the final deployment record (with --no-wait: the API's answer) instead`,
    options: { project: { type: 'string' }, branch: { type: 'string' }, prod: { type: 'boolean' }, commit: { type: 'string' }, 'no-wait': { type: 'boolean' }, ...JSON_OPTION },
    positionals: { min: 0, max: 1 },
    run: (api, [target], v) =>
      deploy(api, {
        target,
        project: string(v.project),
        branch: string(v.branch),
        prod: v.prod === true,
        commit: string(v.commit),
        wait: v['no-wait'] !== true,
        json: v.json === true,
      }),
  },

  logs: {
    args: '<deploymentId>',
    summary: "print a deployment's build log",
    help: `  -f, --follow     keep printing new lines until the deployment ends; then exit 0 when it was
                   deployed, 1 when it failed or was canceled`,
    options: { follow: { type: 'boolean', short: 'f' } },
    positionals: { min: 1, max: 1 },
    async run(api, [id], v) {
      const record = await printLog(api, id!, v.follow === true);
      return !record || record.status === 'deployed' ? EXIT.ok : EXIT.deploymentFailed;
    },
  },

  ls: {
    args: '',
    summary: 'list deployments, newest first',
    help: `  --project NAME   only this project's, marked "production" and with the branch alias each holds
  --limit N        how many (default 20)
  --json           print them as JSON`,
    options: { project: { type: 'string' }, limit: { type: 'string' }, ...JSON_OPTION },
    positionals: { min: 0, max: 0 },
    async run(api, _args, v) {
      const project = string(v.project);
      const limit = v.limit === undefined ? 20 : Number(v.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError(`--limit is a whole number from 1 to 1000, not ${JSON.stringify(v.limit)}`);
      const items = await api.list<Listed>(project ? `/projects/${encodeURIComponent(project)}/deployments` : '/deployments', limit);
      if (v.json) return print(JSON.stringify(items, null, 2));
      if (items.length === 0) return print(project ? `project ${project} has no deployments yet` : 'no deployments yet');
      const head = ['ID', ...(project ? [] : ['PROJECT']), 'STATUS', 'BRANCH', 'COMMIT', 'AGE', 'URL', ...(project ? [''] : [])];
      const rows = items.map((d) => [
        d.id,
        ...(project ? [] : [d.project ?? '-']),
        d.status,
        d.branch ?? '-',
        d.commit?.slice(0, 7) ?? '-',
        age(d.createdAt),
        d.url,
        ...(project ? [[d.production ? 'production' : '', d.alias ?? ''].filter(Boolean).join(' ')] : []),
      ]);
      return print(table([head, ...rows]));
    },
  },

  projects: {
    args: '',
    summary: 'list projects and the deployment production serves',
    help: '  --json           print them as JSON',
    options: { ...JSON_OPTION },
    positionals: { min: 0, max: 0 },
    async run(api, _args, v) {
      const items = await api.list<Project>('/projects', Number.MAX_SAFE_INTEGER);
      if (v.json) return print(JSON.stringify(items, null, 2));
      if (items.length === 0) return print('no projects yet');
      const rows = items.map((p) => [p.name, p.url, p.production?.id ?? '-', p.productionBranch, p.pinned ? 'pinned' : '']);
      return print(table([['NAME', 'URL', 'PRODUCTION', 'BRANCH', ''], ...rows]));
    },
  },

  env: {
    args: '<ls|set|rm> <project> [NAME]',
    summary: "list, set or remove a project's environment variables",
    about: `ls shows what is set for which environment, when and by which token; never a value.
set reads the value from stdin (printf %s "$VALUE" | slipway env set site API_KEY), so it is never
on a command line; a terminal is asked for it. Without --production, --preview or --branch, set and
rm act on both environments (rm: on branches too). Deployments made from then on build with the
change; those already built keep the values they were built with, for redeploys and rollbacks too.`,
    help: `  --production     only the production branch's value
  --preview        only the value every other branch (and pull request) builds with
  --branch BRANCH  this branch's own value, over preview's
  --json           ls: print the listing as JSON`,
    options: { production: { type: 'boolean' }, preview: { type: 'boolean' }, branch: { type: 'string' }, ...JSON_OPTION },
    positionals: { min: 2, max: 3 },
    run: (api, [action, project, name], v) => {
      if (v.production && v.preview) throw new UsageError('give --production or --preview, not both (neither means both)');
      return env(api, action!, project!, name, { target: v.production ? 'production' : v.preview ? 'preview' : undefined, branch: string(v.branch), json: v.json === true });
    },
  },

  rollback: {
    args: '<project> [deploymentId]',
    summary: 'point production back at once (no build), pinned until a promote',
    about: 'Without a deployment id: the newest deployed production deployment older than the current one.',
    help: '',
    options: {},
    positionals: { min: 1, max: 2 },
    async run(api, [project, deploymentId]) {
      const answer = await api.post<Pointed>(`/projects/${encodeURIComponent(project!)}/rollback`, deploymentId ? { deploymentId } : {});
      return print(answer.message);
    },
  },

  promote: {
    args: '<project> <deploymentId>',
    summary: 'point production at a deployment of the project, and unpin',
    help: '',
    options: {},
    positionals: { min: 2, max: 2 },
    async run(api, [project, deploymentId]) {
      const answer = await api.post<Pointed>(`/projects/${encodeURIComponent(project!)}/promote`, { deploymentId });
      return print(answer.message);
    },
  },
};

function print(text: string): ExitCode {
  process.stdout.write(`${text}\n`);
  return EXIT.ok;
}

function string(value: string | boolean | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

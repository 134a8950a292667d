// `slipway env`: a project's environment variables. `ls` shows what is set where, when and by
// which token (never a value); `set` reads the value from stdin, so it is never on a command line
// (or in the shell's history); `rm` removes a variable.
import type { Api, EnvListing } from './api';
import { EXIT, UsageError, type ExitCode } from './errors';
import { age, table } from './table';

export interface EnvOptions {
  /** production, preview or all (both); or a branch's own value over preview. */
  target?: 'production' | 'preview' | 'all';
  branch?: string;
  json: boolean;
}

/** The most a value read from stdin may be (the API's own limit is 4,096 characters). */
const MAX_STDIN_BYTES = 64 * 1024;

export async function env(api: Api, action: string, project: string, name: string | undefined, o: EnvOptions, stdin: NodeJS.ReadableStream = process.stdin): Promise<ExitCode> {
  const base = `/projects/${encodeURIComponent(project)}/env`;
  if (o.target && o.branch) throw new UsageError('give --production, --preview or --branch, not more than one');
  if (action === 'ls') {
    if (name !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(name)}; env ls takes a project only`);
    return show(await api.get<EnvListing>(base), project, o.json);
  }
  if (name === undefined) throw new UsageError(`env ${action} needs a variable name: slipway env ${action} <project> <NAME>`);
  if (action === 'set') {
    if (name.includes('=')) throw new UsageError('give the value on stdin, not on the command line (where ps and the shell history keep it): printf %s "$VALUE" | slipway env set <project> NAME');
    const value = await readValue(stdin);
    const answer = await api.put<EnvListing>(`${base}/${encodeURIComponent(name)}`, { value, ...(o.branch ? { branch: o.branch } : { target: o.target ?? 'all' }) });
    process.stderr.write(`set ${name} for ${o.branch ? `branch ${o.branch}` : (o.target ?? 'production and preview')} of ${project} (env version ${answer.version}); deployments from now on build with it\n`);
    return EXIT.ok;
  }
  if (action === 'rm') {
    const query = o.branch ? `?branch=${encodeURIComponent(o.branch)}` : o.target ? `?target=${o.target}` : '';
    const answer = await api.delete<EnvListing>(`${base}/${encodeURIComponent(name)}${query}`);
    process.stderr.write(`removed ${name} from ${project} (env version ${answer.version})\n`);
    return EXIT.ok;
  }
  throw new UsageError(`unknown env action ${JSON.stringify(action)}: ls, set or rm`);
}

function show(listing: EnvListing, project: string, json: boolean): ExitCode {
  if (json) process.stdout.write(`${JSON.stringify(listing, null, 2)}\n`);
  else if (listing.variables.length === 0) process.stdout.write(`project ${project} has no env variables\n`);
  else {
    const rows = listing.variables.map((v) => [v.name, v.target === 'branch' ? `branch ${v.branch}` : v.target, age(v.updatedAt), v.by]);
    process.stdout.write(`${table([['NAME', 'FOR', 'SET', 'BY'], ...rows])}\n`);
  }
  return EXIT.ok;
}

/** stdin whole, less one trailing newline (what `echo` adds); a terminal is asked for a line. */
async function readValue(stdin: NodeJS.ReadableStream): Promise<string> {
  if ((stdin as { isTTY?: boolean }).isTTY) process.stderr.write('value (ends at the end of the line): ');
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    bytes += buffer.length;
    if (bytes > MAX_STDIN_BYTES) throw new UsageError(`the value on stdin passes ${MAX_STDIN_BYTES} bytes`);
    chunks.push(buffer);
    if ((stdin as { isTTY?: boolean }).isTTY && buffer.includes(10)) break;
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

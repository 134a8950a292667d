// The `slipway` command line: reads the environment once, parses the arguments, runs one command,
// and turns what went wrong into one `slipway: …` line on stderr and the documented exit code.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Api } from './api';
import { COMMANDS, type Command, type Values } from './commands';
import { CliError, EXIT, UsageError, type ExitCode } from './errors';

const DEFAULT_URL = 'http://127.0.0.1:3000';
/** Not one of the documented codes: a bug in slipway itself (EX_SOFTWARE). */
const EXIT_BUG = 70;

const COMMON_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const COMMON_HELP = `  --url URL        the API (default: $SLIPWAY_URL, else ${DEFAULT_URL})
  --token TOKEN    the API token (default: $SLIPWAY_TOKEN)
  -h, --help       this help`;

const EXIT_CODES = `Exit codes:
  0  success (a followed deployment ended deployed)
  1  the deployment ended failed or canceled
  2  usage error: unknown command or option, a missing or malformed argument
  3  the API refused the request (4xx), e.g. 401: set SLIPWAY_TOKEN
  4  the API could not be reached, or failed (5xx)`;

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // `slipway logs <id> | head` closes stdout early: that is the reader's choice, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(EXIT.ok);
  });
  try {
    return await run(argv, env);
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`slipway: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`slipway: unexpected error (a bug in slipway): ${err instanceof Error ? err.stack : String(err)}\n`);
    return EXIT_BUG;
  }
}

async function run(argv: string[], env: NodeJS.ProcessEnv): Promise<ExitCode> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') return say(usage());
  if (name === '--version' || name === '-v') return say(version());
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) throw new UsageError(`${name.startsWith('-') ? 'give a command first' : `unknown command ${JSON.stringify(name)}`}; see slipway --help`);

  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: rest, options: { ...COMMON_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${optionError(err)}; see slipway ${name} --help`);
  }
  const { values, positionals } = parsed;
  if (values.help) return say(commandHelp(name, command));
  const { min, max } = command.positionals;
  if (positionals.length < min) throw new UsageError(`${name} needs ${command.args}; see slipway ${name} --help`);
  if (positionals.length > max) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[max])}; see slipway ${name} --help`);

  const url = typeof values.url === 'string' ? values.url : env.SLIPWAY_URL || DEFAULT_URL;
  if (!/^https?:\/\/[^/]/.test(url) || !URL.canParse(url)) throw new UsageError(`the API URL ${JSON.stringify(url)} is not an http:// or https:// URL (--url, SLIPWAY_URL)`);
  const token = typeof values.token === 'string' ? values.token : env.SLIPWAY_TOKEN || undefined;
  return command.run(new Api(url, token), positionals, values);
}

function usage(): string {
  const width = Math.max(...Object.entries(COMMANDS).map(([name, c]) => `${name} ${c.args}`.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${`${name} ${c.args}`.padEnd(width)}  ${c.summary}`);
  return `slipway ${version()}: deploy sites to Slipway from the command line

Usage: slipway <command> [arguments] [options]

Commands:
${lines.join('\n')}

Options every command takes:
${COMMON_HELP}

${EXIT_CODES}

slipway <command> --help tells more about each.`;
}

function commandHelp(name: string, command: Command): string {
  const summary = `${command.summary[0]!.toUpperCase()}${command.summary.slice(1)}.`;
  return `Usage: slipway ${name} ${command.args ? `${command.args} ` : ''}[options]

${command.about ? `${summary}\n${command.about}` : summary}

Options:
${command.help ? `${command.help}\n` : ''}${COMMON_HELP}

${EXIT_CODES}`;
}

function version(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** parseArgs's complaint, cut to its point: "unknown option --x" rather than a paragraph on positionals. */
function optionError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const option = /^Unknown option '([^']+)'/.exec(message);
  return option ? `unknown option ${option[1]}` : message;
}

function say(text: string): ExitCode {
  process.stdout.write(`${text}\n`);
  return EXIT.ok;
}

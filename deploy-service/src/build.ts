// Runs one install or build command in the sandbox: an argument vector (never a shell string), a
// scrubbed environment, its own process group killed whole at the time limit, output to the build log.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';
import type { BuildLog } from './build-log';
import type { BuildIdentity } from './build-user';

export interface SandboxOptions {
  cwd: string;
  /** The unprivileged user to run as (when the worker is root). */
  identity: BuildIdentity | null;
  /** The build's home folder, inside its work folder. */
  home: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
}

/** node's own bin folder first (it holds npm and npx), then the system's. */
const SANDBOX_PATH = [path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':');

/**
 * The whole environment a build sees: nothing is inherited from the worker, so no Redis URL, S3
 * key or other service secret can reach code from a repository.
 */
export function sandboxEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: SANDBOX_PATH,
    HOME: home,
    TMPDIR: path.join(home, 'tmp'),
    CI: '1',
    LANG: 'C.UTF-8',
    npm_config_cache: path.join(home, '.npm'),
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  };
}

export async function runCommand(argv: readonly string[], log: BuildLog, options: SandboxOptions): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('empty command');
  log.line(`$ ${argv.join(' ')}`);
  const child = spawn(file, args, {
    cwd: options.cwd,
    env: sandboxEnv(options.home),
    // A process group of its own, so the time limit kills everything the build started.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.identity ? { uid: options.identity.uid, gid: options.identity.gid } : {}),
  });
  const result: CommandResult = { code: null, signal: null, timedOut: false, aborted: false };
  const killGroup = () => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // ESRCH: the group is already gone.
    }
  };
  const timer = setTimeout(() => {
    result.timedOut = true;
    killGroup();
  }, options.timeoutMs);
  const onAbort = () => {
    result.aborted = true;
    killGroup();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();

  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => log.line(line));
  }
  // 'close' comes after 'exit' once the output pipes are drained: every line is in the log by then.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  try {
    const started = await new Promise<boolean>((resolve, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) => {
        // The repository's command cannot be run (missing, not executable): its failure, not the platform's.
        if (err.code !== 'ENOENT' && err.code !== 'EACCES' && err.code !== 'ENOEXEC') return reject(err);
        log.line(err.code === 'ENOENT' ? `[slipway] command not found: ${file}` : `[slipway] cannot run ${file}: ${err.code}`);
        result.code = err.code === 'ENOENT' ? 127 : 126;
        resolve(false);
      });
      child.once('exit', (code, signal) => {
        result.code = code;
        result.signal = signal;
        // Background processes the build left behind die with it; this also closes their copies of
        // the pipes, which would otherwise hold 'close' back for as long as they live.
        killGroup();
        resolve(true);
      });
    });
    if (started) await closed;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
  return result;
}

/** A one-line description of how a command ended, for the failure reason. */
export function describeExit(argv: readonly string[], r: CommandResult, timeoutMs: number): string {
  const cmd = argv.join(' ');
  if (r.timedOut) return `"${cmd}" was stopped after ${timeoutMs / 1000} s (BUILD_TIMEOUT_SECONDS)`;
  if (r.aborted) return `"${cmd}" was stopped`;
  if (r.signal) return `"${cmd}" was killed by ${r.signal}`;
  return `"${cmd}" exited with code ${r.code}`;
}

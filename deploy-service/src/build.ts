// Runs one install or build command in the sandbox: an argument vector (never a shell string), a
// scrubbed environment, its own process group killed whole at the time limit, caps on memory,
// processes and file size, output to the build log.
//
// The command line, outermost first: `sh` joins the command's cgroup (when there is one), `prlimit`
// sets the rlimits, `setpriv` drops to the build's own uid (when the worker is root), `bwrap` makes
// the sandbox, and init.cjs inside it forwards the proxy port and runs the command.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import path from 'node:path';
import type { BuildLog } from './build-log';
import { CommandCgroup, INIT_SCRIPT, SANDBOX, bwrapArgs, type Caps, type SandboxSupport } from './sandbox';
import type { Workspace } from './workspace';

export interface CommandOptions {
  /** The app folder (host path, inside ws.src). */
  cwd: string;
  ws: Workspace;
  /** The build's own uid (the worker is root), or null: the worker's own. */
  uid: number | null;
  support: SandboxSupport;
  caps: Caps;
  /** Host path of the build's egress proxy socket. */
  egressSocket: string;
  /** Host paths of the generated /etc/passwd, /etc/group and /etc/hosts. */
  etc: { passwd: string; group: string; hosts: string };
  /** The tool cache (bound read-only into the sandbox at the same path) and its folders to put first on PATH. */
  tools: { root: string; path: readonly string[] };
  /** More read-only files for the sandbox (host path → sandbox path), e.g. a cache archive. */
  binds?: readonly [string, string][];
  /** Shown in the log instead of the command line (for Slipway's own steps). */
  label?: string;
  /** The build's own variables (the request's env and SLIPWAY_*): given only to the command itself. */
  env: Readonly<Record<string, string>>;
  /** Unique per command: names its cgroup. */
  name: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  /** A cap the command ran into. */
  capHit: 'memory' | 'procs' | 'file' | null;
}

/** Joins the cgroups named by the first arguments (count first), then runs the rest. */
const JOIN_CGROUPS = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"';
const PROXY = `http://127.0.0.1:${SANDBOX.proxyPort}`;
/** Debian's bundle of the system's trusted CAs (under /etc/ssl, which the sandbox sees). */
const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/**
 * The whole environment a build sees: nothing is inherited from the worker, so no Redis URL, S3
 * key or other service secret can reach code from a repository. Package managers and other tools
 * find the egress proxy through the standard variables.
 */
export function sandboxEnv(home: string, tmp: string, sandboxed: boolean, toolPath: readonly string[] = []): NodeJS.ProcessEnv {
  return {
    PATH: [...toolPath, path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':'),
    HOME: home,
    TMPDIR: tmp,
    CI: '1',
    LANG: 'C.UTF-8',
    // The host's CA bundle (read-only in the sandbox): a registry behind a company CA works for every tool, Yarn 2+ and Bun included.
    ...(existsSync(SYSTEM_CA_BUNDLE) ? { NODE_EXTRA_CA_CERTS: SYSTEM_CA_BUNDLE } : {}),
    npm_config_cache: path.join(home, '.npm'),
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    ...(sandboxed
      ? {
          HTTP_PROXY: PROXY,
          HTTPS_PROXY: PROXY,
          http_proxy: PROXY,
          https_proxy: PROXY,
          NO_PROXY: 'localhost,127.0.0.1,::1',
          no_proxy: 'localhost,127.0.0.1,::1',
          npm_config_proxy: PROXY,
          npm_config_https_proxy: PROXY,
          // Yarn 2+ reads neither of the above.
          YARN_HTTP_PROXY: PROXY,
          YARN_HTTPS_PROXY: PROXY,
        }
      : {}),
  };
}

/** The full command line for `argv` under the sandbox, caps and identity. */
function commandLine(argv: readonly string[], o: CommandOptions, cgroup: CommandCgroup | null): { argv: string[]; cwd: string; env: NodeJS.ProcessEnv; sandboxed: boolean } {
  const sandboxed = o.support.kind === 'bwrap';
  const line: string[] = [];
  if (cgroup) line.push('/bin/sh', '-c', JOIN_CGROUPS, 'sh', String(cgroup.procFiles.length), ...cgroup.procFiles);
  line.push('prlimit', `--fsize=${o.caps.maxFileBytes}`, '--core=0');
  // Without a cgroup, memory is capped by RLIMIT_DATA and processes by RLIMIT_NPROC — the latter
  // only with a uid of the build's own, since it counts every process of the uid.
  if (!cgroup) line.push(`--data=${o.caps.memoryBytes}`, ...(o.uid !== null ? [`--nproc=${o.caps.maxProcs}`] : []));
  line.push('--');
  if (o.uid !== null) line.push('setpriv', `--reuid=${o.uid}`, `--regid=${o.uid}`, '--clear-groups', '--');
  if (!sandboxed) {
    // Not isolated (BUILD_SANDBOX=off); still, the build's variables reach only its command, after setpriv.
    const vars = Object.entries(o.env).map(([k, v]) => `${k}=${v}`);
    line.push(...(vars.length > 0 ? ['env', ...vars] : []), ...argv);
    return { argv: line, cwd: o.cwd, env: sandboxEnv(o.ws.home, path.join(o.ws.home, 'tmp'), false, o.tools.path), sandboxed };
  }
  const inside = path.posix.join(SANDBOX.src, path.relative(o.ws.src, o.cwd).split(path.sep).join('/'));
  const roBinds: [string, string][] = [
    [INIT_SCRIPT, SANDBOX.init],
    [o.etc.passwd, '/etc/passwd'],
    [o.etc.group, '/etc/group'],
    [o.etc.hosts, '/etc/hosts'],
  ];
  // node lives under /usr on Debian and in the images; elsewhere its install folder is shown read-only.
  const nodePrefix = path.dirname(path.dirname(process.execPath));
  if (!process.execPath.startsWith('/usr/')) roBinds.push([nodePrefix, nodePrefix]);
  // Node releases and package managers, shared by the worker's builds: read-only, where the launchers expect them.
  if (o.tools.path.length > 0) roBinds.push([o.tools.root, o.tools.root]);
  roBinds.push(...(o.binds ?? []));
  const rwBinds: [string, string][] = [
    [o.ws.src, SANDBOX.src],
    [o.ws.home, SANDBOX.home],
    [o.egressSocket, SANDBOX.egress],
  ];
  line.push('bwrap', ...bwrapArgs({ rwBinds, roBinds, cwd: inside, hostname: 'build', tmpBytes: o.caps.tmpBytes }));
  line.push('--', process.execPath, SANDBOX.init, SANDBOX.egress, String(SANDBOX.proxyPort), ...argv);
  return { argv: line, cwd: '/', env: sandboxEnv(SANDBOX.home, SANDBOX.tmp, true, o.tools.path), sandboxed };
}

export async function runCommand(argv: readonly string[], log: BuildLog, options: CommandOptions): Promise<CommandResult> {
  if (argv.length === 0) throw new Error('empty command');
  log.line(options.label ?? `$ ${argv.join(' ')}`);
  log.startCommand();
  const cgroup = await CommandCgroup.create(options.support, options.name, options.caps);
  const line = commandLine(argv, options, cgroup);
  const child = spawn(line.argv[0]!, line.argv.slice(1), {
    cwd: line.cwd,
    env: line.env,
    // A process group of its own, so the time limit kills everything the build started.
    detached: true,
    // stdin carries the build's variables to init.cjs inside the sandbox (see commandLine).
    stdio: [line.sandboxed ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  if (line.sandboxed) {
    child.stdin!.on('error', () => undefined); // a sandbox that failed to start closes it early; its exit says why
    child.stdin!.end(JSON.stringify(options.env));
  }
  const result: CommandResult = { code: null, signal: null, timedOut: false, aborted: false, capHit: null };
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

  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (l) => log.line(l));
  }
  // 'close' comes after 'exit' once the output pipes are drained: every line is in the log by then.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  try {
    const started = await new Promise<boolean>((resolve, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) => {
        // Only without a sandbox does the repository's command itself get spawned here.
        if (err.code !== 'ENOENT' && err.code !== 'EACCES' && err.code !== 'ENOEXEC') return reject(err);
        log.line(err.code === 'ENOENT' ? `[slipway] command not found: ${line.argv[0]}` : `[slipway] cannot run ${line.argv[0]}: ${err.code}`);
        result.code = err.code === 'ENOENT' ? 127 : 126;
        resolve(false);
      });
      child.once('exit', (code, signal) => {
        result.code = code;
        result.signal = signal;
        // Whatever the build left behind dies with it; this also closes their copies of the pipes,
        // which would otherwise hold 'close' back for as long as they live.
        killGroup();
        resolve(true);
      });
    });
    if (started) await closed;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    if (cgroup) {
      const hit = await cgroup.exceeded();
      result.capHit = hit.memory ? 'memory' : hit.procs ? 'procs' : null;
      await cgroup.remove();
    }
  }
  // A write past RLIMIT_FSIZE kills the writer with SIGXFSZ (153 = 128 + 25 through init.cjs), or
  // fails with EFBIG where the signal is ignored (node ignores it).
  if (result.signal === 'SIGXFSZ' || result.code === 153 || (result.code !== 0 && log.tail(20).some((l) => /\bEFBIG\b|File too large/.test(l)))) result.capHit ??= 'file';
  return result;
}

/** A one-line description of how a command ended, for the failure reason; a cap names its setting. */
export function describeExit(argv: readonly string[], r: CommandResult, limits: { timeoutMs: number; caps: Caps }): string {
  const cmd = argv.join(' ');
  const mb = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MB`;
  if (r.timedOut) return `"${cmd}" was stopped after ${limits.timeoutMs / 1000} s (BUILD_TIMEOUT_SECONDS)`;
  if (r.aborted) return `"${cmd}" was stopped`;
  if (r.capHit === 'memory') return `"${cmd}" ran out of memory: a build may use ${mb(limits.caps.memoryBytes)} (BUILD_MEMORY_MB)`;
  if (r.capHit === 'procs') return `"${cmd}" hit the process limit: a build may run ${limits.caps.maxProcs} processes at once (BUILD_MAX_PROCS)`;
  if (r.capHit === 'file') return `"${cmd}" wrote a file larger than ${mb(limits.caps.maxFileBytes)} (BUILD_MAX_FILE_MB)`;
  if (r.signal) return `"${cmd}" was killed by ${r.signal}`;
  return `"${cmd}" exited with code ${r.code}`;
}

// Runs one install or build command in the sandbox: an argument vector (never a shell string), a
// scrubbed environment, its own process group killed whole at the time limit or on cancel, caps on
// memory, processes, file size and disk, output to the build log read as bytes (a line cut at
// MAX_LINE_BYTES, a flood stopped) or, for Slipway's own steps, stdout handed to a checked reader.
//
// The command line, outermost first: `sh` joins the command's cgroup (when there is one), `prlimit`
// sets the rlimits, `setpriv` drops to the build's own uid (when the worker is root), `unshare`
// makes the network namespace (MAKE_NETWORK, where the host allows it), `bwrap` makes the sandbox,
// and init.cjs inside it forwards the proxy port (and names, with relay.cjs) and runs the command.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FLOOD_FACTOR, LineReader, type BuildLog } from '../deployment/build-log';
import type { DiskHit } from './disk';
import { CommandCgroup } from './cgroups';
import { COLLECT_SCRIPT, INIT_SCRIPT, MAKE_NETWORK, RELAY_SCRIPT, SANDBOX, bwrapArgs, type Caps, type SandboxEtc, type SandboxSupport } from './sandbox';
import type { Workspace } from '../deployment/workspace';

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
  /** Host paths of the generated /etc/passwd, /etc/group, /etc/hosts and /etc/resolv.conf. */
  etc: SandboxEtc;
  /** The tool cache (bound read-only into the sandbox at the same path) and its folders to put first on PATH. */
  tools: { root: string; path: readonly string[] };
  /** More read-only files for the sandbox (host path → sandbox path), e.g. a cache archive. */
  binds?: readonly [string, string][];
  /** Shows the build's whole disk at /build instead of its folders one by one (src/, home/, keep/ on one mount). */
  wholeDisk?: boolean;
  /**
   * One of Slipway's own steps: run as the sandbox's command itself, without init.cjs (it needs
   * neither the egress proxy nor the build's variables), which saves a node start.
   */
  own?: boolean;
  /** Takes the command's stdout instead of the log (Slipway's own steps); its rejection stops the command. */
  stdout?: (stream: Readable) => Promise<void>;
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
  capHit: 'memory' | 'procs' | 'file' | 'log' | Exclude<DiskHit, null> | null;
  /** Why the stdout reader gave up (a cap, a malformed stream); the command was stopped then. */
  stdoutError?: unknown;
}

/** How often a watched disk (see disk.ts) is measured while a command runs. */
const DISK_WATCH_MS = 2000;

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
export function sandboxEnv(home: string, tmp: string, sandboxed: boolean, toolPath: readonly string[] = [], relay = false): NodeJS.ProcessEnv {
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
          // Node's own fetch and http(s) ignore the variables above unless asked (Node 22.21+, 24.5+);
          // with the sandbox's resolver they need not be asked (and Node 22 warns when it is).
          ...(relay ? {} : { NODE_USE_ENV_PROXY: '1' }),
        }
      : {}),
  };
}

/** The full command line for `argv` under the sandbox, caps and identity. */
function commandLine(argv: readonly string[], o: CommandOptions, cgroup: CommandCgroup | null): { argv: string[]; cwd: string; env: NodeJS.ProcessEnv; envOnStdin: boolean } {
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
    return { argv: line, cwd: o.cwd, env: sandboxEnv(o.ws.home, o.ws.tmp, false, o.tools.path), envOnStdin: false };
  }
  // Slipway's own steps have no egress at all: bwrap's empty network namespace is theirs.
  const relay = o.support.relay && !o.own;
  const inside = path.posix.join(SANDBOX.src, path.relative(o.ws.src, o.cwd).split(path.sep).join('/'));
  const roBinds: [string, string][] = [
    [INIT_SCRIPT, SANDBOX.init],
    [RELAY_SCRIPT, SANDBOX.relay],
    [COLLECT_SCRIPT, SANDBOX.collect],
    [o.etc.passwd, '/etc/passwd'],
    [o.etc.group, '/etc/group'],
    [o.etc.hosts, '/etc/hosts'],
    ...(relay ? [[o.etc.resolv, '/etc/resolv.conf'] as [string, string]] : []),
  ];
  // node lives under /usr on Debian and in the images; elsewhere its install folder is shown read-only.
  const nodePrefix = path.dirname(path.dirname(process.execPath));
  if (!process.execPath.startsWith('/usr/')) roBinds.push([nodePrefix, nodePrefix]);
  // Node releases and package managers, shared by the worker's builds: read-only, where the launchers expect them.
  if (o.tools.path.length > 0) roBinds.push([o.tools.root, o.tools.root]);
  roBinds.push(...(o.binds ?? []));
  // The disk's root is the worker's (the build can write nothing in it but its own folders).
  const folders: [string, string][] = o.wholeDisk ? [[o.ws.disk.root, '/build']] : [[o.ws.src, SANDBOX.src], [o.ws.home, SANDBOX.home]];
  const rwBinds: [string, string][] = [...folders, [o.egressSocket, SANDBOX.egress]];
  if (relay) line.push(...MAKE_NETWORK);
  const madeNetwork = relay ? { uid: o.uid ?? process.getuid?.() ?? 0 } : undefined;
  line.push('bwrap', ...bwrapArgs({ tmp: o.ws.tmp, rwBinds, roBinds, cwd: inside, hostname: 'build', madeNetwork }));
  if (o.own) line.push('--', ...argv);
  else line.push('--', process.execPath, SANDBOX.init, SANDBOX.egress, String(SANDBOX.proxyPort), relay ? 'relay' : 'proxy', ...argv);
  return { argv: line, cwd: '/', env: sandboxEnv(SANDBOX.home, SANDBOX.tmp, true, o.tools.path, relay), envOnStdin: !o.own };
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
    stdio: [line.envOnStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  if (line.envOnStdin) {
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
  const stop = (cap: CommandResult['capHit']) => {
    result.capHit ??= cap;
    killGroup();
  };
  const timer = setTimeout(() => {
    // A command already stopped for a cap is reported for the cap.
    if (result.capHit === null) result.timedOut = true;
    killGroup();
  }, options.timeoutMs);
  const onAbort = () => {
    result.aborted = true;
    killGroup();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  // A watched disk is measured while the command runs; a loop disk refuses the write itself.
  const disk = options.ws.disk;
  let watching = disk.kind === 'watch';
  const watch = async () => {
    while (watching) {
      await new Promise((r) => setTimeout(r, DISK_WATCH_MS));
      if (!watching) return;
      const hit = await disk.exceeded().catch(() => null);
      if (hit) stop(hit);
    }
  };
  const watched = watch();

  const logged: Readable[] = options.stdout ? [child.stderr!] : [child.stdout!, child.stderr!];
  for (const stream of logged) {
    const reader = new LineReader((l) => log.line(l));
    stream.on('data', (chunk: Buffer) => {
      log.countRead(chunk.length);
      reader.push(chunk);
      // Reading a build that prints without end costs a core; past the flood mark it is stopped.
      if (log.flooded) stop('log');
    });
    stream.on('end', () => reader.end());
  }
  const consumer = options.stdout
    ? options.stdout(child.stdout!).catch((err: unknown) => {
        result.stdoutError = err;
        // Unread, the pipe would hold 'close' back for ever.
        child.stdout!.destroy();
        killGroup();
      })
    : Promise.resolve();
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
    await consumer;
  } finally {
    clearTimeout(timer);
    watching = false;
    await watched;
    options.signal?.removeEventListener('abort', onAbort);
    if (cgroup) {
      const hit = await cgroup.exceeded();
      result.capHit ??= hit.memory ? 'memory' : hit.procs ? 'procs' : null;
      await cgroup.remove();
    }
  }
  // A write past RLIMIT_FSIZE kills the writer with SIGXFSZ (153 = 128 + 25 through init.cjs), or
  // fails with EFBIG where the signal is ignored (node ignores it).
  if (result.signal === 'SIGXFSZ' || result.code === 153 || (result.code !== 0 && log.tail(20).some((l) => /\bEFBIG\b|File too large/.test(l)))) result.capHit ??= 'file';
  // A failed command on a full disk (ENOSPC, EDQUOT) ran into the disk cap.
  if (result.code !== 0 && result.capHit === null) result.capHit = await disk.exceeded().catch(() => null);
  return result;
}

/** A one-line description of how a command ended, for the failure reason; a cap names its setting. */
export function describeExit(argv: readonly string[], r: CommandResult, limits: { timeoutMs: number; caps: Caps; disk: { bytes: number; inodes: number }; maxLogBytes: number }): string {
  const cmd = argv.join(' ');
  const mb = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MB`;
  const count = (n: number) => n.toLocaleString('en-US');
  if (r.timedOut) return `"${cmd}" was stopped after ${limits.timeoutMs / 1000} s (BUILD_TIMEOUT_SECONDS)`;
  if (r.aborted) return `"${cmd}" was stopped`;
  if (r.capHit === 'memory') return `"${cmd}" ran out of memory: this build may use ${mb(limits.caps.memoryBytes)} (buildMemoryMb asks for more, up to BUILD_MEMORY_MAX_MB)`;
  if (r.capHit === 'procs') return `"${cmd}" hit the process limit: a build may run ${limits.caps.maxProcs} processes at once (BUILD_MAX_PROCS)`;
  if (r.capHit === 'file') return `"${cmd}" wrote a file larger than ${mb(limits.caps.maxFileBytes)} (BUILD_MAX_FILE_MB)`;
  if (r.capHit === 'disk') return `"${cmd}" wrote more than ${mb(limits.disk.bytes)} to its disk (BUILD_DISK_MB)`;
  if (r.capHit === 'inodes') return `"${cmd}" made more than ${count(limits.disk.inodes)} files and folders (BUILD_DISK_INODES)`;
  if (r.capHit === 'log') return `"${cmd}" printed more than ${count(limits.maxLogBytes * FLOOD_FACTOR)} bytes (${FLOOD_FACTOR} × MAX_LOG_BYTES) and was stopped`;
  if (r.signal) return `"${cmd}" was killed by ${r.signal}`;
  return `"${cmd}" exited with code ${r.code}`;
}

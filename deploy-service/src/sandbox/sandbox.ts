// The build sandbox: each install and build command runs under bubblewrap in new user, pid, mount,
// ipc, uts, cgroup and network namespaces. It sees a read-only system (/usr, a few files of /etc),
// its own folders read-write at /build/src, /build/home and /tmp (on its capped disk), a /proc of its own, and no
// network but a loopback that leads only to its egress proxy. When the command ends (or is killed at
// its time limit) the pid namespace ends and every process the build started ends with it.
// Caps come from a cgroup per command where the host lets the worker make one (v1 or v2), from
// rlimits otherwise; the log says which.
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readFile, readdir, readlink, rmdir, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { randomInt } from 'node:crypto';
import { isAlive } from '@slipway/shared';

/** Where things are inside the sandbox. */
export const SANDBOX = {
  src: '/build/src',
  home: '/build/home',
  tmp: '/tmp',
  keep: '/build/keep',
  init: '/run/slipway/init.cjs',
  relay: '/run/slipway/relay.cjs',
  collect: '/run/slipway/collect.sh',
  egress: '/run/slipway/egress.sock',
  proxyPort: 3128,
} as const;

export const INIT_SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), './init.cjs');
export const RELAY_SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), './relay.cjs');
/**
 * Run as the build's uid by `unshare --user --map-root-user --net` (a user namespace of the build's
 * uid owning a fresh network namespace, so no privilege on the host is needed): loopback up, and
 * ports below 1024 bindable in this namespace only, so init.cjs can serve names on 127.0.0.53:53
 * and carry 80/443 (relay.cjs). Then the capabilities that namespace gave are dropped and bubblewrap
 * nests the sandbox's own user namespace inside it, mapped back to the build's uid: the build has
 * no capability over the network namespace (it is owned by the namespace above the build's).
 */
export const NETWORK_SETUP = 'ip link set lo up && echo 0 > /proc/sys/net/ipv4/ip_unprivileged_port_start && exec setpriv --inh-caps=-all --ambient-caps=-all -- "$@"';
/** The command line that runs `bwrap` (the next arguments) in a network namespace of the build's own. */
export const MAKE_NETWORK = ['unshare', '--user', '--map-root-user', '--net', '--', '/bin/sh', '-c', NETWORK_SETUP, 'sh'];
/** Slipway's own step after a build, run in the sandbox as the build (see the script). */
export const COLLECT_SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), './collect.sh');
/** Host files of /etc a build may read (certificates, name service switch, alternatives' links). */
const ETC_READ = ['/etc/ssl', '/etc/ca-certificates', '/etc/alternatives', '/etc/nsswitch.conf', '/etc/localtime', '/etc/mime.types'];
/** Per-build uids when the worker is root (BUILD_UIDS): by default a large range no ordinary account uses. */
export interface UidRange {
  first: number;
  count: number;
}

export type CapsKind = 'cgroup-v1' | 'cgroup-v2' | 'rlimit';

export interface Caps {
  memoryBytes: number;
  maxProcs: number;
  maxFileBytes: number;
}

export interface SandboxSupport {
  /** 'off' only with BUILD_SANDBOX=off. */
  readonly kind: 'bwrap' | 'off';
  readonly caps: CapsKind;
  /** The cgroup folder under which each command gets its own, per controller (v1) or unified (v2). */
  readonly cgroupRoots: readonly string[];
  /**
   * The worker makes each build's network namespace itself (MAKE_NETWORK: `unshare` and `ip`), so
   * names resolve inside and tools that ignore the proxy variables still reach allowed hosts.
   */
  readonly relay: boolean;
}

export class SandboxUnavailableError extends Error {}

const run = promisify(execFile);

/**
 * What this host offers. Throws SandboxUnavailableError when bubblewrap cannot make a sandbox here
 * (not installed, no user namespaces) unless the sandbox was turned off on purpose.
 */
export async function detectSandbox(enabled: boolean, uids: UidRange): Promise<SandboxSupport> {
  await loadSystemLinks();
  if (isRoot()) await releaseDeadUidLocks();
  const { caps, roots } = await detectCgroups();
  if (!enabled) return { kind: 'off', caps, cgroupRoots: roots, relay: false };
  const as = isRoot() ? { uid: uids.first, gid: uids.first } : {};
  try {
    const probe = bwrapArgs({ rwBinds: [], roBinds: [], cwd: '/', hostname: 'probe' });
    await run('bwrap', [...probe, '--', '/bin/true'], { timeout: 10_000, ...as });
  } catch (err) {
    const detail = (err as { code?: string; stderr?: string }).code === 'ENOENT' ? 'bwrap is not installed (Debian: apt-get install bubblewrap)' : String((err as { stderr?: string }).stderr || (err as Error).message).trim();
    throw new SandboxUnavailableError(
      `the build sandbox cannot start here: ${detail}. Builds run code from strangers; install bubblewrap and allow user namespaces, or set BUILD_SANDBOX=off to run them without one (not isolated)`,
    );
  }
  const inNetwork = bwrapArgs({ rwBinds: [], roBinds: [], cwd: '/', hostname: 'probe', madeNetwork: { uid: as.uid ?? process.getuid?.() ?? 0 } });
  const [command, ...args] = [...MAKE_NETWORK, 'bwrap', ...inNetwork, '--', '/bin/true'];
  const relay = await run(command!, args, { timeout: 10_000, ...as }).then(() => true, () => false);
  return { kind: 'bwrap', caps, cgroupRoots: roots, relay };
}

/**
 * Builds run as uids of their own, so every folder above WORK_DIR must let others pass (o+x);
 * otherwise every build would fail on its first step. Throws SandboxUnavailableError naming the folder.
 */
export async function checkWorkDir(workDir: string): Promise<void> {
  if (!isRoot()) return;
  for (let dir = path.resolve(workDir); ; dir = path.dirname(dir)) {
    const stat = await lstat(dir).catch(() => null);
    if (stat && !(stat.mode & 0o001)) {
      throw new SandboxUnavailableError(`builds run as uids of their own and cannot pass through ${dir} (mode ${(stat.mode & 0o777).toString(8)}); chmod o+x it or set WORK_DIR to a folder they can reach`);
    }
    if (dir === path.dirname(dir)) return;
  }
}

/** The cgroup folders the worker may create children in, and which kind they are. */
async function detectCgroups(): Promise<{ caps: CapsKind; roots: string[] }> {
  if (!isRoot()) return { caps: 'rlimit', roots: [] };
  const own = await readFile('/proc/self/cgroup', 'utf8').catch(() => '');
  const pathOf = (controller: string) => own.split('\n').find((l) => l.split(':')[1]?.split(',').includes(controller))?.split(':')[2];
  const tag = `slipway-${process.pid}`;
  // v1: a memory and a pids hierarchy of their own.
  const v1 = ['memory', 'pids'].map((c) => path.join('/sys/fs/cgroup', c, pathOf(c) ?? '/', tag));
  for (const root of v1) await removeLeftovers(path.dirname(root));
  if (await canMake(v1, ['memory.limit_in_bytes', 'pids.max'])) return { caps: 'cgroup-v1', roots: v1 };
  // v2: one unified tree; a child of the root (in a container with its own cgroup namespace) or of ours.
  const unified = own.split('\n').find((l) => l.startsWith('0::'))?.slice(3);
  const controllers = await readFile('/sys/fs/cgroup/cgroup.controllers', 'utf8').catch(() => '');
  if (unified !== undefined && /\bmemory\b/.test(controllers) && /\bpids\b/.test(controllers)) {
    const root = path.join('/sys/fs/cgroup', unified, tag);
    await removeLeftovers(path.dirname(root));
    try {
      await mkdir(root, { recursive: true });
      await writeFile(path.join(root, 'cgroup.subtree_control'), '+memory +pids');
      if (await canMake([root], ['memory.max', 'pids.max'])) return { caps: 'cgroup-v2', roots: [root] };
    } catch {
      await rmdir(root).catch(() => undefined);
    }
  }
  return { caps: 'rlimit', roots: [] };
}

/** Removes the cgroup folders of workers that died without removing their own (their builds are gone too). */
async function removeLeftovers(parent: string): Promise<void> {
  const names = await readdir(parent).catch(() => [] as string[]);
  for (const name of names) {
    const pid = /^slipway-(\d+)$/.exec(name)?.[1];
    if (!pid || isAlive(Number(pid))) continue;
    const dir = path.join(parent, name);
    for (const child of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (child.isDirectory()) await rmdir(path.join(dir, child.name)).catch(() => undefined);
    await rmdir(dir).catch(() => undefined);
  }
}

/** Removes this worker's cgroup folders (at shutdown, once its builds are over). */
export async function releaseSandbox(support: SandboxSupport): Promise<void> {
  for (const root of support.cgroupRoots) await rmdir(root).catch(() => undefined);
}

/** True when a child cgroup can be made under each root and has the named files. */
async function canMake(roots: string[], files: string[]): Promise<boolean> {
  try {
    for (const [i, root] of roots.entries()) {
      const probe = path.join(root, 'probe');
      await mkdir(probe, { recursive: true });
      await lstat(path.join(probe, files[i] ?? files[0]!));
      await rmdir(probe);
    }
    return true;
  } catch {
    return false;
  }
}

/** One command's cgroup: made with its limits before the command, read and removed after it. */
export class CommandCgroup {
  private constructor(
    private readonly support: SandboxSupport,
    readonly dirs: string[],
  ) {}

  static async create(support: SandboxSupport, name: string, caps: Caps): Promise<CommandCgroup | null> {
    if (support.caps === 'rlimit') return null;
    const dirs = support.cgroupRoots.map((root) => path.join(root, name));
    for (const dir of dirs) await mkdir(dir, { recursive: true });
    if (support.caps === 'cgroup-v1') {
      const [memory, pids] = dirs as [string, string];
      await writeFile(path.join(memory, 'memory.limit_in_bytes'), String(caps.memoryBytes));
      // Without swap accounting the file is absent, and the limit above is the whole limit.
      await writeFile(path.join(memory, 'memory.memsw.limit_in_bytes'), String(caps.memoryBytes)).catch(() => undefined);
      await writeFile(path.join(pids, 'pids.max'), String(caps.maxProcs));
    } else {
      const [dir] = dirs as [string];
      await writeFile(path.join(dir, 'memory.max'), String(caps.memoryBytes));
      await writeFile(path.join(dir, 'memory.swap.max'), '0').catch(() => undefined);
      await writeFile(path.join(dir, 'pids.max'), String(caps.maxProcs));
    }
    return new CommandCgroup(support, dirs);
  }

  /** The files a process writes its pid to, to join this cgroup. */
  get procFiles(): string[] {
    return this.dirs.map((d) => path.join(d, 'cgroup.procs'));
  }

  /** Which cap the command ran into, if any. */
  async exceeded(): Promise<{ memory: boolean; procs: boolean }> {
    const count = async (file: string, key: string) => {
      const text = await readFile(file, 'utf8').catch(() => '');
      return Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    };
    if (this.support.caps === 'cgroup-v1') {
      const [memory, pids] = this.dirs as [string, string];
      return { memory: (await count(path.join(memory, 'memory.oom_control'), 'oom_kill')) > 0, procs: (await count(path.join(pids, 'pids.events'), 'max')) > 0 };
    }
    const [dir] = this.dirs as [string];
    return { memory: (await count(path.join(dir, 'memory.events'), 'oom_kill')) > 0, procs: (await count(path.join(dir, 'pids.events'), 'max')) > 0 };
  }

  /** Kills whatever is still in it and removes it. */
  async remove(): Promise<void> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const pids = new Set<number>();
      for (const file of this.procFiles) for (const pid of (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean)) pids.add(Number(pid));
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      const left = await Promise.all(this.dirs.map((d) => rmdir(d).then(() => false, () => true)));
      if (!left.some(Boolean)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** A uid of the build's own (when the worker is root), held until release(); no two builds share one. */
export interface BuildUid {
  uid: number;
  release(): Promise<void>;
}

const UID_LOCKS = path.join(tmpdir(), 'slipway-uids');

/** Drops the uid locks of workers that died holding them (at worker start). */
export async function releaseDeadUidLocks(lockDir = UID_LOCKS): Promise<void> {
  for (const name of await readdir(lockDir).catch(() => [] as string[])) {
    const holder = Number(await readFile(path.join(lockDir, name), 'utf8').catch(() => '0'));
    if (!holder || !isAlive(holder)) await unlink(path.join(lockDir, name)).catch(() => undefined);
  }
}

export async function allocateBuildUid(uids: UidRange, lockDir = UID_LOCKS): Promise<BuildUid | null> {
  if (!isRoot()) return null;
  await mkdir(lockDir, { recursive: true, mode: 0o700 });
  // Random picks rarely collide in a large range; in a small one, give up rather than spin.
  for (let tries = 0; tries < Math.max(1000, uids.count * 4); tries++) {
    const uid = uids.first + randomInt(uids.count);
    const file = path.join(lockDir, String(uid));
    try {
      const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      return { uid, release: () => unlink(file).catch(() => undefined) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Held by a worker that died without releasing it: take it over.
      const holder = Number(await readFile(file, 'utf8').catch(() => '0'));
      if (holder && !isAlive(holder)) await unlink(file).catch(() => undefined);
    }
  }
  throw new Error(`no free build uid in BUILD_UIDS (${uids.first}-${uids.first + uids.count - 1}); more builds run on this host than the range holds`);
}

export interface BwrapOptions {
  /** The build's /tmp (a folder of its disk), bound before anything else: other binds may lie under /tmp. */
  tmp?: string;
  /** host path → sandbox path, read-write. */
  rwBinds: readonly [string, string][];
  /** host path → sandbox path, read-only. */
  roBinds: readonly [string, string][];
  cwd: string;
  hostname: string;
  /** The command already runs in a network namespace made for it (MAKE_NETWORK), as this uid. */
  madeNetwork?: { uid: number };
}

/** bubblewrap's arguments for a sealed sandbox (everything up to the `--` before the command). */
export function bwrapArgs(o: BwrapOptions): string[] {
  const net = o.madeNetwork ? ['--uid', String(o.madeNetwork.uid), '--gid', String(o.madeNetwork.uid)] : ['--unshare-net'];
  const args = ['--unshare-user', '--unshare-ipc', '--unshare-pid', ...net, '--unshare-uts', '--unshare-cgroup-try'];
  args.push('--die-with-parent', '--new-session', '--disable-userns', '--hostname', o.hostname);
  args.push('--ro-bind', '/usr', '/usr');
  for (const [host, inside] of SYSTEM_LINKS) args.push(...(inside === null ? ['--ro-bind', host, host] : ['--symlink', inside, host]));
  for (const etc of ETC_READ) args.push('--ro-bind-try', etc, etc);
  args.push('--proc', '/proc', '--dev', '/dev');
  if (o.tmp) args.push('--bind', o.tmp, SANDBOX.tmp);
  args.push('--dir', '/run/slipway');
  for (const [host, inside] of o.roBinds) args.push('--ro-bind', host, inside);
  for (const [host, inside] of o.rwBinds) args.push('--bind', host, inside);
  // The sandbox's own root is a tmpfs: read-only, so the build's own folders are the only places to write.
  args.push('--remount-ro', '/', '--chdir', o.cwd);
  return args;
}

/** /bin, /lib… are links into /usr on merged-/usr systems (Debian 12): the same links inside; else read-only binds. */
const SYSTEM_LINKS: [string, string | null][] = [];
export async function loadSystemLinks(): Promise<void> {
  if (SYSTEM_LINKS.length) return;
  for (const name of ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']) {
    const stat = await lstat(name).catch(() => null);
    if (!stat) continue;
    SYSTEM_LINKS.push([name, stat.isSymbolicLink() ? await readlink(name) : null]);
  }
}

/** The sandbox-side files a build's /etc needs that the host's must not provide (it names the host's users). */
export async function writeIdentityFiles(dir: string, uid: number): Promise<SandboxEtc> {
  const passwd = path.join(dir, 'passwd');
  const group = path.join(dir, 'group');
  const hosts = path.join(dir, 'hosts');
  const resolv = path.join(dir, 'resolv.conf');
  // Only the sandbox's own resolver (relay.cjs); where there is none, a lookup fails at once.
  await writeFile(resolv, 'nameserver 127.0.0.53\noptions timeout:5 attempts:3\n');
  await writeFile(passwd, `root:x:0:0:root:/root:/usr/sbin/nologin\nbuilder:x:${uid}:${uid}:build:${SANDBOX.home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`);
  await writeFile(group, `root:x:0:\nbuilder:x:${uid}:\nnogroup:x:65534:\n`);
  await writeFile(hosts, '127.0.0.1 localhost\n::1 localhost\n');
  return { passwd, group, hosts, resolv };
}

/** Host paths of the sandbox's generated /etc files. */
export interface SandboxEtc {
  passwd: string;
  group: string;
  hosts: string;
  resolv: string;
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

// The build sandbox: each install and build command runs under bubblewrap in new user, pid, mount,
// ipc, uts, cgroup and network namespaces. It sees a read-only system (/usr, a few files of /etc),
// its own folders read-write at /build/src, /build/home and /tmp (on its capped disk), a /proc of its own, and no
// network but a loopback that leads only to its egress proxy (and, where the worker can make the
// network namespace itself, names that resolve through it: MAKE_NETWORK). When the command ends (or
// is killed at its time limit) the pid namespace ends and every process the build started ends with
// it. Caps come from a cgroup per command (cgroups.ts) where the host allows, rlimits otherwise.
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readFile, readdir, readlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { randomInt } from 'node:crypto';
import { isAlive } from '@slipway/shared';
import { detectCgroups, type CapsKind } from './cgroups';

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

export type { Caps, CapsKind } from './cgroups';

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

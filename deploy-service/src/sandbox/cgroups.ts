// Each build command's cgroup, where the host lets the worker make one (v1: a memory and a pids
// hierarchy; v2: the unified tree), with its memory and process caps; the folders of workers that
// died are removed at start. Without one, caps are rlimits (run-command.ts).
import { lstat, mkdir, readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isAlive } from '@slipway/shared';

export type CapsKind = 'cgroup-v1' | 'cgroup-v2' | 'rlimit';

export interface Caps {
  memoryBytes: number;
  maxProcs: number;
  maxFileBytes: number;
}

/** What of the sandbox's support the cgroups need (sandbox.ts's SandboxSupport). */
type CgroupSupport = { readonly caps: CapsKind; readonly cgroupRoots: readonly string[] };

/** The cgroup folders the worker may create children in, and which kind they are. */
export async function detectCgroups(): Promise<{ caps: CapsKind; roots: string[] }> {
  if (process.getuid?.() !== 0) return { caps: 'rlimit', roots: [] };
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
export async function releaseSandbox(support: CgroupSupport): Promise<void> {
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
    private readonly support: CgroupSupport,
    readonly dirs: string[],
  ) {}

  static async create(support: CgroupSupport, name: string, caps: Caps): Promise<CommandCgroup | null> {
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

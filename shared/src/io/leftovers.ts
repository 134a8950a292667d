// Folders a process leaves behind when it dies: each service names its temporary folders
// `<prefix><pid>-<random>`, and the next process of the kind removes those whose process is gone
// (and, of folders named before the pid was in them, those older than a day). A folder holding the
// caller's own pid is a predecessor's when it is older than the caller: a restarted container's
// process often has the same pid as the one that died.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

const UNNAMED_MAX_AGE_MS = 24 * 3600_000;

/** Whether a process with this pid exists (EPERM: it does, another user's). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The folders in `dir` named `<prefix>[<id>-]<pid>-<6 characters>` whose process is gone, or named
 * `<prefix>[<id>-]<6 characters>` (before pids were in the names) and older than a day.
 */
export async function leftoverFolders(dir: string, prefix: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith(prefix)) continue;
    const rest = name.slice(prefix.length);
    const pid = /(?:^|-)(\d+)-[A-Za-z0-9]{6}$/.exec(rest)?.[1];
    if (pid !== undefined) {
      if (Number(pid) === process.pid ? await olderThanThisProcess(path.join(dir, name)) : !isAlive(Number(pid))) found.push(path.join(dir, name));
      continue;
    }
    if (!/[A-Za-z0-9]{6}$/.test(rest)) continue;
    const info = await stat(path.join(dir, name)).catch(() => null);
    if (info?.isDirectory() && Date.now() - info.mtimeMs > UNNAMED_MAX_AGE_MS) found.push(path.join(dir, name));
  }
  return found;
}

async function olderThanThisProcess(folder: string): Promise<boolean> {
  const info = await stat(folder).catch(() => null);
  return info !== null && info.mtimeMs < Date.now() - process.uptime() * 1000;
}

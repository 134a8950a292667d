// Who builds run as: when the worker runs as root (as in its container), every build runs as an
// unprivileged user (BUILD_USER, default `builder`), so it cannot read the worker's
// /proc/<pid>/environ, its files, or signal it. As any other user, builds run as that user.
import { readFile } from 'node:fs/promises';

export interface BuildIdentity {
  user: string;
  uid: number;
  gid: number;
}

export class BuildUserError extends Error {}

/** The identity to drop to, or null when the worker is not root (or BUILD_USER=root opts out). */
export async function resolveBuildIdentity(user: string, passwdFile = '/etc/passwd'): Promise<BuildIdentity | null> {
  if (process.getuid?.() !== 0 || user === 'root') return null;
  const passwd = await readFile(passwdFile, 'utf8').catch(() => '');
  for (const line of passwd.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name === user && uid && gid) return { user, uid: Number(uid), gid: Number(gid) };
  }
  throw new BuildUserError(
    `the worker runs as root but BUILD_USER "${user}" does not exist; create it (useradd --system --create-home ${user}) or set BUILD_USER=root to run builds as root (not isolated)`,
  );
}

// Reading a small file a repository or a build wrote: its text only when it is a regular file (never
// through a link, so a repository cannot point the reader at a host file) and within a size bound.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/** The file's text, or null when it is missing, not a regular file, a link, or over `maxBytes`. */
export async function readSmallFile(file: string, maxBytes = 1024 * 1024): Promise<string | null> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => null);
  if (!handle) return null;
  try {
    const stat = await handle.stat();
    return stat.isFile() && stat.size <= maxBytes ? await handle.readFile('utf8') : null;
  } finally {
    await handle.close();
  }
}

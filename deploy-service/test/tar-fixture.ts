// Tar streams made member by member, headers written by hand, so a test can hold what a real tar (or
// git archive) would never write: links, devices, names that climb out, a file twice, endless zeros.
import { Header } from 'tar';

export type TarMember = { path: string; type?: string; body?: string | Buffer; linkpath?: string; mode?: number };

/** A tar stream of `members` exactly as given, then `trailer` (the two zero blocks that end an archive). */
export function tarOf(members: TarMember[], trailer: Buffer = Buffer.alloc(1024)): Buffer {
  const blocks: Buffer[] = [];
  for (const m of members) {
    const body = Buffer.from(m.body ?? '');
    const header = Buffer.alloc(512);
    const type = m.type ?? 'File';
    new Header({ path: m.path, type: type as never, size: type === 'File' ? body.length : 0, mode: m.mode ?? (type === 'Directory' ? 0o755 : 0o644), linkpath: m.linkpath, mtime: new Date(0) }).encode(header, 0);
    blocks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(trailer);
  return Buffer.concat(blocks);
}

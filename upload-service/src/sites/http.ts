// The HTTP rules a site's answers follow: their cache headers, the encoding chosen for a file,
// conditional requests and ranges, and the plain 404s.
import { STATUS_CODES } from 'node:http';
import { reply, type Req, type Res } from './reply';
import type { Encoding, ManifestFile } from '@slipway/shared';

/** A file whose name changes with its content (isImmutableAsset), and everything else. */
export const IMMUTABLE = 'public, max-age=31536000, immutable';
export const REVALIDATE = 'public, max-age=0, must-revalidate';

/** Headers every site answer carries. */
export function siteHeaders(res: Res): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'strict-origin-when-cross-origin');
}

/** A plain not-found answer; a 410 or 451 rule whose page is missing answers its own status. */
export function notFound(req: Req, res: Res, status: 404 | 410 | 451 = 404): void {
  reply(req, res, status, `${STATUS_CODES[status]}\n`, { 'Cache-Control': REVALIDATE });
}

/** The manifest names a file S3 does not have: only if someone removed objects by hand. */
export function missing(req: Req, res: Res): void {
  res.removeHeader('Content-Encoding');
  reply(req, res, 404, 'Not Found\n');
}

/** The best stored variant the client accepts: br, then gzip, else none. */
export function chooseEncoding(header: string | string[] | undefined, entry: Pick<ManifestFile, 'br' | 'gz'>): Encoding | null {
  if (typeof header !== 'string' || header === '') return null;
  const q = new Map<string, number>();
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const weight = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    if (name) q.set(name, weight === undefined ? 1 : Number(weight));
  }
  const accepts = (name: string) => (q.get(name) ?? q.get('*') ?? 0) > 0;
  if (entry.br !== undefined && accepts('br')) return 'br';
  if (entry.gz !== undefined && (accepts('gzip') || accepts('x-gzip'))) return 'gz';
  return null;
}

/** If-None-Match against the current ETag, by the weak comparison RFC 9110 asks for. */
export function notModified(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/** If-Range: a range is honoured only for the representation the client has (strong comparison). */
export function ifRangeMatches(header: string | undefined, etag: string): boolean {
  return header === undefined || header.trim() === etag;
}

/** One `bytes=` range; null to ignore the header (malformed, several ranges); 'unsatisfiable' for 416. */
export function parseRange(header: string, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return null;
  }
  if (start >= size || size === 0) return 'unsatisfiable';
  return { start, end };
}

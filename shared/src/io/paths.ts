// Path and object-key safety: every key and local path Slipway builds from repository or S3 data
// passes through here, so nothing can leave its folder or its prefix.
import path from 'node:path';
import { UnsafePathError } from '../errors';

/**
 * Normalises a relative POSIX path from outside (a repository, a request, an S3 key) and refuses
 * anything that is absolute, climbs with `..`, or holds NUL or backslashes.
 */
export function safeRelativePath(input: string): string {
  if (input.includes('\0') || input.includes('\\')) throw new UnsafePathError(`path ${JSON.stringify(input)} has a forbidden character`);
  if (input.startsWith('/')) throw new UnsafePathError(`path ${JSON.stringify(input)} is absolute`);
  const normal = path.posix.normalize(input);
  if (normal === '..' || normal.startsWith('../')) throw new UnsafePathError(`path ${JSON.stringify(input)} leaves its folder`);
  return normal === '.' ? '' : normal.replace(/\/+$/, '');
}

/** `prefix/<rel>` for an object key; `prefix` ends without a slash. */
export function keyUnder(prefix: string, rel: string): string {
  const safe = safeRelativePath(rel);
  if (safe === '') throw new UnsafePathError(`empty object key under ${prefix}/`);
  return `${prefix}/${safe}`;
}

/** The path inside `root` for a relative path, refusing one that would resolve outside it. */
export function pathInside(root: string, rel: string): string {
  const resolved = path.resolve(root, safeRelativePath(rel));
  const base = path.resolve(root);
  if (resolved !== base && !resolved.startsWith(base + path.sep)) {
    throw new UnsafePathError(`path ${JSON.stringify(rel)} leaves ${base}`);
  }
  return resolved;
}

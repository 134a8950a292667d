// Builds published before manifests existed: served by probing S3 keys for the request path.
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { reply, type Req, type Res } from './reply';
import { UnsafePathError, contentTypeFor, keyUnder, safeRelativePath, storageKeys, type Storage } from '@slipway/shared';
import { notFound } from './http';
import { decodePath } from './resolve';

/**
 * The object keys to try, in order, for a request path, for builds without a manifest:
 * `/` and `/docs/` → their index.html; `/about` → `about`, then `about/index.html`, then the root
 * index.html (a single-page app's route); a missing file with an extension is a 404.
 */
export function candidateKeys(prefix: string, requestPath: string, fallback = 'index.html'): string[] {
  const decoded = decodePath(requestPath);
  const rel = safeRelativePath(decoded.replace(/^\/+/, ''));
  const root = `${prefix}/index.html`;
  const spa = keyUnder(prefix, fallback);
  if (rel === '') return [...new Set([root, spa])];
  if (decoded.endsWith('/')) return [keyUnder(prefix, `${rel}/index.html`)];
  if (path.posix.extname(rel) !== '') return [keyUnder(prefix, rel)];
  return [keyUnder(prefix, rel), keyUnder(prefix, `${rel}/index.html`), spa];
}

export async function serveLegacy(req: Req, res: Res, storage: Storage, id: string, build: string, rawPath: string, spaFallback: string | null): Promise<void> {
  let keys: string[];
  try {
    keys = candidateKeys(storageKeys.build(id, build), rawPath, spaFallback ?? undefined);
  } catch (err) {
    if (err instanceof UnsafePathError) {
      reply(req, res, 400, 'Bad Request\n');
      return;
    }
    throw err;
  }
  for (const key of keys) {
    const object = await storage.get(key);
    if (!object) continue;
    res.statusCode = 200;
    res.setHeader('Content-Type', contentTypeFor(key));
    if (object.contentLength !== undefined) res.setHeader('Content-Length', String(object.contentLength));
    if (object.etag) res.setHeader('ETag', object.etag);
    res.setHeader('Cache-Control', key.endsWith('.html') ? 'no-cache' : 'public, max-age=300');
    if (req.method === 'HEAD') {
      object.body.destroy();
      res.end();
      return;
    }
    await pipeline(object.body, res);
    return;
  }
  notFound(req, res);
}

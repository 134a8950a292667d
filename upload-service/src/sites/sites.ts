// Site serving. A request whose Host is `<id>.<BASE_DOMAIN>`, a project alias (`<project>.` for
// production, `<branch>--<project>.` for a branch) or a project's custom domain gets the deployment's
// live build, `dist/<id>/<liveBuild>/`. The live build is read from the record on every request, so
// a switch (a new build, a rollback) is atomic.
//
// Each build has a manifest (shared/src/site/manifest.ts), read once and kept in memory: routing,
// conditional requests, 404s and redirects are answered from it without touching S3, and a file
// costs one S3 read at most (small ones are kept in memory too). The rules, in order:
//   1. a forced `_redirects` rule (`301!`);
//   2. the file: `/` and `/docs/` → their index.html; `/about` → `about`, then `about.html` (clean
//      URLs); `/about.html` → 308 to `/about`, `/docs/index.html` → 308 to `/docs/`, `/docs` → 308 to
//      `/docs/` when only docs/index.html exists, `/about/` → 308 to `/about` when only about.html does;
//   3. the other `_redirects` rules (redirects with their status; 200 and 404 serve another file);
//   4. not found: the request's spaFallback page for extension-less paths, else `404.html` with status
//      404, else `index.html` for extension-less paths (single-page apps), else a plain 404.
// Builds published before manifests existed are served by the older key-probing path (serveLegacy).
// Over 300 lines: host routing, path resolution, HTTP caching and the legacy path are still one file; splitting them is the next step of issue 20.
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { NextFunction, Request, Response } from 'express';
import { LRUCache } from 'lru-cache';
import {
  BUILD_ID_PATTERN,
  MAX_SITE_PATH_BYTES,
  ProjectNameSchema,
  UnsafePathError,
  contentTypeFor,
  headersFor,
  isDeploymentId,
  isImmutableAsset,
  keyUnder,
  matchRedirect,
  safeRelativePath,
  siteKeys,
  storageKeys,
  type Encoding,
  type ManifestFile,
  type Queue,
  type SiteManifest,
  type Storage,
} from '@slipway/shared';

/** What a Host header names: a deployment, a project's production, a project's branch, a custom domain, or nothing. */
export type SiteHost = { deployment: string } | { project: string; branch: string | null } | { domain: string };

const DOMAIN_NAME = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function siteFromHost(host: string | undefined, baseDomain: string): SiteHost | null {
  if (!host) return null;
  const name = host.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
  const suffix = `.${baseDomain}`;
  // Another name with a dot may be a project's custom domain (looked up by the caller).
  if (!name.endsWith(suffix)) return name !== baseDomain && DOMAIN_NAME.test(name) ? { domain: name } : null;
  const label = name.slice(0, -suffix.length);
  if (isDeploymentId(label)) return { deployment: label };
  // `<branch>--<project>`: neither part holds "--" (project names may not, branch labels cannot).
  const parts = label.split('--');
  if (parts.length > 2) return null;
  const [first, second] = parts as [string, string | undefined];
  const project = second ?? first;
  if (!ProjectNameSchema.safeParse(project).success) return null;
  if (second !== undefined && !/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/.test(first)) return null;
  return { project, branch: second === undefined ? null : first };
}

/** The deployment id a Host header names directly, or null. */
export function siteIdFromHost(host: string | undefined, baseDomain: string): string | null {
  const site = siteFromHost(host, baseDomain);
  return site && 'deployment' in site ? site.deployment : null;
}

/** Where a request path leads within a build. */
export type Resolution = { file: string; status: 200 | 404 } | { redirect: string; status: number } | { notFound: true };

/** The request path (raw, percent-encoded) against a manifest; throws UnsafePathError for a path that would climb out. */
export function resolvePath(manifest: Pick<SiteManifest, 'files' | 'redirects'>, rawPath: string, query: string, spaFallback?: string | null): Resolution {
  const { files } = manifest;
  const decoded = decodePath(rawPath);
  const rel = safeRelativePath(decoded.replace(/^\/+/, ''));
  const slash = decoded.endsWith('/') && rel !== '';
  const rule = matchRedirect(manifest.redirects, `/${rel}${slash ? '/' : ''}`);
  if (rule?.force) return applyRule(rule);
  const found = lookup(rel, slash);
  if (found) return found;
  if (rule) return applyRule(rule);
  const extensionless = path.posix.extname(rel) === '';
  if (spaFallback && extensionless && files[spaFallback]) return { file: spaFallback, status: 200 };
  if (files['404.html']) return { file: '404.html', status: 404 };
  if (extensionless && files['index.html']) return { file: 'index.html', status: 200 };
  return { notFound: true };

  function lookup(rel: string, slash: boolean): Resolution | null {
    const to = (target: string) => ({ redirect: encodePath(target) + query, status: 308 });
    if (rel === '') return files['index.html'] ? { file: 'index.html', status: 200 } : null;
    if (slash) {
      if (files[`${rel}/index.html`]) return { file: `${rel}/index.html`, status: 200 };
      if (files[`${rel}.html`] || files[rel]) return to(`/${rel}`);
      return null;
    }
    if (files[rel]) {
      if (rel === 'index.html' || rel.endsWith('/index.html')) return to(`/${rel.slice(0, -'index.html'.length)}`);
      if (rel.endsWith('.html') && !files[rel.slice(0, -5)]) return to(`/${rel.slice(0, -5)}`);
      return { file: rel, status: 200 };
    }
    if (files[`${rel}.html`]) return { file: `${rel}.html`, status: 200 };
    if (files[`${rel}/index.html`]) return to(`/${rel}/`);
    return null;
  }

  function applyRule(rule: { to: string; status: number }): Resolution {
    if (rule.status !== 200 && rule.status !== 404) return { redirect: rule.to.includes('?') ? rule.to : rule.to + query, status: rule.status };
    const target = decodePath(rule.to.split('?')[0]!);
    const targetRel = safeRelativePath(target.replace(/^\/+/, ''));
    // A rewrite names a file (`/app/index.html`) or a path that leads to one (`/app/`).
    if (files[targetRel]) return { file: targetRel, status: rule.status };
    const found = lookup(targetRel, target.endsWith('/') && targetRel !== '');
    if (found && 'file' in found) return { file: found.file, status: rule.status };
    return { notFound: true };
  }
}

function decodePath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new UnsafePathError(`path ${JSON.stringify(raw.slice(0, 200))} is not valid percent-encoding`);
  }
}

function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

export interface SitesOptions {
  baseDomain: string;
  apiHosts?: readonly string[];
  /** Memory for small files; 0 turns the file cache off. */
  cacheBytes?: number;
  /** Files up to this size are kept in memory. */
  cacheFileBytes?: number;
}

/** A site's read of S3 (a manifest, a small file, the start of a large one) gives up after this: a visitor does not wait longer. */
const SITE_READ_MS = 10_000;
/** Manifests in memory: up to this many bytes of JSON (a 20,000-file site's is about 2 MB). */
const MANIFEST_CACHE_BYTES = 64 * 1024 * 1024;
const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'public, max-age=0, must-revalidate';
/** A build whose manifest is missing was published before manifests existed. */
const NO_MANIFEST = { legacy: true } as const;
type CachedManifest = { manifest: SiteManifest; bytes: number } | typeof NO_MANIFEST;

export function sitesMiddleware(queue: Queue, storage: Storage, options: SitesOptions) {
  const { baseDomain, apiHosts = [], cacheBytes = 64 * 1024 * 1024, cacheFileBytes = 256 * 1024 } = options;
  const manifests = new LRUCache<string, CachedManifest, { id: string; build: string }>({
    maxSize: MANIFEST_CACHE_BYTES,
    sizeCalculation: (v) => ('bytes' in v ? Math.max(1, v.bytes) : 1),
    // Concurrent requests for one build share one read.
    fetchMethod: async (_key, _stale, { context }) => {
      const object = await storage.get(siteKeys.manifest(context.id, context.build), undefined, AbortSignal.timeout(SITE_READ_MS));
      if (!object) return NO_MANIFEST;
      const text = (await readAll(object.body)).toString('utf8');
      return { manifest: JSON.parse(text) as SiteManifest, bytes: text.length };
    },
  });
  const filesCache =
    cacheBytes > 0
      ? new LRUCache<string, Buffer>({
          maxSize: cacheBytes,
          sizeCalculation: (b) => Math.max(1, b.length),
          fetchMethod: async (key) => {
            const object = await storage.get(key, undefined, AbortSignal.timeout(SITE_READ_MS));
            return object ? readAll(object.body) : undefined;
          },
        })
      : null;

  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const site = siteFromHost(req.headers.host, baseDomain);
    if (site === null) return next();
    let id: string | null;
    if ('domain' in site) {
      if (apiHosts.includes(site.domain)) return next();
      // Not a custom domain (the API's own host name, say): the request is the API's.
      const project = await queue.projects.domainProject(site.domain).catch(() => null);
      if (project === null) return next();
      id = await queue.projects.aliasTarget(project, null);
    } else {
      // An alias is a pointer to a deployment, read on every request: a rollback takes effect at once.
      id = 'deployment' in site ? site.deployment : await queue.projects.aliasTarget(site.project, site.branch);
    }
    siteHeaders(res);
    if (id === null) return notFound(res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.set('Allow', 'GET, HEAD').status(405).type('text/plain').send('Method Not Allowed\n');
      return;
    }
    const { liveBuild: build, spaFallback } = await queue.site(id);
    if (build === null || !BUILD_ID_PATTERN.test(build)) return notFound(res);
    const cached = await manifests.fetch(`${id}/${build}`, { context: { id, build } });
    const [rawPath = '/', rawQuery] = req.originalUrl.split(/\?(.*)/s);
    // What one request's rule matching may cost is bounded by the path's length (see site-patterns.ts).
    if (rawPath.length > MAX_SITE_PATH_BYTES) {
      res.status(414).type('text/plain').send('URI Too Long\n');
      return;
    }
    if (!cached || !('manifest' in cached)) return serveLegacy(req, res, storage, id, build, rawPath, spaFallback);
    const { manifest } = cached;

    let resolution: Resolution;
    try {
      // The raw URL, not req.path: an encoded `%2e%2e%2f` must not climb either.
      resolution = resolvePath(manifest, rawPath, rawQuery ? `?${rawQuery}` : '', spaFallback);
      for (const [name, value] of headersFor(manifest.headers, decodePath(rawPath))) res.set(name, value);
    } catch (err) {
      if (err instanceof UnsafePathError) {
        res.status(400).type('text/plain').send('Bad Request\n');
        return;
      }
      throw err;
    }
    if ('notFound' in resolution) return notFound(res);
    if ('redirect' in resolution) {
      res.status(resolution.status).location(resolution.redirect).type('text/plain').send(`Redirecting to ${resolution.redirect}\n`);
      return;
    }
    const entry = manifest.files[resolution.file]!;
    await sendFile(req, res, { id, build, rel: resolution.file, entry, status: resolution.status, customHeaders: res.getHeaders() });
  };

  async function sendFile(req: Request, res: Response, f: { id: string; build: string; rel: string; entry: ManifestFile; status: 200 | 404; customHeaders: Record<string, unknown> }): Promise<void> {
    const { entry, status } = f;
    const ranged = status === 200 && req.method === 'GET' && req.headers.range !== undefined;
    const encoding = ranged ? null : chooseEncoding(req.headers['accept-encoding'], entry);
    const etag = `"${entry.hash}${encoding ? `-${encoding}` : ''}"`;
    res.status(status);
    res.set('Content-Type', entry.type);
    res.set('ETag', etag);
    if (entry.br !== undefined || entry.gz !== undefined) res.vary('Accept-Encoding');
    // A rule file's Cache-Control wins over the default.
    if (f.customHeaders['cache-control'] === undefined) res.set('Cache-Control', status === 200 && isImmutableAsset(f.rel) ? IMMUTABLE : REVALIDATE);
    if (status === 200) res.set('Accept-Ranges', 'bytes');
    if (status === 200 && notModified(req.headers['if-none-match'], etag)) {
      res.status(304).end();
      return;
    }
    const key = encoding ? siteKeys.variant(f.id, f.build, encoding, f.rel) : keyUnder(storageKeys.build(f.id, f.build), f.rel);
    const size = encoding ? entry[encoding]! : entry.size;
    let range: { start: number; end: number } | null = null;
    if (ranged && ifRangeMatches(req.get('if-range'), etag)) {
      const parsed = parseRange(req.headers.range!, size);
      if (parsed === 'unsatisfiable') {
        res.status(416).set('Content-Range', `bytes */${size}`).type('text/plain').send('Range Not Satisfiable\n');
        return;
      }
      if (parsed) {
        range = parsed;
        res.status(206).set('Content-Range', `bytes ${parsed.start}-${parsed.end}/${size}`);
      }
    }
    if (encoding) res.set('Content-Encoding', encoding === 'gz' ? 'gzip' : 'br');
    res.set('Content-Length', String(range ? range.end - range.start + 1 : size));
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (filesCache && size <= cacheFileBytes) {
      const body = await filesCache.fetch(key);
      if (!body) return missing(res);
      res.end(range ? body.subarray(range.start, range.end + 1) : body);
      return;
    }
    // Bounded until S3 starts answering; then the body may take as long as the client does (S3's idle
    // socket timeout still ends a transfer that stalls).
    const started = new AbortController();
    const timer = setTimeout(() => started.abort(new DOMException(`S3 did not start answering within ${SITE_READ_MS} ms`, 'TimeoutError')), SITE_READ_MS);
    const object = await storage.get(key, range ?? undefined, started.signal).finally(() => clearTimeout(timer));
    if (!object) return missing(res);
    await pipeline(object.body, res);
  }
}

/** Headers every site answer carries. */
function siteHeaders(res: Response): void {
  res.set('X-Content-Type-Options', 'nosniff');
  res.set('Referrer-Policy', 'strict-origin-when-cross-origin');
}

function notFound(res: Response): void {
  res.status(404).set('Cache-Control', REVALIDATE).type('text/plain').send('Not Found\n');
}

/** The manifest names a file S3 does not have: only if someone removed objects by hand. */
function missing(res: Response): void {
  res.removeHeader('Content-Encoding');
  res.removeHeader('Content-Length');
  res.status(404).type('text/plain').send('Not Found\n');
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
function notModified(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/** If-Range: a range is honoured only for the representation the client has (strong comparison). */
function ifRangeMatches(header: string | undefined, etag: string): boolean {
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

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

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

async function serveLegacy(req: Request, res: Response, storage: Storage, id: string, build: string, rawPath: string, spaFallback: string | null): Promise<void> {
  let keys: string[];
  try {
    keys = candidateKeys(storageKeys.build(id, build), rawPath, spaFallback ?? undefined);
  } catch (err) {
    if (err instanceof UnsafePathError) {
      res.status(400).type('text/plain').send('Bad Request\n');
      return;
    }
    throw err;
  }
  for (const key of keys) {
    const object = await storage.get(key);
    if (!object) continue;
    res.status(200);
    res.set('Content-Type', contentTypeFor(key));
    if (object.contentLength !== undefined) res.set('Content-Length', String(object.contentLength));
    if (object.etag) res.set('ETag', object.etag);
    res.set('Cache-Control', key.endsWith('.html') ? 'no-cache' : 'public, max-age=300');
    if (req.method === 'HEAD') {
      object.body.destroy();
      res.end();
      return;
    }
    await pipeline(object.body, res);
    return;
  }
  notFound(res);
}

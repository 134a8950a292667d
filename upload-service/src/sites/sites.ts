// Site serving. A request whose Host is `<id>.<BASE_DOMAIN>`, a project alias (`<project>.` for
// production, `<branch>--<project>.` for a branch) or a project's custom domain gets the deployment's
// live build, `dist/<id>/<liveBuild>/`. Aliases and live builds come from pointers.ts: held in memory
// on a site server and dropped when a change is published, read from Redis every time in the API. A project with a preview password closes every host
// of it but production's and its custom domains (protect.ts).
//
// Each build has a manifest (shared/src/site/manifest.ts), read once and kept in memory: routing,
// conditional requests, 404s and redirects are answered from it without touching S3, and a file
// costs one S3 read at most (small ones are kept in memory too). The rules, in order:
//   1. a forced `_redirects` rule (`301!`);
//   2. the file: `/` and `/docs/` → their index.html; `/about` → `about`, then `about.html` (clean
//      URLs); `/about.html` → 308 to `/about`, `/docs/index.html` → 308 to `/docs/`, `/docs` → 308 to
//      `/docs/` when only docs/index.html exists, `/about/` → 308 to `/about` when only about.html does;
//   3. the other `_redirects` rules (redirects with their status; 200, 404, 410 and 451 serve another file);
//   4. not found: the request's spaFallback page for extension-less paths, else `404.html` with status
//      404, else `index.html` for extension-less paths (single-page apps), else a plain 404.
// Builds published before manifests existed are served by the older key-probing path (legacy.ts).
// Which site a Host names is host.ts's; which file a path names, resolve.ts's; the HTTP rules, http.ts's.
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import {
  BUILD_ID_PATTERN,
  MAX_SITE_PATH_BYTES,
  UnsafePathError,
  headersFor,
  isImmutableAsset,
  keyUnder,
  projectKey,
  recordKey,
  safeRelativePath,
  siteKeys,
  skewAliasKey,
  skewDeploymentKey,
  skewProductionKey,
  storageKeys,
  type Encoding,
  type ManifestFile,
  type SiteManifest,
  type Storage,
} from '@slipway/shared';
import { hostName, siteFromHost, type SiteHost } from './host';
import type { Pointers } from './pointers';
import type { PreviewGate } from './protect';
import { redirect, reply, vary, type ClientOf, type Req, type Res } from './reply';
import { IMMUTABLE, REVALIDATE, chooseEncoding, ifRangeMatches, missing, notFound, notModified, parseRange, siteHeaders } from './http';
import { serveLegacy } from './legacy';
import { decodePath, resolvePath, type PageStatus, type Resolution } from './resolve';


export interface SitesOptions {
  baseDomain: string;
  apiHosts?: readonly string[];
  /** Memory for small files; 0 turns the file cache off. */
  cacheBytes?: number;
  /** Files up to this size are kept in memory. */
  cacheFileBytes?: number;
  /** Closes the previews of projects with a preview password (protect.ts). */
  gate: PreviewGate;
  /** Where aliases, domains, stamps and live builds are read (pointers.ts). */
  pointers: Pointers;
  /** Who asks (the address, and whether over https), by TRUST_PROXY: for closed previews' cookies and limits. */
  client: ClientOf;
  /** Skew protection: how long (ms, 0 off) and how many builds back earlier builds' hashed assets are served. */
  skew?: { ms: number; builds: number };
}

/** A site's read of S3 (a manifest, a small file, the start of a large one) gives up after this: a visitor does not wait longer. */
const SITE_READ_MS = 10_000;
/** Manifests in memory: up to this many bytes of JSON (a 20,000-file site's is about 2 MB). */
const MANIFEST_CACHE_BYTES = 64 * 1024 * 1024;
/** A build whose manifest is missing was published before manifests existed. */
const NO_MANIFEST = { legacy: true } as const;
type CachedManifest = { manifest: SiteManifest; bytes: number } | typeof NO_MANIFEST;

export function sitesMiddleware(storage: Storage, options: SitesOptions) {
  const { baseDomain, apiHosts = [], cacheBytes = 64 * 1024 * 1024, cacheFileBytes = 256 * 1024, gate, pointers, client, skew = { ms: 0, builds: 0 } } = options;
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

  return async (req: Req, res: Res, next: () => void): Promise<void> => {
    const site = siteFromHost(req.headers.host, baseDomain);
    if (site === null) return next();
    const host = hostName(req.headers.host!);
    /** Whether the visitor may see a project's preview: open previews, or a valid cookie (else the gate answered). */
    const admitted = async (project: string) => {
      const stamp = await pointers.previewStamp(project);
      return stamp === null || gate.admit(req, res, host, { project, stamp }, client(req));
    };
    let id: string | null = null;
    if ('domain' in site) {
      if (apiHosts.includes(site.domain)) return next();
      // Not a custom domain (the API's own host name, say): the request is the API's.
      const project = await pointers.domainProject(site.domain).catch(() => null);
      if (project === null) return next();
      id = await pointers.aliasTarget(project, null);
    }
    siteHeaders(res);
    if ('deployment' in site) id = site.deployment;
    else if ('branch' in site && site.branch === null) id = await pointers.aliasTarget(site.project, null);
    else if ('branch' in site) {
      // A closed project's preview says nothing (not even whether the alias exists) before the visitor is let in.
      const [target, open] = await Promise.all([pointers.aliasTarget(site.project, site.branch), admitted(site.project)]);
      if (!open) return;
      id = target;
    }
    if (id === null) return notFound(req, res);
    const { liveBuild: build, spaFallback, project } = await pointers.site(id);
    // A deployment's own host is a preview too: closed when its project's previews are.
    if ('deployment' in site && project !== null && !(await admitted(project))) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return reply(req, res, 405, 'Method Not Allowed\n', { Allow: 'GET, HEAD' });
    }
    if (build === null || !BUILD_ID_PATTERN.test(build)) return notFound(req, res);
    const cached = await manifests.fetch(`${id}/${build}`, { context: { id, build } });
    const [rawPath = '/', rawQuery] = (req.url ?? '/').split(/\?(.*)/s);
    // What one request's rule matching may cost is bounded by the path's length (see site-patterns.ts).
    if (rawPath.length > MAX_SITE_PATH_BYTES) {
      return reply(req, res, 414, 'URI Too Long\n');
    }
    if (!cached || !('manifest' in cached)) return serveLegacy(req, res, storage, id, build, rawPath, spaFallback);
    const { manifest } = cached;

    let resolution: Resolution;
    try {
      // The raw URL, not req.path: an encoded `%2e%2e%2f` must not climb either.
      resolution = resolvePath(manifest, rawPath, rawQuery ? `?${rawQuery}` : '', spaFallback);
      for (const [name, value] of headersFor(manifest.headers, decodePath(rawPath))) res.setHeader(name, value);
    } catch (err) {
      if (err instanceof UnsafePathError) {
        return reply(req, res, 400, 'Bad Request\n');
      }
      throw err;
    }
    // Skew protection: a hashed asset the live build lacks, from a build this site served lately.
    if (!('redirect' in resolution) && !('file' in resolution && resolution.status === 200) && skew.ms > 0) {
      const earlier = await earlierAsset(id, site, project, rawPath);
      if (earlier) return sendFile(req, res, { ...earlier, status: 200, customHeaders: res.getHeaders() });
    }
    if ('notFound' in resolution) return notFound(req, res, resolution.status);
    if ('redirect' in resolution) {
      return redirect(req, res, resolution.status, resolution.redirect);
    }
    const entry = manifest.files[resolution.file]!;
    await sendFile(req, res, { id, build, rel: resolution.file, entry, status: resolution.status, customHeaders: res.getHeaders() });
  };

  /**
   * The newest build among those the site served within the window that has this hashed asset: what
   * a page loaded before a deploy asks for. Only names isImmutableAsset accepts (their content is
   * their name), never HTML or other mutable paths; at most SKEW_PROTECTION_BUILDS builds back.
   */
  async function earlierAsset(id: string, site: SiteHost, project: string | null, rawPath: string): Promise<{ id: string; build: string; rel: string; entry: ManifestFile } | null> {
    const rel = safeRelativePath(decodePath(rawPath).replace(/^\/+/, ''));
    if (rel === '' || !isImmutableAsset(rel)) return null;
    const histories: [string, string][] = [[skewDeploymentKey(id), recordKey(id)]];
    // An alias's own history, or production's (which custom domains serve too).
    if (project && 'domain' in site) histories.push([skewProductionKey(project), projectKey(project)]);
    else if (project && 'branch' in site) histories.push([site.branch === null ? skewProductionKey(project) : skewAliasKey(project, site.branch), projectKey(project)]);
    const since = Date.now() - skew.ms;
    const builds = (await Promise.all(histories.map(([history, group]) => pointers.earlierBuilds(history, group)))).flat().filter((b) => b.at >= since).sort((a, b) => b.at - a.at);
    for (const { member } of builds.slice(0, skew.builds)) {
      const [earlierId, build] = member.split('/') as [string, string];
      if (!BUILD_ID_PATTERN.test(build ?? '')) continue;
      const cached = await manifests.fetch(member, { context: { id: earlierId, build } });
      const entry = cached && 'manifest' in cached ? cached.manifest.files[rel] : undefined;
      if (entry) return { id: earlierId, build, rel, entry };
    }
    return null;
  }

  async function sendFile(req: Req, res: Res, f: { id: string; build: string; rel: string; entry: ManifestFile; status: PageStatus; customHeaders: Record<string, unknown> }): Promise<void> {
    const { entry, status } = f;
    const ranged = status === 200 && req.method === 'GET' && req.headers.range !== undefined;
    const encoding = ranged ? null : chooseEncoding(req.headers['accept-encoding'], entry);
    const etag = `"${entry.hash}${encoding ? `-${encoding}` : ''}"`;
    res.statusCode = status;
    res.setHeader('Content-Type', entry.type);
    res.setHeader('ETag', etag);
    if (entry.br !== undefined || entry.gz !== undefined) vary(res, 'Accept-Encoding');
    // A rule file's Cache-Control wins over the default.
    if (f.customHeaders['cache-control'] === undefined) res.setHeader('Cache-Control', status === 200 && isImmutableAsset(f.rel) ? IMMUTABLE : REVALIDATE);
    if (status === 200) res.setHeader('Accept-Ranges', 'bytes');
    if (status === 200 && notModified(req.headers['if-none-match'], etag)) {
      res.statusCode = 304;
      res.end();
      return;
    }
    const key = encoding ? siteKeys.variant(f.id, f.build, encoding, f.rel) : keyUnder(storageKeys.build(f.id, f.build), f.rel);
    const size = encoding ? entry[encoding]! : entry.size;
    let range: { start: number; end: number } | null = null;
    const ifRange = req.headers['if-range'];
    if (ranged && ifRangeMatches(typeof ifRange === 'string' ? ifRange : undefined, etag)) {
      const parsed = parseRange(req.headers.range!, size);
      if (parsed === 'unsatisfiable') return reply(req, res, 416, 'Range Not Satisfiable\n', { 'Content-Range': `bytes */${size}` });
      if (parsed) {
        range = parsed;
        res.statusCode = 206;
        res.setHeader('Content-Range', `bytes ${parsed.start}-${parsed.end}/${size}`);
      }
    }
    if (encoding) res.setHeader('Content-Encoding', encoding === 'gz' ? 'gzip' : 'br');
    res.setHeader('Content-Length', String(range ? range.end - range.start + 1 : size));
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (filesCache && size <= cacheFileBytes) {
      const body = await filesCache.fetch(key);
      if (!body) return missing(req, res);
      res.end(range ? body.subarray(range.start, range.end + 1) : body);
      return;
    }
    // Bounded until S3 starts answering; then the body may take as long as the client does (S3's idle
    // socket timeout still ends a transfer that stalls).
    const started = new AbortController();
    const timer = setTimeout(() => started.abort(new DOMException(`S3 did not start answering within ${SITE_READ_MS} ms`, 'TimeoutError')), SITE_READ_MS);
    const object = await storage.get(key, range ?? undefined, started.signal).finally(() => clearTimeout(timer));
    if (!object) return missing(req, res);
    await pipeline(object.body, res);
  }
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

// Site serving: a request whose Host is `<id>.<BASE_DOMAIN>` (or a project alias: `<project>.` for
// production, `<branch>--<project>.` for a branch) gets the file from the deployment's live build,
// `dist/<id>/<liveBuild>/`, streamed from S3, with an index.html fallback for folders and single-page
// apps (or the deployment's own spaFallback page). The live build is read from the record, so a
// switch to a new build is atomic.
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { NextFunction, Request, Response } from 'express';
import { BUILD_ID_PATTERN, ProjectNameSchema, UnsafePathError, contentTypeFor, isDeploymentId, keyUnder, safeRelativePath, storageKeys, type Queue, type Storage } from '@slipway/shared';

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

/**
 * The object keys to try, in order, for a request path:
 * `/` and `/docs/` → their index.html; `/about` → `about`, then `about/index.html`, then the root
 * index.html (a single-page app's route); a missing file with an extension is a 404.
 */
export function candidateKeys(prefix: string, requestPath: string, fallback = 'index.html'): string[] {
  let decoded: string;
  try {
    decoded = decodeURIComponent(requestPath);
  } catch {
    throw new UnsafePathError(`path ${JSON.stringify(requestPath)} is not valid percent-encoding`);
  }
  const rel = safeRelativePath(decoded.replace(/^\/+/, ''));
  const root = `${prefix}/index.html`;
  const spa = keyUnder(prefix, fallback);
  if (rel === '') return [...new Set([root, spa])];
  if (decoded.endsWith('/')) return [keyUnder(prefix, `${rel}/index.html`)];
  if (path.posix.extname(rel) !== '') return [keyUnder(prefix, rel)];
  return [keyUnder(prefix, rel), keyUnder(prefix, `${rel}/index.html`), spa];
}

export function sitesMiddleware(queue: Queue, storage: Storage, baseDomain: string, apiHosts: readonly string[] = []) {
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
    if (id === null) {
      res.status(404).type('text/plain').send('Not Found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.set('Allow', 'GET, HEAD').status(405).type('text/plain').send('Method Not Allowed\n');
      return;
    }
    const { liveBuild: build, spaFallback } = await queue.site(id);
    if (build === null || !BUILD_ID_PATTERN.test(build)) {
      res.status(404).type('text/plain').send('Not Found\n');
      return;
    }
    let keys: string[];
    try {
      // req.path is already normalised by the URL parser; the raw URL is checked so an encoded
      // `%2e%2e%2f` cannot climb either.
      keys = candidateKeys(storageKeys.build(id, build), req.originalUrl.split('?')[0] ?? '/', spaFallback ?? undefined);
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
      res.set('X-Content-Type-Options', 'nosniff');
      res.set('Cache-Control', key.endsWith('.html') ? 'no-cache' : 'public, max-age=300');
      if (req.method === 'HEAD') {
        object.body.destroy();
        res.end();
        return;
      }
      await pipeline(object.body, res);
      return;
    }
    res.status(404).type('text/plain').send('Not Found\n');
  };
}

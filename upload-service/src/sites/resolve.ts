// A request path against a build's manifest: which file answers, which redirect applies, or not
// found (the rules in order are in sites.ts's opening comment). Pure: no I/O.
import path from 'node:path';
import { UnsafePathError, isRewrite, matchRedirect, safeRelativePath, type SiteManifest } from '@slipway/shared';

/** A page's status: 200, or a rewrite's 404, 410 or 451 (`_redirects`). */
export type PageStatus = 200 | 404 | 410 | 451;
/** Where a request path leads within a build; `notFound` with a status when a 410 or 451 rule's page is missing. */
export type Resolution = { file: string; status: PageStatus } | { redirect: string; status: number } | { notFound: true; status?: 404 | 410 | 451 };

/** The request path (raw, percent-encoded) against a manifest; throws UnsafePathError for a path that would climb out. */
export function resolvePath(manifest: Pick<SiteManifest, 'files' | 'redirects'>, rawPath: string, query: string, spaFallback?: string | null): Resolution {
  const { files } = manifest;
  const decoded = decodePath(rawPath);
  const rel = safeRelativePath(decoded.replace(/^\/+/, ''));
  const slash = decoded.endsWith('/') && rel !== '';
  const rule = matchRedirect(manifest.redirects, `/${rel}${slash ? '/' : ''}`, query);
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
    if (!isRewrite(rule.status)) return { redirect: rule.to.includes('?') ? rule.to : rule.to + query, status: rule.status };
    const target = decodePath(rule.to.split('?')[0]!);
    const targetRel = safeRelativePath(target.replace(/^\/+/, ''));
    // A rewrite names a file (`/app/index.html`) or a path that leads to one (`/app/`).
    const status = rule.status as PageStatus;
    if (files[targetRel]) return { file: targetRel, status };
    const found = lookup(targetRel, target.endsWith('/') && targetRel !== '');
    if (found && 'file' in found) return { file: found.file, status };
    return status === 200 ? { notFound: true } : { notFound: true, status };
  }
}

export function decodePath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new UnsafePathError(`path ${JSON.stringify(raw.slice(0, 200))} is not valid percent-encoding`);
  }
}

function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

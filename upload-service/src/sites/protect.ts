// Protected previews. A project with a preview password (projects/secrets.ts) closes its previews:
// every host but production's (`<project>.`) and its custom domains, so `<branch>--<project>.`,
// `pr-<n>--<project>.` and each deployment's own `<id>.`. A visitor without a valid cookie gets a
// small login page (401) at whatever path it asked for; the password sets a cookie for that host only
// and sends it back where it was going. A share link (`?slipway_share=<token>`, made by
// POST /projects/:name/preview-links) sets the same cookie without the password, until it expires.
//
// A cookie is `<expiry>.<HMAC>` and a share token the same, each signed (Secrets.signingKeys, derived
// from SECRETS_KEY) over its kind, the host name, the expiry and the project's preview stamp: so it
// opens that one host only (a cookie copied to, or tossed from, another site does not check there),
// nothing can lengthen it, and a new password or a revocation (a new stamp) ends every one made before.
// The cookie is HttpOnly, SameSite=Lax, host-only (no Domain), and `__Host-` prefixed and Secure over
// https. Checking one costs the stamp's Redis read and an HMAC: no S3 read. What a closed preview
// answers is marked `private`, so no shared cache (a CDN in front) keeps it for the next visitor.
// Wrong passwords count toward the address's AUTH_FAILURE_LIMIT, with the API's bad tokens.
import { createHmac, timingSafeEqual } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import { TooManyRequestsError, openPreviewPassword, type Projects, type Secrets } from '@slipway/shared';
import { clientKey, type FailureThrottle } from '../access/throttle';

export const LOGIN_PATH = '/.slipway/login';
export const LOGOUT_PATH = '/.slipway/logout';
export const SHARE_PARAM = 'slipway_share';
/** How long a password's cookie lasts. */
export const SESSION_SECONDS = 7 * 24 * 3600;
export const DEFAULT_SHARE_HOURS = 72;
export const MAX_SHARE_HOURS = 30 * 24;
const COOKIE = 'slipway_preview';
const SECURE_COOKIE = `__Host-${COOKIE}`;
const SIGNED = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/;
const SIGNING_PURPOSE = 'preview-access';

type Kind = 'session' | 'share';

/** A closed preview: its project, and the stamp every cookie and link for it was signed with. */
export interface Closed {
  project: string;
  stamp: string;
}

export class PreviewGate {
  private readonly parseForm = express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 4 });

  constructor(
    private readonly secrets: Secrets,
    private readonly projects: Projects,
    private readonly failures: FailureThrottle,
    private readonly now: () => number = Date.now,
  ) {}

  /** A share token for `host` until `expiresAt` (ms); throws when no SECRETS_KEY is set. */
  shareToken(host: string, stamp: string, expiresAt: number): string {
    this.secrets.ensureEnabled();
    return this.sign('share', host, Math.floor(expiresAt / 1000), stamp);
  }

  /**
   * Lets the request through (true) when it holds a valid cookie for `host`; else answers it (a login,
   * a share link taken, the login page) and returns false.
   */
  async admit(req: Request, res: Response, host: string, closed: Closed): Promise<boolean> {
    const [rawPath = '/', rawQuery = ''] = req.originalUrl.split(/\?(.*)/s);
    if (rawPath === LOGIN_PATH && req.method === 'POST') {
      await this.login(req, res, host, closed);
      return false;
    }
    if (rawPath === LOGOUT_PATH) {
      res.clearCookie(cookieName(req), { path: '/', httpOnly: true, sameSite: 'lax', secure: req.secure });
      res.status(303).location('/').set('Cache-Control', 'no-store').type('text/plain').send('Signed out\n');
      return false;
    }
    const share = new URLSearchParams(rawQuery).get(SHARE_PARAM);
    if (share !== null) {
      const expires = this.verify('share', host, closed.stamp, share);
      if (expires === null) {
        loginPage(res, 401, host, withoutShare(rawPath, rawQuery), 'This link has expired or is not valid for this preview. Enter the password, or ask for a new link.');
        return false;
      }
      // The token leaves the address bar at once: it is not kept in the history, or sent on as a Referer.
      this.setCookie(req, res, host, closed.stamp, Math.min(expires, this.seconds() + SESSION_SECONDS));
      res.status(303).location(withoutShare(rawPath, rawQuery)).set('Cache-Control', 'no-store').type('text/plain').send('Opening the preview\n');
      return false;
    }
    if (this.hasSession(req, host, closed.stamp)) {
      if (rawPath === LOGIN_PATH) {
        res.status(303).location('/').set('Cache-Control', 'no-store').end();
        return false;
      }
      keepPrivate(res);
      return true;
    }
    loginPage(res, 401, host, rawPath === LOGIN_PATH ? '/' : req.originalUrl);
    return false;
  }

  private async login(req: Request, res: Response, host: string, closed: Closed): Promise<void> {
    const key = clientKey(req);
    try {
      this.failures.check(key);
    } catch (err) {
      if (!(err instanceof TooManyRequestsError)) throw err;
      res.set('Retry-After', String(err.retryAfterSeconds));
      return loginPage(res, 429, host, '/', `Too many wrong passwords from this address: try again in ${err.retryAfterSeconds} s.`);
    }
    let body: Record<string, unknown>;
    try {
      await new Promise<void>((resolve, reject) => this.parseForm(req, res, (err?: unknown) => (err ? reject(err as Error) : resolve())));
      body = (req.body ?? {}) as Record<string, unknown>;
    } catch {
      return loginPage(res, 400, host, '/', 'The form could not be read; try again.');
    }
    const next = safeNext(body.next);
    const given = typeof body.password === 'string' ? body.password : '';
    const project = await this.projects.get(closed.project);
    const password = project ? openPreviewPassword(project, this.secrets) : null;
    if (password === null) return loginPage(res, 403, host, next, 'This project\'s previews have no password set: ask its owner for a share link.');
    if (!sameText(given, password)) {
      this.failures.fail(key);
      return loginPage(res, 401, host, next, 'Wrong password.');
    }
    this.setCookie(req, res, host, closed.stamp, this.seconds() + SESSION_SECONDS);
    res.status(303).location(next).set('Cache-Control', 'no-store').type('text/plain').send('Signed in\n');
  }

  private setCookie(req: Request, res: Response, host: string, stamp: string, expires: number): void {
    res.cookie(cookieName(req), this.sign('session', host, expires, stamp), {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: req.secure,
      maxAge: Math.max(0, expires - this.seconds()) * 1000,
    });
  }

  /** Whether any of the request's preview cookies checks for this host (a tossed one beside it does not hide it). */
  private hasSession(req: Request, host: string, stamp: string): boolean {
    return cookieValues(req.headers.cookie).some((value) => this.verify('session', host, stamp, value) !== null);
  }

  private sign(kind: Kind, host: string, expires: number, stamp: string, key = this.secrets.signingKeys(SIGNING_PURPOSE)[0]): string {
    if (!key) throw new Error('no SECRETS_KEY to sign preview access with');
    return `${expires}.${createHmac('sha256', key).update(`${kind}\n${host}\n${expires}\n${stamp}`).digest('base64url')}`;
  }

  /** The expiry (s) of a valid, unexpired token or cookie value; null otherwise. */
  private verify(kind: Kind, host: string, stamp: string, value: string): number | null {
    const m = SIGNED.exec(value);
    if (!m) return null;
    const expires = Number(m[1]);
    if (expires <= this.seconds()) return null;
    for (const key of this.secrets.signingKeys(SIGNING_PURPOSE)) {
      if (sameText(this.sign(kind, host, expires, stamp, key), value)) return expires;
    }
    return null;
  }

  private seconds(): number {
    return Math.floor(this.now() / 1000);
  }
}

/** What a closed preview answers is for this visitor only: shared caches must not keep it. */
function keepPrivate(res: Response): void {
  const writeHead = res.writeHead;
  res.writeHead = function (this: Response, ...args: unknown[]) {
    const value = res.getHeader('Cache-Control');
    res.setHeader('Cache-Control', typeof value === 'string' && value.includes('immutable') ? 'private, max-age=31536000, immutable' : 'private, no-cache');
    return (writeHead as (...a: unknown[]) => Response).apply(this, args);
  } as Response['writeHead'];
}

function cookieName(req: Request): string {
  return req.secure ? SECURE_COOKIE : COOKIE;
}

/** Every value of the preview cookie in a Cookie header (a browser sends each cookie of that name it holds). */
export function cookieValues(header: string | undefined): string[] {
  if (!header) return [];
  return header
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part.startsWith(`${COOKIE}=`) || part.startsWith(`${SECURE_COOKIE}=`))
    .map((part) => part.slice(part.indexOf('=') + 1))
    .slice(0, 20);
}

/** Where a login sends the visitor back: a path on this host only, never another site (`//evil`, `/\evil`). */
export function safeNext(value: unknown): string {
  if (typeof value !== 'string' || value.length > 2000 || !value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\') || /[\x00-\x1f\x7f]/.test(value)) return '/';
  return value.startsWith('/.slipway/') ? '/' : value;
}

function withoutShare(rawPath: string, rawQuery: string): string {
  const params = new URLSearchParams(rawQuery);
  params.delete(SHARE_PARAM);
  const rest = params.toString();
  return safeNext(rest ? `${rawPath}?${rest}` : rawPath);
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(res: Response, status: number, host: string, next: string, message?: string): void {
  res.status(status).set({
    'Cache-Control': 'no-store',
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    'X-Frame-Options': 'DENY',
    'X-Robots-Tag': 'noindex',
  });
  res.send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Protected preview</title>
<style>body{font:16px system-ui,sans-serif;background:#f5f5f4;color:#1c1917;display:grid;place-items:center;min-height:90vh;margin:0}main{background:#fff;padding:2rem;border-radius:.5rem;box-shadow:0 1px 3px #0002;max-width:22rem}h1{font-size:1.2rem;margin:0 0 .5rem}p{color:#57534e;font-size:.9rem}input,button{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;margin-top:.5rem}button{background:#1c1917;color:#fff;border:0;border-radius:.25rem}#error{color:#b91c1c}</style></head>
<body><main><h1>This preview is protected</h1><p>${escapeHtml(host)} asks for its project's preview password.</p>${message ? `<p id="error">${escapeHtml(message)}</p>` : ''}
<form method="post" action="${LOGIN_PATH}"><input type="hidden" name="next" value="${escapeHtml(safeNext(next))}"><label>Password<input type="password" name="password" autocomplete="current-password" required autofocus></label><button type="submit">Open the preview</button></form></main></body></html>
`);
}

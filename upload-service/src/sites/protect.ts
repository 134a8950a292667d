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
import { TooManyRequestsError, openPreviewPassword, type Projects, type Secrets } from '@slipway/shared';
import type { FailureThrottle } from '../access/throttle';
import { redirect, reply, setCookie, type Req, type Res } from './reply';

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
/** A login form's size and time limits. */
const FORM_BYTES = 4096;
const FORM_MS = 10_000;

type Kind = 'session' | 'share';

/** A closed preview: its project, and the stamp every cookie and link for it was signed with. */
export interface Closed {
  project: string;
  stamp: string;
}

export class PreviewGate {
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
   * a share link taken, the login page) and returns false. `client` is who asks, by TRUST_PROXY.
   */
  async admit(req: Req, res: Res, host: string, closed: Closed, client: { ip: string; secure: boolean }): Promise<boolean> {
    const url = req.url ?? '/';
    const [rawPath = '/', rawQuery = ''] = url.split(/\?(.*)/s);
    if (rawPath === LOGIN_PATH && req.method === 'POST') {
      await this.login(req, res, host, closed, client);
      return false;
    }
    if (rawPath === LOGOUT_PATH) {
      setCookie(res, cookieText(client.secure, '', 0));
      redirect(req, res, 303, '/', { 'Cache-Control': 'no-store' }, 'Signed out\n');
      return false;
    }
    const share = new URLSearchParams(rawQuery).get(SHARE_PARAM);
    if (share !== null) {
      const expires = this.verify('share', host, closed.stamp, share);
      if (expires === null) {
        loginPage(req, res, 401, host, withoutShare(rawPath, rawQuery), 'This link has expired or is not valid for this preview. Enter the password, or ask for a new link.');
        return false;
      }
      // The token leaves the address bar at once: it is not kept in the history, or sent on as a Referer.
      this.setSession(res, client.secure, host, closed.stamp, Math.min(expires, this.seconds() + SESSION_SECONDS));
      redirect(req, res, 303, withoutShare(rawPath, rawQuery), { 'Cache-Control': 'no-store' }, 'Opening the preview\n');
      return false;
    }
    if (this.hasSession(req, host, closed.stamp)) {
      if (rawPath === LOGIN_PATH) {
        redirect(req, res, 303, '/', { 'Cache-Control': 'no-store' });
        return false;
      }
      keepPrivate(res);
      return true;
    }
    loginPage(req, res, 401, host, rawPath === LOGIN_PATH ? '/' : url);
    return false;
  }

  private async login(req: Req, res: Res, host: string, closed: Closed, client: { ip: string; secure: boolean }): Promise<void> {
    try {
      this.failures.check(client.ip);
    } catch (err) {
      if (!(err instanceof TooManyRequestsError)) throw err;
      res.setHeader('Retry-After', String(err.retryAfterSeconds));
      return loginPage(req, res, 429, host, '/', `Too many wrong passwords from this address: try again in ${err.retryAfterSeconds} s.`);
    }
    const form = await readForm(req);
    if (form === null) return loginPage(req, res, 400, host, '/', 'The form could not be read; try again.');
    const next = safeNext(form.get('next'));
    const given = form.get('password') ?? '';
    const project = await this.projects.get(closed.project);
    const password = project ? openPreviewPassword(project, this.secrets) : null;
    if (password === null) return loginPage(req, res, 403, host, next, 'This project\'s previews have no password set: ask its owner for a share link.');
    if (!sameText(given, password)) {
      this.failures.fail(client.ip);
      return loginPage(req, res, 401, host, next, 'Wrong password.');
    }
    this.setSession(res, client.secure, host, closed.stamp, this.seconds() + SESSION_SECONDS);
    redirect(req, res, 303, next, { 'Cache-Control': 'no-store' }, 'Signed in\n');
  }

  private setSession(res: Res, secure: boolean, host: string, stamp: string, expires: number): void {
    setCookie(res, cookieText(secure, this.sign('session', host, expires, stamp), Math.max(0, expires - this.seconds()), new Date(expires * 1000)));
  }

  /** Whether any of the request's preview cookies checks for this host (a tossed one beside it does not hide it). */
  private hasSession(req: Req, host: string, stamp: string): boolean {
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
function keepPrivate(res: Res): void {
  const writeHead = res.writeHead;
  res.writeHead = function (this: Res, ...args: unknown[]) {
    const value = res.getHeader('Cache-Control');
    res.setHeader('Cache-Control', typeof value === 'string' && value.includes('immutable') ? 'private, max-age=31536000, immutable' : 'private, no-cache');
    return (writeHead as (...a: unknown[]) => Res).apply(this, args);
  } as Res['writeHead'];
}

/** The preview cookie: host-only, HttpOnly, SameSite=Lax; `__Host-` and Secure over https. An empty value with 0 s clears it. */
function cookieText(secure: boolean, value: string, maxAgeSeconds: number, expires = new Date(0)): string {
  return `${secure ? SECURE_COOKIE : COOKIE}=${value}; Max-Age=${maxAgeSeconds}; Path=/; Expires=${expires.toUTCString()}; HttpOnly;${secure ? ' Secure;' : ''} SameSite=Lax`;
}

/** A form body of at most FORM_BYTES, read within FORM_MS; null when it is larger, slower or not a form. */
function readForm(req: Req): Promise<URLSearchParams | null> {
  if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) return Promise.resolve(null);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (value: URLSearchParams | null) => {
      clearTimeout(timer);
      req.removeAllListeners('data');
      resolve(value);
    };
    const timer = setTimeout(() => done(null), FORM_MS);
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > FORM_BYTES) return done(null);
      chunks.push(chunk);
    });
    req.on('end', () => done(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', () => done(null));
  });
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

function loginPage(req: Req, res: Res, status: number, host: string, next: string, message?: string): void {
  reply(
    req,
    res,
    status,
    `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Protected preview</title>
<style>body{font:16px system-ui,sans-serif;background:#f5f5f4;color:#1c1917;display:grid;place-items:center;min-height:90vh;margin:0}main{background:#fff;padding:2rem;border-radius:.5rem;box-shadow:0 1px 3px #0002;max-width:22rem}h1{font-size:1.2rem;margin:0 0 .5rem}p{color:#57534e;font-size:.9rem}input,button{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;margin-top:.5rem}button{background:#1c1917;color:#fff;border:0;border-radius:.25rem}#error{color:#b91c1c}</style></head>
<body><main><h1>This preview is protected</h1><p>${escapeHtml(host)} asks for its project's preview password.</p>${message ? `<p id="error">${escapeHtml(message)}</p>` : ''}
<form method="post" action="${LOGIN_PATH}"><input type="hidden" name="next" value="${escapeHtml(safeNext(next))}"><label>Password<input type="password" name="password" autocomplete="current-password" required autofocus></label><button type="submit">Open the preview</button></form></main></body></html>
`,
    {
      'Cache-Control': 'no-store',
      'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      'X-Frame-Options': 'DENY',
      'X-Robots-Tag': 'noindex',
    },
    'text/html; charset=utf-8',
  );
}

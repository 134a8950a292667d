// Answers and request facts on Node's own http objects, so the site code runs as Express middleware in
// the API (SERVE_SITES) and on a bare `node:http` server in the site server, where Express's own cost
// per request (about half of a warm answer's) is not paid.
import type { IncomingMessage, ServerResponse } from 'node:http';
import encodeUrl from 'encodeurl';
import proxyAddr from 'proxy-addr';

export type Req = IncomingMessage;
export type Res = ServerResponse;

/** A short answer with a body (none for HEAD), as text/plain unless `type` says otherwise. */
export function reply(req: Req, res: Res, status: number, body: string, headers: Record<string, string> = {}, type = 'text/plain; charset=utf-8'): void {
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** A redirect to a path or URL (percent-encoded as a Location must be). */
export function redirect(req: Req, res: Res, status: number, location: string, headers: Record<string, string> = {}, body = `Redirecting to ${location}\n`): void {
  reply(req, res, status, body, { ...headers, Location: encodeUrl(location) });
}

/** Adds `field` to Vary. */
export function vary(res: Res, field: string): void {
  const now = res.getHeader('Vary');
  const list = typeof now === 'string' ? now.split(',').map((v) => v.trim()).filter(Boolean) : [];
  if (!list.some((v) => v.toLowerCase() === field.toLowerCase() || v === '*')) res.setHeader('Vary', [...list, field].join(', '));
}

/** A `Set-Cookie` added (not replacing the others). */
export function setCookie(res: Res, cookie: string): void {
  const now = res.getHeader('Set-Cookie');
  res.setHeader('Set-Cookie', [...(Array.isArray(now) ? now : typeof now === 'string' ? [now] : []), cookie]);
}

/** Who asks, as Express's `trust proxy` would tell it (the same TRUST_PROXY setting, the same library). */
export interface ClientOf {
  (req: Req): { ip: string; secure: boolean };
}

export function clientOf(trustProxy: number | string | false): ClientOf {
  // As Express compiles it: a hop count trusts that many proxies, names or addresses trust those.
  const trust: (addr: string, i: number) => boolean =
    trustProxy === false ? () => false : typeof trustProxy === 'number' ? (_addr, i) => i < trustProxy : proxyAddr.compile(trustProxy.split(',').map((a) => a.trim()));
  return (req) => {
    const encrypted = (req.socket as { encrypted?: boolean }).encrypted === true;
    let secure = encrypted;
    const forwarded = req.headers['x-forwarded-proto'];
    if (req.socket.remoteAddress && trust(req.socket.remoteAddress, 0) && typeof forwarded === 'string') secure = forwarded.split(',')[0]!.trim().toLowerCase() === 'https';
    return { ip: proxyAddr(req, trust), secure };
  };
}

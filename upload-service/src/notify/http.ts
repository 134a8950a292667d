// Outgoing requests for deliveries (commit statuses, comments, webhooks): to URLs that projects chose,
// so each one is held to the addresses clones are (public unicast unless ALLOW_PRIVATE_NETWORKS, checked
// on the address actually connected to, so a name that resolves elsewhere later cannot reach inside),
// ends within DELIVERY_TIMEOUT_MS, follows no redirect and reads at most MAX_ANSWER_BYTES of the answer.
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { InvalidInputError, nonPublicRange } from '@slipway/shared';

export const DELIVERY_TIMEOUT_MS = 10_000;
const MAX_ANSWER_BYTES = 64 * 1024;

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** InvalidInputError unless `raw` is a URL a delivery may go to: https (http too with private networks allowed), no credentials. */
export function checkDeliveryUrl(raw: string, allowPrivateNetworks: boolean, what: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidInputError(`${what} is not a URL`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && allowPrivateNetworks)) throw new InvalidInputError(`${what} must be an https:// URL`);
  if (url.username || url.password) throw new InvalidInputError(`${what} must not contain credentials`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!allowPrivateNetworks && (nonPublicRange(host) ?? 'invalid') !== 'invalid') throw new InvalidInputError(`${what} is a ${nonPublicRange(host)} address: deliveries go to public hosts only`);
  if (!allowPrivateNetworks && /^(localhost|.*\.localhost)$/i.test(host)) throw new InvalidInputError(`${what} is this machine: deliveries go to public hosts only`);
  return url;
}

/** Resolves like the system does, then refuses an address that is not public (unless allowed). */
function policyLookup(allowPrivateNetworks: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses as dns.LookupAddress[];
      const refused = allowPrivateNetworks ? undefined : list.find((a) => nonPublicRange(a.address) !== null);
      if (refused || list.length === 0) {
        const error = Object.assign(new Error(`${hostname} resolves to a ${refused ? nonPublicRange(refused.address) : 'missing'} address: deliveries go to public hosts only`), { code: 'EREFUSED' });
        return callback(error, '', 0);
      }
      if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
      callback(null, list[0]!.address, list[0]!.family);
    });
  };
}

/** One request; rejects on a network failure or the deadline, resolves with any HTTP answer. */
export function send(url: URL, options: { method: string; headers: Record<string, string>; body?: string; allowPrivateNetworks: boolean; timeoutMs?: number }): Promise<Answer> {
  const client = url.protocol === 'https:' ? https : http;
  const body = options.body === undefined ? undefined : Buffer.from(options.body);
  return new Promise<Answer>((resolve, reject) => {
    const req = client.request(
      url,
      {
        method: options.method,
        headers: { 'user-agent': 'Slipway', ...options.headers, ...(body ? { 'content-length': String(body.length) } : {}) },
        lookup: policyLookup(options.allowPrivateNetworks),
        signal: AbortSignal.timeout(options.timeoutMs ?? DELIVERY_TIMEOUT_MS),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < MAX_ANSWER_BYTES) chunks.push(chunk.subarray(0, MAX_ANSWER_BYTES - size));
          size += chunk.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', (err) => reject(err.name === 'AbortError' || err.name === 'TimeoutError' ? new Error(`no answer within ${(options.timeoutMs ?? DELIVERY_TIMEOUT_MS) / 1000} s`) : err));
    req.end(body);
  });
}

/**
 * When to ask again after `answer` (ms from now), or null when asking again cannot help (the answer
 * says the request itself is wrong: 4xx but 408, 409 and 429, and 403 that is a rate limit). A
 * rate-limited answer waits for the time the forge names (Retry-After, or GitHub's x-ratelimit-reset).
 */
export function retryAfter(answer: Answer, backoffMs: number, now = Date.now()): number | null {
  const header = (name: string) => {
    const v = answer.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const limited = answer.status === 429 || (answer.status === 403 && header('x-ratelimit-remaining') === '0');
  if (answer.status < 500 && answer.status !== 408 && answer.status !== 409 && !limited) return null;
  const retry = header('retry-after');
  if (retry && /^\d+$/.test(retry)) return Math.min(3_600_000, Math.max(backoffMs, Number(retry) * 1000));
  const reset = header('x-ratelimit-reset');
  if (limited && reset && /^\d+$/.test(reset)) return Math.min(3_600_000, Math.max(backoffMs, Number(reset) * 1000 - now));
  return backoffMs;
}

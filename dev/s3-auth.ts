// Request authentication for the embedded S3 server. s3rver serves unsigned requests to anyone, and
// for a SigV4-signed one it checks only that the access key id exists (its SigV4 check is
// unimplemented), so a secret key would protect nothing. This checks the signature itself — the
// AWS Signature Version 4 header form, which the AWS SDK sends — and refuses everything else.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface SignedRequest {
  method: string;
  /** The raw request target: path and query, exactly as sent. */
  url: string;
  /** Lower-case header names. */
  headers: Record<string, string | string[] | undefined>;
}

const MAX_SKEW_MS = 15 * 60_000;

/** Null when `req` carries a valid SigV4 header signature by `credentials`; otherwise why not. */
export function checkSignature(req: SignedRequest, credentials: Credentials, now = Date.now()): string | null {
  const auth = header(req, 'authorization');
  if (!auth) return 'the request is not signed; anonymous requests are not accepted';
  const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!match) return 'only AWS Signature Version 4 in the Authorization header is accepted';
  const [, keyId, date, region, service, signedHeaders, signature] = match as unknown as [string, string, string, string, string, string, string];
  if (keyId !== credentials.accessKeyId) return 'unknown access key id';
  const amzDate = header(req, 'x-amz-date') ?? '';
  const stamp = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!stamp || !amzDate.startsWith(date)) return 'missing or malformed x-amz-date';
  const signedAt = Date.UTC(+stamp[1]!, +stamp[2]! - 1, +stamp[3]!, +stamp[4]!, +stamp[5]!, +stamp[6]!);
  if (Math.abs(now - signedAt) > MAX_SKEW_MS) return 'the signature is too old or from the future';

  const names = signedHeaders.split(';');
  if (!names.includes('host')) return 'the host header must be signed';
  const [rawPath = '/', rawQuery = ''] = req.url.split(/\?(.*)/s);
  const canonicalRequest = [
    req.method,
    rawPath,
    canonicalQuery(rawQuery),
    names.map((name) => `${name}:${(header(req, name) ?? '').trim().replace(/\s+/g, ' ')}\n`).join(''),
    signedHeaders,
    header(req, 'x-amz-content-sha256') ?? 'UNSIGNED-PAYLOAD',
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  let key = hmac(`AWS4${credentials.secretAccessKey}`, date);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  const expected = hmac(key, stringToSign);
  const given = Buffer.from(signature, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected) ? null : 'the signature does not match';
}

function header(req: SignedRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/** Query parameters decoded, re-encoded the RFC 3986 way SigV4 wants, and sorted. */
function canonicalQuery(raw: string): string {
  if (!raw) return '';
  const encode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const decode = (s: string) => decodeURIComponent(s.replace(/\+/g, '%20'));
  return raw
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const [k = '', v = ''] = pair.split(/=(.*)/s);
      return [encode(decode(k)), encode(decode(v))] as const;
    })
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

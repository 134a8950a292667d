// A site's own `_redirects` and `_headers` files (Netlify / Cloudflare Pages syntax): parsing them
// into plain, JSON-safe rules and matching a request path against those rules. No I/O: the site
// server reads the files, stores the rules in the manifest and applies the answers.
import { SlipwayError } from '../errors';
import { PLACEHOLDER, compileHeaderPattern, compileRedirectPattern, type RedirectPattern } from './patterns';

export const MAX_REDIRECT_RULES = 1000;
export const MAX_HEADER_RULES = 100;
/** The caller refuses a larger file before reading it. */
export const MAX_RULES_FILE_BYTES = 64 * 1024;
const MAX_LINE_CHARS = 2000;
/** With the rule counts and the site server's path cap, what bounds one request's matching (patterns.ts). */
export const MAX_PATTERN_CHARS = 256;
/** The longest request path a site server matches against rules; a longer one is answered 414. */
export const MAX_SITE_PATH_BYTES = 2048;

export type RedirectStatus = 200 | 301 | 302 | 303 | 307 | 308 | 404;
const STATUSES: readonly RedirectStatus[] = [200, 301, 302, 303, 307, 308, 404];

export interface RedirectRule {
  from: string;
  to: string;
  status: RedirectStatus;
  force: boolean;
  line: number;
}

export interface HeaderRule {
  path: string;
  set: [name: string, value: string][];
  detach: string[];
  line: number;
}

/** A `_redirects` or `_headers` file that cannot be used as written; the message names the line. */
export class SiteRulesError extends SlipwayError {
  constructor(message: string) {
    super('INVALID_INPUT', message);
  }
}

// Headers the server must own. Framing and range headers (Content-Length, Content-Encoding,
// Content-Range, Transfer-Encoding, Trailer, TE, Connection, Keep-Alive, Upgrade) describe the bytes the
// server actually sends: a wrong one corrupts or smuggles responses. ETag, Last-Modified,
// Accept-Ranges and Vary drive conditional requests and caches: a wrong one serves stale or
// mismatched content. Set-Cookie because every site is a subdomain of one parent domain, so a
// cookie from one site could be scoped to reach all the others.
const SERVER_OWNED_HEADERS = new Set([
  'content-length', 'content-encoding', 'content-range', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade',
  'trailer', 'te', 'etag', 'last-modified', 'accept-ranges', 'vary', 'set-cookie',
]);

// Headers no site may send, whatever its rules say: Location belongs to redirects (a header rule would
// turn any page into an open redirect), Clear-Site-Data would let one site's page wipe what the
// browser keeps for its parent domain, and X-Content-Type-Options stays nosniff (sites serve files
// whose type the server decides; sniffing turns an uploaded text file into a page).
const REFUSED_HEADERS: Record<string, string> = {
  location: 'Location is set by the server for redirects; use _redirects',
  'clear-site-data': 'Clear-Site-Data cannot be set by a site',
  'x-content-type-options': 'X-Content-Type-Options is always nosniff on sites and cannot be changed',
};

/** False for a header a rule may not send (old manifests were parsed before some of these refusals). */
export function ruleHeaderAllowed(name: string): boolean {
  const lower = name.toLowerCase();
  return !SERVER_OWNED_HEADERS.has(lower) && REFUSED_HEADERS[lower] === undefined;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/; // RFC 7230 token
const PLACEHOLDER_IN_TEXT = /:([A-Za-z_]\w*)/g;
const ABSOLUTE_URL = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
const CONTROL_CHARS = /[\x00-\x08\x0a-\x1f\x7f]/; // tab is allowed: it separates fields

type Fail = (what: string) => never;

function failer(file: string, line: number): Fail {
  return (what) => {
    throw new SiteRulesError(`${file} line ${line}: ${what}`);
  };
}

/** The file's meaningful lines: number, raw text and trimmed text, after the checks every line shares. */
function* meaningfulLines(file: string, text: string): Generator<{ line: number; raw: string; content: string }> {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = index + 1;
    const fail = failer(file, line);
    if (raw.length > MAX_LINE_CHARS) fail(`line is ${count(raw.length)} characters; the limit is ${count(MAX_LINE_CHARS)}`);
    if (CONTROL_CHARS.test(raw)) fail('line holds a control character');
    const content = raw.trim();
    if (content === '' || content.startsWith('#')) continue;
    yield { line, raw, content };
  }
}

/** Parses `_redirects`: one `from to [status][!]` rule per line, in file order. */
export function parseRedirects(text: string): RedirectRule[] {
  const rules: RedirectRule[] = [];
  for (const { line, content } of meaningfulLines('_redirects', text)) {
    const fail: Fail = failer('_redirects', line);
    if (rules.length === MAX_REDIRECT_RULES) fail(`more than ${count(MAX_REDIRECT_RULES)} rules; the limit is ${count(MAX_REDIRECT_RULES)}`);
    const fields = content.split(/\s+/);
    // Netlify puts query conditions (`id=:id`) before `to` and Country/Language/Role after the status;
    // a path or URL field may itself hold `=` in its query string.
    const condition = fields.find((field, i) => i > 0 && field.includes('=') && !field.startsWith('/') && !ABSOLUTE_URL.test(field));
    if (condition !== undefined) {
      const kind = /^(country|language|role|cookie)=/i.test(condition) ? 'condition' : 'query-string condition';
      fail(`${kind} ${JSON.stringify(condition)} is not supported`);
    }
    const [from = '', to, statusField = '301'] = fields;
    if (to === undefined) fail(`expected "from to [status]", got only ${JSON.stringify(from)}`);
    if (fields.length > 3) fail(`unexpected field ${JSON.stringify(fields[3])}; a rule is "from to [status]"`);

    if (ABSOLUTE_URL.test(from)) fail(`from ${JSON.stringify(from)} names a host; only paths starting with "/" are supported`);
    if (!from.startsWith('/')) fail(`from ${JSON.stringify(from)} must be a path starting with "/"`);
    const names = patternNames(from, 'tail', fail);

    const status = /^(\d+)(!?)$/.exec(statusField);
    if (!status) fail(`expected a status such as 301 or 200!, got ${JSON.stringify(statusField)}`);
    const code = Number(status[1]) as RedirectStatus;
    if (!STATUSES.includes(code)) fail(`status ${status[1]} is not supported; use ${STATUSES.join(', ')}`);

    const rewrite = code === 200 || code === 404;
    if (ABSOLUTE_URL.test(to)) {
      if (rewrite) fail(`a ${code} rule to ${JSON.stringify(to)} would proxy another site; proxying is not supported (use a 3xx status to redirect)`);
      if (!/^https?:\/\//i.test(to) || !URL.canParse(to)) fail(`to ${JSON.stringify(to)} is not a valid http(s) URL`);
    } else if (!to.startsWith('/')) {
      fail(`to ${JSON.stringify(to)} must be a path starting with "/"${rewrite ? '' : ' or an http(s) URL'}`);
    }
    for (const [, name] of to.matchAll(PLACEHOLDER_IN_TEXT)) {
      if (!names.includes(name!)) fail(`to uses :${name} but from ${JSON.stringify(from)} has no ${name === 'splat' ? '"*"' : `:${name}`}`);
    }
    rules.push({ from, to, status: code, force: status[2] === '!', line });
  }
  return rules;
}

/** Parses `_headers`: a path line at column 0, then indented `Name: value` or `! Name` lines. */
export function parseHeaders(text: string): HeaderRule[] {
  const rules: HeaderRule[] = [];
  for (const { line, raw, content } of meaningfulLines('_headers', text)) {
    const fail: Fail = failer('_headers', line);
    const current = rules.at(-1);
    if (!/^\s/.test(raw)) {
      if (rules.length === MAX_HEADER_RULES) fail(`more than ${count(MAX_HEADER_RULES)} path rules; the limit is ${count(MAX_HEADER_RULES)}`);
      if (ABSOLUTE_URL.test(content)) fail(`${JSON.stringify(content)} names a host; only path patterns starting with "/" are supported`);
      if (!content.startsWith('/')) fail(`${JSON.stringify(content)} is not a path starting with "/" (header lines must be indented)`);
      if (/\s/.test(content)) fail(`a path line holds only the path; got ${JSON.stringify(content)}`);
      patternNames(content, 'anywhere', fail);
      rules.push({ path: content, set: [], detach: [], line });
      continue;
    }
    if (!current) fail('header line before any path line');
    const detach = content.startsWith('!');
    const colon = content.indexOf(':');
    if (!detach && colon < 0) fail(`expected "Name: value" or "! Name", got ${JSON.stringify(content)}`);
    const name = (detach ? content.slice(1) : content.slice(0, colon)).trim();
    if (!HEADER_NAME.test(name)) fail(`${JSON.stringify(name)} is not a valid header name`);
    if (SERVER_OWNED_HEADERS.has(name.toLowerCase())) fail(`${name} is set by the server and cannot be changed by _headers`);
    const refused = REFUSED_HEADERS[name.toLowerCase()];
    if (refused) fail(refused);
    if (detach) {
      current.detach.push(name);
    } else {
      const value = content.slice(colon + 1).trim();
      if (value === '') fail(`header ${name} has an empty value`);
      current.set.push([name, value]);
    }
  }
  return rules;
}

/** The first rule matching `pathname` (percent-decoded), with `to`'s splat and placeholders filled in. */
export function matchRedirect(rules: readonly RedirectRule[], pathname: string): { to: string; status: RedirectStatus; force: boolean } | null {
  for (const rule of rules) {
    const pattern = redirectPattern(rule);
    const match = pattern.match(pathname);
    if (!match) continue;
    const values = new Map(pattern.names.map((name, i) => [name, match[i] ?? '']));
    let to = rule.to.replace(PLACEHOLDER_IN_TEXT, (text, name: string) => values.get(name) ?? text);
    // A splat can start with "/" (`/old//evil.com`); `//evil.com` in Location would leave the site.
    if (to.startsWith('/')) to = to.replace(/^[/\\]+/, '/');
    return { to, status: rule.status, force: rule.force };
  }
  return null;
}

/** The headers of every rule matching `pathname`, in file order; repeated names join with ", ". */
export function headersFor(rules: readonly HeaderRule[], pathname: string): [string, string][] {
  const headers = new Map<string, [string, string]>();
  for (const rule of rules) {
    if (!headerPattern(rule)(pathname)) continue;
    for (const name of rule.detach) headers.delete(name.toLowerCase());
    for (const [name, value] of rule.set) {
      if (!ruleHeaderAllowed(name)) continue;
      const earlier = headers.get(name.toLowerCase());
      headers.set(name.toLowerCase(), earlier ? [earlier[0], `${earlier[1]}, ${value}`] : [name, value]);
    }
  }
  return [...headers.values()];
}

type Splat = 'tail' | 'anywhere';

/** Checks a pattern's length, splats and placeholders; returns the capture names in order (`splat` last). */
function patternNames(pattern: string, splat: Splat, fail: Fail): string[] {
  if (pattern.length > MAX_PATTERN_CHARS) fail(`the path pattern is ${count(pattern.length)} characters; the limit is ${count(MAX_PATTERN_CHARS)}`);
  const names: string[] = [];
  const segments = pattern.split('/');
  for (const [i, segment] of segments.entries()) {
    if (splat === 'tail' && segment.includes('*') && (segment !== '*' || i !== segments.length - 1)) {
      fail(`"*" is allowed only as the whole last segment, as in /blog/*`);
    }
    if (!segment.startsWith(':')) continue;
    if (!PLACEHOLDER.test(segment)) fail(`placeholder ${JSON.stringify(segment)} must be ":" and a name of letters, digits and _, filling its segment`);
    const name = segment.slice(1);
    if (name === 'splat') fail('":splat" is reserved for what "*" matches');
    if (names.includes(name)) fail(`placeholder :${name} appears twice`);
    names.push(name);
  }
  if (splat === 'tail' && pattern.endsWith('*')) names.push('splat');
  return names;
}

// Compiled lazily and cached by rule object, so the rules themselves stay plain JSON for the manifest.
const redirectPatterns = new WeakMap<RedirectRule, RedirectPattern>();
const headerPatterns = new WeakMap<HeaderRule, (pathname: string) => boolean>();

function redirectPattern(rule: RedirectRule): RedirectPattern {
  let entry = redirectPatterns.get(rule);
  if (!entry) redirectPatterns.set(rule, (entry = compileRedirectPattern(rule.from)));
  return entry;
}

function headerPattern(rule: HeaderRule): (pathname: string) => boolean {
  let entry = headerPatterns.get(rule);
  if (!entry) headerPatterns.set(rule, (entry = compileHeaderPattern(rule.path)));
  return entry;
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

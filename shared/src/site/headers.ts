// A site's own `_headers` file (Netlify / Cloudflare Pages syntax): parsing it into plain, JSON-safe
// rules, skipping what a site may not send, and the headers a request path gets from those rules.
// No I/O: the worker reads the file and stores the rules in the manifest; the site server applies them.
import { ABSOLUTE_URL, checkLine, meaningfulLines, orSkip, patternNames, skip } from './lines';
import { compileHeaderPattern } from './patterns';
import { RuleWarnings } from './warnings';

export const MAX_HEADER_RULES = 100;

export interface HeaderRule {
  path: string;
  set: [name: string, value: string][];
  detach: string[];
  line: number;
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

/**
 * Parses `_headers`: a path line (starting with "/"), then `Name: value` or `! Name` lines (indented,
 * as Netlify writes them; a header line is told from a path line by its text). A line it cannot
 * honour is skipped and added to `warnings`; a skipped path line takes its header lines with it.
 */
export function parseHeaders(text: string, warnings = new RuleWarnings()): HeaderRule[] {
  const rules: HeaderRule[] = [];
  // null before the first path line; 'skipped' under a path line that was skipped.
  let current: HeaderRule | null | 'skipped' = null;
  for (const { line, raw, content } of meaningfulLines(text)) {
    if (content.startsWith('/') || ABSOLUTE_URL.test(content)) {
      current = 'skipped';
      orSkip(warnings, '_headers', line, () => {
        checkLine(raw);
        if (rules.length === MAX_HEADER_RULES) skip(`beyond the first ${MAX_HEADER_RULES} path rules, the limit`);
        current = { path: pathLine(content), set: [], detach: [], line };
        rules.push(current);
      }, ', with the header lines under it');
      continue;
    }
    if (current === 'skipped') continue; // its path line's warning says so
    const rule = current;
    orSkip(warnings, '_headers', line, () => {
      checkLine(raw);
      if (!rule) skip('header line before any path line');
      headerLine(content, rule);
    });
  }
  return rules;
}

function pathLine(content: string): string {
  if (ABSOLUTE_URL.test(content)) skip(`${JSON.stringify(content)} names a host; only path patterns starting with "/" are supported`);
  if (/\s/.test(content)) skip(`a path line holds only the path; got ${JSON.stringify(content)}`);
  patternNames(content, 'anywhere');
  return content;
}

/** Adds one `Name: value` or `! Name` line to `rule`. */
function headerLine(content: string, rule: HeaderRule): void {
  const detach = content.startsWith('!');
  const colon = content.indexOf(':');
  if (!detach && colon < 0) skip(`expected "Name: value" or "! Name", got ${JSON.stringify(content)}`);
  const name = (detach ? content.slice(1) : content.slice(0, colon)).trim();
  if (!HEADER_NAME.test(name)) skip(`${JSON.stringify(name)} is not a valid header name`);
  if (SERVER_OWNED_HEADERS.has(name.toLowerCase())) skip(`${name} is set by the server and cannot be changed by _headers`);
  const refused = REFUSED_HEADERS[name.toLowerCase()];
  if (refused) skip(refused);
  if (detach) {
    rule.detach.push(name);
    return;
  }
  const value = content.slice(colon + 1).trim();
  if (value === '') skip(`header ${name} has an empty value`);
  rule.set.push([name, value]);
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

// Compiled lazily and cached by rule object, so the rules themselves stay plain JSON for the manifest.
const headerPatterns = new WeakMap<HeaderRule, (pathname: string) => boolean>();

function headerPattern(rule: HeaderRule): (pathname: string) => boolean {
  let entry = headerPatterns.get(rule);
  if (!entry) headerPatterns.set(rule, (entry = compileHeaderPattern(rule.path)));
  return entry;
}

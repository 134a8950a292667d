// A site's own `_redirects` file (Netlify / Cloudflare Pages syntax): parsing it into plain, JSON-safe
// rules, skipping what Slipway cannot honour, and matching a request's path and query against them. No
// I/O: the worker reads the file and stores the rules in the manifest; the site server applies them.
import { ABSOLUTE_URL, checkLine, count, meaningfulLines, orSkip, patternNames, skip } from './lines';
import { PLACEHOLDER, compileRedirectPattern, type RedirectPattern } from './patterns';
import { RuleWarnings } from './warnings';

export const MAX_REDIRECT_RULES = 1000;

export type RedirectStatus = 200 | 301 | 302 | 303 | 307 | 308 | 404 | 410 | 451;
const STATUSES: readonly RedirectStatus[] = [200, 301, 302, 303, 307, 308, 404, 410, 451];
/** Statuses that serve `to`'s page at the request's URL (with that status) instead of redirecting to it. */
const REWRITES: readonly RedirectStatus[] = [200, 404, 410, 451];

export function isRewrite(status: number): boolean {
  return (REWRITES as readonly number[]).includes(status);
}

export interface RedirectRule {
  from: string;
  /** Query parameters the request must carry (Netlify's `id=:id`): a `:name` value captures, any other must be equal. */
  query?: [name: string, value: string][];
  to: string;
  status: RedirectStatus;
  force: boolean;
  line: number;
}

const PLACEHOLDER_IN_TEXT = /:([A-Za-z_]\w*)/g;
/** A query condition before `to` (`id=:id`, `lang=en`); a path or URL field may hold `=` only after a "/". */
const QUERY_FIELD = /^([^=/]+)=(.*)$/;
const QUERY_NAME = /^[A-Za-z0-9_.~-]+$/;
/** Netlify's conditions after the status: they need the visitor's location, language, login or cookies. */
const CONDITION = /^(country|language|role|cookie)=/i;

/**
 * Parses `_redirects`: one `from [query…] to [status][!] [conditions…]` rule per line, in file order,
 * a field starting with "#" and what follows it being a comment. A line it cannot honour is skipped
 * and added to `warnings`.
 */
export function parseRedirects(text: string, warnings = new RuleWarnings()): RedirectRule[] {
  const rules: RedirectRule[] = [];
  for (const { line, raw, content } of meaningfulLines(text)) {
    orSkip(warnings, '_redirects', line, () => {
      checkLine(raw);
      if (rules.length === MAX_REDIRECT_RULES) skip(`beyond the first ${count(MAX_REDIRECT_RULES)} rules, the limit`);
      rules.push({ ...parseRedirect(content), line });
    });
  }
  return rules;
}

function parseRedirect(content: string): Omit<RedirectRule, 'line'> {
  const all = content.split(/\s+/);
  const comment = all.findIndex((field) => field.startsWith('#'));
  const fields = comment < 0 ? all : all.slice(0, comment);
  const [from = ''] = fields;
  // Netlify puts query conditions (`id=:id`) between `from` and `to`.
  let at = 1;
  while (at < fields.length && QUERY_FIELD.test(fields[at]!)) at += 1;
  const queryFields = fields.slice(1, at);
  const to = fields[at];
  if (to === undefined) skip(`expected "from to [status]", got ${fields.length > 1 ? 'no "to" after the query conditions' : `only ${JSON.stringify(from)}`}`);
  const after = fields.slice(at + 1);
  const condition = after.find((field) => field.includes('='));
  if (condition !== undefined) {
    skip(`condition ${JSON.stringify(condition)} is not supported${CONDITION.test(condition) ? ' (Slipway does not route by country, language, role or cookie)' : ''}`);
  }
  const [statusField = '301', extra] = after;
  if (extra !== undefined) skip(`unexpected field ${JSON.stringify(extra)}; a rule is "from to [status]"`);

  if (ABSOLUTE_URL.test(from)) skip(`from ${JSON.stringify(from)} names a host; only paths starting with "/" are supported`);
  if (!from.startsWith('/')) skip(`from ${JSON.stringify(from)} must be a path starting with "/"`);
  const names = patternNames(from, 'tail');
  const query = queryFields.map((field): [string, string] => {
    const [, name = '', value = ''] = QUERY_FIELD.exec(field)!;
    if (!QUERY_NAME.test(name)) skip(`query parameter name ${JSON.stringify(name)} must be letters, digits and _ . ~ -`);
    if (value.startsWith(':')) {
      if (!PLACEHOLDER.test(value)) skip(`placeholder ${JSON.stringify(value)} must be ":" and a name of letters, digits and _`);
      if (value === ':splat') skip('":splat" is reserved for what "*" matches');
      if (names.includes(value.slice(1))) skip(`placeholder ${value} appears twice`);
      names.push(value.slice(1));
    } else if (value === '') {
      skip(`query condition ${JSON.stringify(field)} has no value; use ${name}=:${/^[A-Za-z_]\w*$/.test(name) ? name : 'value'} to match any value`);
    }
    return [name, value];
  });

  const status = /^(\d+)(!?)$/.exec(statusField);
  if (!status) skip(`expected a status such as 301 or 200!, got ${JSON.stringify(statusField)}`);
  const code = Number(status[1]) as RedirectStatus;
  if (!STATUSES.includes(code)) skip(`status ${status[1]} is not supported; use ${STATUSES.join(', ')}`);

  const rewrite = isRewrite(code);
  if (ABSOLUTE_URL.test(to)) {
    // Slipway serves the site's own files only: it never fetches another host on a visitor's behalf.
    if (rewrite) skip(`a ${code} rule to ${JSON.stringify(to)} would proxy another site; proxying is not supported (use a 3xx status to redirect)`);
    if (!/^https?:\/\//i.test(to) || !URL.canParse(to)) skip(`to ${JSON.stringify(to)} is not a valid http(s) URL`);
  } else if (!to.startsWith('/')) {
    skip(`to ${JSON.stringify(to)} must be a path starting with "/"${rewrite ? '' : ' or an http(s) URL'}`);
  }
  for (const [, name] of to.matchAll(PLACEHOLDER_IN_TEXT)) {
    if (!names.includes(name!)) skip(`to uses :${name} but from ${JSON.stringify(from)} has no ${name === 'splat' ? '"*"' : `:${name}`}`);
  }
  return { from, ...(query.length > 0 ? { query } : {}), to, status: code, force: status[2] === '!' };
}

/**
 * The first rule matching `pathname` (percent-decoded) and `search` (the raw query string), with `to`'s
 * splat and placeholders filled in.
 */
export function matchRedirect(rules: readonly RedirectRule[], pathname: string, search = ''): { to: string; status: RedirectStatus; force: boolean } | null {
  let params: Map<string, string> | undefined;
  for (const rule of rules) {
    const pattern = redirectPattern(rule);
    const match = pattern.match(pathname);
    if (!match) continue;
    const values = new Map(pattern.names.map((name, i) => [name, match[i] ?? '']));
    if (rule.query && !queryMatches(rule.query, (params ??= firstValues(search)), values)) continue;
    let to = rule.to.replace(PLACEHOLDER_IN_TEXT, (text, name: string) => values.get(name) ?? text);
    // A splat can start with "/" (`/old//evil.com`); `//evil.com` in Location would leave the site.
    if (to.startsWith('/')) to = to.replace(/^[/\\]+/, '/');
    return { to, status: rule.status, force: rule.force };
  }
  return null;
}

/** True when the request has every parameter `query` asks for; a `:name` value is captured into `values`. */
function queryMatches(query: readonly [string, string][], params: ReadonlyMap<string, string>, values: Map<string, string>): boolean {
  for (const [name, want] of query) {
    const got = params.get(name);
    if (got === undefined) return false;
    if (!want.startsWith(':')) {
      if (got !== want) return false;
      continue;
    }
    if (got === '') return false;
    // Encoded: a value cannot add a segment, a query or a fragment to `to`.
    values.set(want.slice(1), encodeURIComponent(got));
  }
  return true;
}

/** Each query parameter's first value, read once per request, so a rule's look-up costs one Map get. */
function firstValues(search: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(search)) if (!params.has(name)) params.set(name, value);
  return params;
}

// Compiled lazily and cached by rule object, so the rules themselves stay plain JSON for the manifest.
const redirectPatterns = new WeakMap<RedirectRule, RedirectPattern>();

function redirectPattern(rule: RedirectRule): RedirectPattern {
  let entry = redirectPatterns.get(rule);
  if (!entry) redirectPatterns.set(rule, (entry = compileRedirectPattern(rule.from)));
  return entry;
}

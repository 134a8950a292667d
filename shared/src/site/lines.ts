// What `_redirects` and `_headers` share: their caps, reading a file's meaningful lines, the checks every
// line and path pattern gets, and the step that turns a line Slipway cannot honour into a warning
// instead of a failed deployment (redirects.ts and headers.ts parse the lines).
import { PLACEHOLDER } from './patterns';
import type { RuleWarnings } from './warnings';

/** A larger file gives no rules (the caller warns); it is never read past this. */
export const MAX_RULES_FILE_BYTES = 64 * 1024;
const MAX_LINE_CHARS = 2000;
/** With the rule counts and the site server's path cap, what bounds one request's matching (patterns.ts). */
export const MAX_PATTERN_CHARS = 256;
/** The longest request path a site server matches against rules; a longer one is answered 414. */
export const MAX_SITE_PATH_BYTES = 2048;

export const ABSOLUTE_URL = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
const CONTROL_CHARS = /[\x00-\x08\x0a-\x1f\x7f]/; // tab is allowed: it separates fields

/**
 * Thrown by a line's checks and caught by `orSkip`, which skips that line with the reason as its
 * warning: the checks read as a list of refusals, and no half-parsed rule is ever kept.
 */
class SkippedLine extends Error {}

export function skip(reason: string): never {
  throw new SkippedLine(reason);
}

/** Runs `parse` on one line; a skip becomes a warning naming the line (and `also`, what went with it). */
export function orSkip(warnings: RuleWarnings, file: string, line: number, parse: () => void, also = ''): void {
  try {
    parse();
  } catch (err) {
    if (!(err instanceof SkippedLine)) throw err;
    warnings.skipped(file, line, err.message + also);
  }
}

/** The file's meaningful lines: number, raw text and trimmed text (comments and blank lines left out). */
export function* meaningfulLines(text: string): Generator<{ line: number; raw: string; content: string }> {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const content = raw.trim();
    if (content === '' || content.startsWith('#')) continue;
    yield { line: index + 1, raw, content };
  }
}

/** The checks every line gets. */
export function checkLine(raw: string): void {
  if (raw.length > MAX_LINE_CHARS) skip(`line is ${count(raw.length)} characters; the limit is ${count(MAX_LINE_CHARS)}`);
  if (CONTROL_CHARS.test(raw)) skip('line holds a control character');
}

/**
 * Checks a path pattern's length, splats and placeholders (a `_redirects` splat only as the last
 * segment, a `_headers` one anywhere); returns the capture names in order (`splat` last).
 */
export function patternNames(pattern: string, splat: 'tail' | 'anywhere'): string[] {
  if (pattern.length > MAX_PATTERN_CHARS) skip(`the path pattern is ${count(pattern.length)} characters; the limit is ${count(MAX_PATTERN_CHARS)}`);
  const names: string[] = [];
  const segments = pattern.split('/');
  for (const [i, segment] of segments.entries()) {
    if (splat === 'tail' && segment.includes('*') && (segment !== '*' || i !== segments.length - 1)) {
      skip(`"*" is allowed only as the whole last segment, as in /blog/*`);
    }
    if (!segment.startsWith(':')) continue;
    if (!PLACEHOLDER.test(segment)) skip(`placeholder ${JSON.stringify(segment)} must be ":" and a name of letters, digits and _, filling its segment`);
    const name = segment.slice(1);
    if (name === 'splat') skip('":splat" is reserved for what "*" matches');
    if (names.includes(name)) skip(`placeholder :${name} appears twice`);
    names.push(name);
  }
  if (splat === 'tail' && pattern.endsWith('*')) names.push('splat');
  return names;
}

export function count(n: number): string {
  return n.toLocaleString('en-US');
}

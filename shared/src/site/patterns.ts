// The path patterns of `_redirects` and `_headers`, compiled to plain parts and matched without a
// RegExp: a site's own rule files must not be able to make a request cost more than a bounded scan.
// A `_redirects` pattern is compared segment by segment (O(path)); a `_headers` pattern, whose `*`
// crosses slashes, is split at its stars into pieces found left to right with indexOf (at most
// O(path × pattern) character comparisons, and the path is capped by the site server).

/** One part of a piece: literal text, or a placeholder that fills one non-empty segment. */
type Part = string | { segment: string };

export interface RedirectPattern {
  /** Placeholder names in order, then `splat` for a redirect's trailing `*`. */
  names: string[];
  match(pathname: string): string[] | null;
}

/** A `:name` segment: letters, digits and _ after the colon. */
export const PLACEHOLDER = /^:[A-Za-z_]\w*$/;

/**
 * A `_redirects` `from`: segments that are literal or `:name`, and an optional trailing `/*` that takes
 * the rest of the path, the empty rest included (`/blog/*` matches `/blog` and `/blog/`). Without a
 * splat a single trailing slash is optional, on the path and in the rule.
 */
export function compileRedirectPattern(pattern: string): RedirectPattern {
  const tail = pattern.endsWith('*');
  const body = (tail ? pattern.slice(0, -1) : pattern).replace(/\/+$/, '');
  const segments: Part[] = body.split('/').map((s) => (PLACEHOLDER.test(s) ? { segment: s.slice(1) } : s));
  const names = segments.flatMap((s) => (typeof s === 'string' ? [] : [s.segment]));
  if (tail) names.push('splat');
  return {
    names,
    match(pathname) {
      const values: string[] = [];
      let at = 0;
      for (const [i, want] of segments.entries()) {
        // Each pattern segment takes the path up to its next "/" (the first one, the empty text before the leading "/").
        if (i > 0) {
          if (pathname[at] !== '/') return null;
          at += 1;
        }
        const end = nextSlash(pathname, at);
        const got = pathname.slice(at, end);
        if (typeof want === 'string' ? got !== want : got === '') return null;
        if (typeof want !== 'string') values.push(got);
        at = end;
      }
      const rest = pathname.slice(at);
      if (tail) {
        if (rest !== '' && rest[0] !== '/') return null;
        values.push(rest.slice(1));
        return values;
      }
      return rest === '' || rest === '/' ? values : null;
    },
  };
}

/**
 * A `_headers` path: `*` is any run of characters, across slashes; `:name` fills one segment; without a
 * trailing `*`, a trailing slash is optional. Headers need no captures: the answer is whether it matches.
 */
export function compileHeaderPattern(pattern: string): (pathname: string) => boolean {
  const star = pattern.endsWith('*');
  const body = star ? pattern : pattern.replace(/\/+$/, '');
  // Pieces between the stars; each is literal text and placeholders, each placeholder its own segment.
  const pieces: Part[][] = body.split('*').map(() => []);
  let piece = 0;
  for (const [i, segment] of body.split('/').entries()) {
    if (i > 0) append(pieces[piece]!, '/');
    if (PLACEHOLDER.test(segment)) {
      pieces[piece]!.push({ segment: segment.slice(1) });
      continue;
    }
    for (const [j, text] of segment.split('*').entries()) {
      if (j > 0) piece += 1;
      append(pieces[piece]!, text);
    }
  }
  const first = pieces[0]!;
  const middle = pieces.slice(1, -1);
  const last = pieces.at(-1)!;
  const whole = (text: string) => {
    if (pieces.length === 1) return matchAt(first, text, 0) === text.length;
    let at = matchAt(first, text, 0);
    if (at < 0) return false;
    // Each middle piece at its first place: the earliest end leaves the most for the rest.
    for (const parts of middle) {
      at = findFrom(parts, text, at);
      if (at < 0) return false;
    }
    return endsWith(last, text, at);
  };
  return (pathname) => whole(pathname) || (!star && pathname.endsWith('/') && whole(pathname.slice(0, -1)));
}

function append(parts: Part[], text: string): void {
  if (text === '') return;
  const last = parts.at(-1);
  if (typeof last === 'string') parts[parts.length - 1] = last + text;
  else parts.push(text);
}

function nextSlash(text: string, from: number): number {
  const i = text.indexOf('/', from);
  return i < 0 ? text.length : i;
}

/** Where `parts` end when they match `text` at `at` exactly, or -1. A placeholder runs to the next "/". */
function matchAt(parts: readonly Part[], text: string, at: number, values?: string[]): number {
  for (const part of parts) {
    if (typeof part === 'string') {
      if (!text.startsWith(part, at)) return -1;
      at += part.length;
    } else {
      const end = nextSlash(text, at);
      if (end === at) return -1;
      values?.push(text.slice(at, end));
      at = end;
    }
  }
  return at;
}

/** The end of the first match of `parts` at or after `from`, or -1. */
function findFrom(parts: readonly Part[], text: string, from: number): number {
  const lead = typeof parts[0] === 'string' ? parts[0] : null;
  for (let at = from; at <= text.length; at++) {
    if (lead !== null) {
      at = text.indexOf(lead, at);
      if (at < 0) return -1;
    }
    const end = matchAt(parts, text, at);
    if (end >= 0) return end;
  }
  return -1;
}

/** True when `parts` match a suffix of `text` that starts at or after `from`. */
function endsWith(parts: readonly Part[], text: string, from: number): boolean {
  if (parts.every((p) => typeof p === 'string')) {
    // Fixed text: one place to look.
    const tail = parts.join('');
    return text.length - tail.length >= from && text.endsWith(tail);
  }
  for (let at = from; at <= text.length; at++) if (matchAt(parts, text, at) === text.length) return true;
  return false;
}

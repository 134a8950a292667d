// Reading a framework's configuration without running it: the config file's text (small, bounded
// reads), scanned for plain literal values, and the options on a package.json script's command line.
// Anything that is not a plain literal (a variable, a call, a template with ${}) reads as `other`, and
// the framework falls back to its default: the repository's code never runs in the worker.
import path from 'node:path';

/** What a property of an object literal holds. */
export type Value = { kind: 'string'; value: string } | { kind: 'object'; text: string } | { kind: 'other' };

const QUOTES = new Set(["'", '"', '`']);

/** The index just past the string that opens at `i` (its quote), or the text's end. */
function stringEnd(text: string, i: number): number {
  const quote = text[i];
  for (let j = i + 1; j < text.length; j++) {
    if (text[j] === '\\') j++;
    else if (text[j] === quote) return j + 1;
    else if (quote !== '`' && text[j] === '\n') return j;
  }
  return text.length;
}

/** The text with its comments blanked out (strings kept), so a commented-out option is never read. */
export function withoutComments(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; ) {
    const c = text[i]!;
    if (QUOTES.has(c)) {
      const end = stringEnd(text, i);
      out += text.slice(i, end);
      i = end;
    } else if (c === '/' && text[i + 1] === '/') {
      const end = text.indexOf('\n', i);
      i = end === -1 ? text.length : end;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      out += ' ';
      i = end === -1 ? text.length : end + 2;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The balanced `{…}` (or `(…)`, `[…]`) that opens at `i`, braces included; null when unbalanced. */
function balanced(text: string, i: number): string | null {
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    const c = text[j]!;
    if (QUOTES.has(c)) j = stringEnd(text, j) - 1;
    else if (c === '{' || c === '(' || c === '[') depth++;
    else if (c === '}' || c === ')' || c === ']') {
      depth--;
      if (depth === 0) return text.slice(i, j + 1);
    }
  }
  return null;
}

const skipSpace = (text: string, i: number) => {
  while (i < text.length && /\s/.test(text[i]!)) i++;
  return i;
};

/**
 * The object a config file exports: `export default {…}`, `export default defineConfig({…})`,
 * `module.exports = {…}`, or the object of the name exported (`const config = {…}; export default config`).
 * Null for anything else (a function, a config built at run time).
 */
export function exportedObject(text: string): string | null {
  const found = /\bexport\s+default\s+|\bmodule\.exports\s*=\s*/.exec(text);
  if (!found) return null;
  let i = found.index + found[0].length;
  let followed = false;
  // A few wrappers deep: defineConfig({…}), withPlugin(config), satisfies/as after the object are left alone.
  for (let hops = 0; hops < 4; hops++) {
    i = skipSpace(text, i);
    if (text[i] === '{') return balanced(text, i);
    const name = /^[A-Za-z_$][\w$]*/.exec(text.slice(i))?.[0];
    if (!name) return null;
    const after = skipSpace(text, i + name.length);
    if (text[after] === '(') {
      i = after + 1;
      continue;
    }
    if (followed) return null;
    followed = true;
    const declared = new RegExp(`\\b(?:const|let|var)\\s+${name.replace(/\$/g, '\\$')}\\s*(?::[^=]+)?=\\s*`).exec(text);
    if (!declared) return null;
    i = declared.index + declared[0].length;
  }
  return null;
}

/** The object literal that follows the first match of `pattern` (which ends just before it), or null. */
export function objectAfter(text: string, pattern: RegExp): string | null {
  const found = pattern.exec(text);
  if (!found) return null;
  const i = skipSpace(text, found.index + found[0].length);
  return text[i] === '{' ? balanced(text, i) : null;
}

/** What `key` holds at the top level of the object literal `obj`; undefined when it is not there. */
export function property(obj: string, key: string): Value | undefined {
  let depth = 0;
  let previous = '';
  for (let i = 0; i < obj.length; i++) {
    const c = obj[i]!;
    if (/\s/.test(c)) continue;
    if (depth === 1 && (previous === '{' || previous === ',')) {
      const name = QUOTES.has(c) ? obj.slice(i + 1, stringEnd(obj, i) - 1) : /^[A-Za-z_$][\w$]*/.exec(obj.slice(i))?.[0];
      const end = QUOTES.has(c) ? stringEnd(obj, i) : i + (name?.length ?? 0);
      if (name === key) {
        const colon = skipSpace(obj, end);
        return obj[colon] === ':' ? valueAt(obj, skipSpace(obj, colon + 1)) : { kind: 'other' };
      }
    }
    if (QUOTES.has(c)) i = stringEnd(obj, i) - 1;
    else if (c === '{' || c === '(' || c === '[') depth++;
    else if (c === '}' || c === ')' || c === ']') depth--;
    previous = c;
  }
  return undefined;
}

function valueAt(text: string, i: number): Value {
  const c = text[i];
  if (c === '{') {
    const inner = balanced(text, i);
    return inner ? { kind: 'object', text: inner } : { kind: 'other' };
  }
  if (c === undefined || !QUOTES.has(c)) return { kind: 'other' };
  const end = stringEnd(text, i);
  const value = text.slice(i + 1, end - 1);
  const next = text[skipSpace(text, end)];
  // 'a' + b, `${x}/dist`, a string with escapes: not a plain literal.
  if ((next !== ',' && next !== '}') || value.includes('\\') || (c === '`' && value.includes('${'))) return { kind: 'other' };
  return { kind: 'string', value };
}

/** The value at a path of nested objects (`build`, `outDir`), or undefined when a step is missing. */
export function lookup(obj: string | null, ...keys: string[]): Value | undefined {
  let value: Value | undefined = obj === null ? undefined : { kind: 'object', text: obj };
  for (const key of keys) {
    if (value?.kind !== 'object') return value === undefined ? undefined : { kind: 'other' };
    value = property(value.text, key);
  }
  return value;
}

/**
 * The words of a script's command after `command` (up to `&&`, `;` or `|`), quotes removed, or null
 * when the script does not run it.
 */
export function commandArgs(script: string, command: RegExp): string[] | null {
  const found = command.exec(script);
  if (!found) return null;
  const rest = script.slice(found.index + found[0].length).split(/&&|\|\||;|\|/)[0]!;
  return rest.trim().split(/\s+/).filter(Boolean).map((w) => w.replace(/^(['"])(.*)\1$/, '$2'));
}

/** The value of an option (`--outDir x` or `--outDir=x`) among `args`, or null. */
export function optionValue(args: readonly string[], names: readonly string[]): string | null {
  for (const [i, arg] of args.entries()) {
    for (const name of names) {
      if (arg === name && args[i + 1] !== undefined && !args[i + 1]!.startsWith('-')) return args[i + 1]!;
      if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1);
    }
  }
  return null;
}

/** The first word that is neither an option nor the value of one of `valued` (a folder argument). */
export function positional(args: readonly string[], valued: readonly string[]): string | null {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (valued.includes(arg)) i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return null;
}

/**
 * A folder named by a config or a script, as a clean path relative to the app folder (`base` is the
 * folder the value is relative to); null for what Slipway will not look for: an absolute path, the
 * app folder itself, odd characters.
 */
export function folder(value: string, base = '.'): string | null {
  if (value.length === 0 || value.length > 200 || !/^[\w.@+\-/ ]+$/.test(value) || value.startsWith('/')) return null;
  const rel = path.posix.normalize(path.posix.join(base, value)).replace(/\/+$/, '');
  return rel === '.' || rel === '' ? null : rel;
}

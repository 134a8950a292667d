// The one line of a failed command's output that explains the failure: first a line that names
// the cause outright (an engine the Node does not satisfy, an import that does not resolve, a heap
// that ran out), else the bundler's or compiler's first error, a package manager's error summary,
// else the last line that is not a stack frame. Colours and other terminal escapes are stripped first.
// And the message of a build that egress refused, with the setting that would allow it.

/** Terminal escapes: CSI (colours, cursor moves), OSC (titles, links), and lone ESC pairs. */
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

const MAX_SUMMARY_CHARS = 300;

/** A line that announces an error whose words are on the next line. */
const HEADERS = [/^error during build:?$/i, /^failed to compile\.?$/i, /^build error occurred$/i, /^> build error occurred$/i];

/** Lines that state an error themselves (the whole line is kept: a file name is part of the story). */
const ERROR_LINES: RegExp[] = [
  /^✘ \[ERROR\] /, // esbuild
  /^(?:\[vite\]:? )?Rollup failed to resolve /,
  /^\S+\(\d+,\d+\): error TS\d+: /, // tsc, plain
  /^\S+:\d+:\d+ - error TS\d+: /, // tsc, pretty
  /\bERR_PNPM_\w+\s/, // pnpm
  /^(?:➤ )?YN\d{4}: .*(?:error|fail|forbidden|must|cannot|not found)/i, // Yarn Berry
  /^ERROR in /, // webpack
  /^(?:[A-Z][a-z]+)?Error(?: \[[A-Z_]+\])?: /, // Error: …, SyntaxError: …, Error [ERR_X]: …
  /^\[?error\]?:? /i, // Yarn classic's "error …", Astro's "[error] …", "ERROR: …"
];
/** Decoration in front of an error line that says nothing. */
const NOISE = /^(?:✘ \[ERROR\] |\[vite\]:? |➤ )/;

/** npm's own error lines: the summary is the first that is not one of its bookkeeping lines. */
const NPM_ERROR = /^npm (?:error|ERR!) (.*)$/;
const NPM_BOOKKEEPING = /^(?:code |errno |syscall |path |command|signal |workspace |location |in workspace|at location|Lifecycle script|A complete log|$)/;

/**
 * Lines that name the cause whatever else was printed, each with how many following lines complete
 * it (pnpm states an engine mismatch over four lines). They win over an egress refusal too.
 */
const CAUSES: [RegExp, number][] = [
  [/\bERR_PNPM_UNSUPPORTED_ENGINE\b/, 3], // pnpm: "Expected version: >=22.13", "Got: v20.20.2"
  [/requires at least Node\.js v?\d/i, 1], // pnpm, Yarn: "This version of pnpm requires at least Node.js v22.13" + "The current version is …"
  [/The engine "node" is incompatible with this module/, 0], // Yarn classic
  [/^npm (?:error|ERR!) (?:notsup|engine) Unsupported engine/, 1], // npm with engine-strict
  [/Unsupported engine for \S+: wanted: /, 0],
  [/Could not resolve ["'][^"']+["']/, 0], // esbuild
  [/Failed to resolve (?:import|entry)/, 0], // Vite
  [/Rollup failed to resolve import /, 0],
  [/Module not found: (?:Error: )?Can't resolve /, 0], // webpack
  [/Cannot find (?:module|package) ['"][^'"]+['"](?: imported from| from|$|\s)/, 0], // Node
  [/JavaScript heap out of memory/, 0],
];

function cleanLines(lines: readonly string[]): string[] {
  // Whitespace runs become one space: tools pad with tabs, thin spaces (pnpm) and alignment.
  return lines.map((l) => stripAnsi(l).replace(/\s+/g, ' ').trim()).filter((l) => l !== '' && !l.startsWith('[slipway]') && !l.startsWith('$ '));
}

/** The first line of `lines` that names the failure's cause outright (CAUSES), with what completes it; null when none does. */
export function causeLine(lines: readonly string[]): string | null {
  const text = cleanLines(lines);
  for (const [i, line] of text.entries()) {
    const found = CAUSES.find(([pattern]) => pattern.test(line));
    if (!found) continue;
    // Next.js and webpack name the module on the line before the problem: keep it.
    const before = text[i - 1];
    const where = before && (/^\.{0,2}\/\S+$/.test(before) || before.startsWith('ERROR in ')) ? `${before}: ` : '';
    const parts = [where + line, ...text.slice(i + 1, i + 1 + found[1]).filter((l) => !/^at\s/.test(l))];
    return cap(parts.map((l) => l.replace(NOISE, '').replace(NPM_ERROR, '$1')).join('; '));
  }
  return null;
}

/** The explaining line of `lines` (the failed command's output), or null when it said nothing. */
export function failureSummary(lines: readonly string[]): string | null {
  return causeLine(lines) ?? errorLine(lines);
}

/** Without a cause line: the bundler's or manager's error line, else the last line that is not a stack frame. */
export function errorLine(lines: readonly string[]): string | null {
  const clean = cleanLines(lines);
  let npm: string | null = null;
  for (const [i, line] of clean.entries()) {
    if (HEADERS.some((h) => h.test(line))) {
      const next = clean[i + 1];
      if (!next || NPM_ERROR.test(next)) continue;
      // Next.js names the file on one line and the problem on the next: keep both.
      const detail = /^\.{0,2}\/\S+$/.test(next) && clean[i + 2] ? `${next}: ${clean[i + 2]}` : next;
      return cap(detail.replace(NOISE, ''));
    }
    const npmLine = NPM_ERROR.exec(line);
    if (npmLine) {
      if (npm === null && !NPM_BOOKKEEPING.test(npmLine[1]!)) npm = npmLine[1]!;
      continue;
    }
    if (ERROR_LINES.some((pattern) => pattern.test(line))) return cap(withCause(webpackDetail(line.replace(NOISE, ''), clean[i + 1]), clean.slice(i + 1, i + 1 + CAUSE_LOOKAHEAD)));
  }
  if (npm !== null) return cap(npm);
  const last = [...clean].reverse().find((l) => !/^at\s/.test(l) && !NPM_ERROR.test(l));
  return last === undefined ? null : cap(last);
}

/** How far below an error line its `[cause]:` lines are looked for (they follow its stack). */
const CAUSE_LOOKAHEAD = 200;

/**
 * Node prints an error's causes below its stack, innermost last (`[cause]: ReferenceError: window
 * is not defined` under Docusaurus's "Unable to build website"): the innermost is the one that explains.
 */
function withCause(line: string, after: readonly string[]): string {
  let innermost: string | undefined;
  for (const next of after) {
    if (next.startsWith('[cause]: ')) innermost = next.slice('[cause]: '.length);
    else if (ERROR_LINES.some((pattern) => pattern.test(next))) break;
  }
  return innermost ? `${line}; cause: ${innermost}` : line;
}

/** webpack names the module on one line and the problem on the next: keep both. */
function webpackDetail(line: string, next: string | undefined): string {
  return line.startsWith('ERROR in ') && next ? `${line}: ${next}` : line;
}

function cap(line: string): string {
  return line.length > MAX_SUMMARY_CHARS ? `${line.slice(0, MAX_SUMMARY_CHARS)}…` : line;
}

/** Why a build was refused egress `times` times, and what would allow it. */
export function egressFailure(reason: string, times: number): string {
  const target = reason.slice(0, reason.indexOf(': '));
  const why = reason.slice(reason.indexOf(': ') + 2);
  const fix = / is not in BUILD_EGRESS_ALLOW$/.test(why)
    ? 'add its host to BUILD_EGRESS_ALLOW to allow it'
    : / address \(/.test(why)
      ? 'a host on a private or reserved address (a registry mirror on the LAN) is allowed by BUILD_EGRESS_PRIVATE_HOSTS; loopback and link-local never are'
      : / does not resolve$| did not resolve /.test(why)
        ? 'the worker could not resolve that name: check it, or the worker\'s own DNS (a build that fetches from the internet needs the worker to reach it)'
        : 'builds may reach public hosts on ports 80 and 443 only';
  const often = times === 1 ? 'and was refused' : `${times} times and was refused each time`;
  return `the build tried to reach ${target} ${often} (${why}); ${fix}`;
}

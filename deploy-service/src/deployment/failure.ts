// The one line of a failed command's output that explains the failure: the bundler's or
// compiler's first error, a package manager's error summary, else the last line that is not a
// stack frame. Colours and other terminal escapes are stripped first.

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

/** The explaining line of `lines` (the failed command's output), or null when it said nothing. */
export function failureSummary(lines: readonly string[]): string | null {
  // Whitespace runs become one space: tools pad with tabs, thin spaces (pnpm) and alignment.
  const clean = lines.map((l) => stripAnsi(l).replace(/\s+/g, ' ').trim()).filter((l) => l !== '' && !l.startsWith('[slipway]') && !l.startsWith('$ '));
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
    if (ERROR_LINES.some((pattern) => pattern.test(line))) return cap(webpackDetail(line.replace(NOISE, ''), clean[i + 1]));
  }
  if (npm !== null) return cap(npm);
  const last = [...clean].reverse().find((l) => !/^at\s/.test(l) && !NPM_ERROR.test(l));
  return last === undefined ? null : cap(last);
}

/** webpack names the module on one line and the problem on the next: keep both. */
function webpackDetail(line: string, next: string | undefined): string {
  return line.startsWith('ERROR in ') && next ? `${line}: ${next}` : line;
}

function cap(line: string): string {
  return line.length > MAX_SUMMARY_CHARS ? `${line.slice(0, MAX_SUMMARY_CHARS)}…` : line;
}

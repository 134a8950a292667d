// What a build's `_redirects` and `_headers` files asked for that Slipway skipped: one line per skipped
// rule line (or whole file), kept within a fixed bound however many lines a file skips, for the build
// log and the deployment record (its `warnings` field) to show.

/** At most this many warnings are kept; when more were skipped, the last one says how many. */
export const MAX_WARNINGS = 20;
/** A warning longer than this is cut (a skipped line is quoted in it, and a line may be 2,000 characters). */
export const MAX_WARNING_CHARS = 300;

export class RuleWarnings {
  private readonly kept: string[] = [];
  private more = 0;

  /** A rule line of `file` that was skipped, and why. */
  skipped(file: string, line: number, reason: string): void {
    this.add(`${file} line ${line} skipped: ${reason}`);
  }

  add(warning: string): void {
    if (this.kept.length < MAX_WARNINGS) this.kept.push(warning.length > MAX_WARNING_CHARS ? `${warning.slice(0, MAX_WARNING_CHARS - 1)}…` : warning);
    else this.more += 1;
  }

  /** At most MAX_WARNINGS entries, in the order they were added; the last one counts what did not fit. */
  list(): string[] {
    if (this.more === 0) return [...this.kept];
    return [...this.kept.slice(0, MAX_WARNINGS - 1), `and ${(this.more + 1).toLocaleString('en-US')} more skipped`];
  }
}

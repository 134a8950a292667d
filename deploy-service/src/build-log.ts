// A build's log: lines from the install and build, batched into the deployment's Redis stream,
// capped at MAX_LOG_BYTES with a note that it was cut, and kept whole (capped) for logs/<id>.log.
import type { Queue } from '@slipway/shared';

const FLUSH_LINES = 200;
const FLUSH_MS = 250;
const TAIL_LINES = 20;
const MAX_LINE_CHARS = 4000;
/** Lines of the running command kept for the failure summary (its first ones; the tail is kept too). */
const COMMAND_LINES = 2000;
/** Values shorter than this are not hidden: they would blank out ordinary words. */
const MIN_SECRET_CHARS = 6;

export class BuildLog {
  private pending: string[] = [];
  private readonly all: string[] = [];
  private readonly recent: string[] = [];
  private bytes = 0;
  private truncated = false;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  private secrets: { name: string; value: string }[] = [];
  private command: string[] = [];

  constructor(
    private readonly queue: Queue,
    private readonly id: string,
    private readonly maxBytes: number,
  ) {}

  /** The build's env values: a line that prints one shows `[env NAME]` instead. */
  hide(env: Readonly<Record<string, string>>): void {
    this.secrets = Object.entries(env)
      .filter(([, value]) => value.length >= MIN_SECRET_CHARS)
      .map(([name, value]) => ({ name, value }))
      .sort((a, b) => b.value.length - a.value.length); // the longest first, so one inside another is hidden whole
  }

  line(text: string): void {
    let shown = text;
    for (const { name, value } of this.secrets) if (shown.includes(value)) shown = shown.replaceAll(value, `[env ${name}]`);
    const line = shown.length > MAX_LINE_CHARS ? `${shown.slice(0, MAX_LINE_CHARS)}…` : shown;
    this.recent.push(line);
    if (this.recent.length > TAIL_LINES) this.recent.shift();
    if (this.command.length < COMMAND_LINES) this.command.push(line);
    if (this.truncated) return;
    const size = Buffer.byteLength(line) + 1;
    if (this.bytes + size > this.maxBytes) {
      this.truncated = true;
      this.push(`[slipway] log cut here: it passed ${this.maxBytes.toLocaleString('en-US')} bytes (MAX_LOG_BYTES); the build goes on`);
      return;
    }
    this.bytes += size;
    this.push(line);
  }

  /** Starts a new command: commandLines() holds its lines from here on. */
  startCommand(): void {
    this.command = [];
  }

  /** The running command's lines (the first COMMAND_LINES, then its last ones), cut or not. */
  commandLines(): string[] {
    if (this.command.length < COMMAND_LINES) return [...this.command];
    return [...this.command, ...this.recent];
  }

  /** The last lines seen, cut or not: the reason shown for a failed build. */
  tail(n = 10): string[] {
    return this.recent.slice(-n);
  }

  text(): string {
    return this.all.join('\n') + (this.all.length ? '\n' : '');
  }

  /** Writes every pending line; call before settling the deployment. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const lines = this.pending;
    this.pending = [];
    // Chained so batches reach the stream in order; a failed batch does not poison the ones after it.
    this.flushing = this.flushing.catch(() => undefined).then(() => this.queue.appendLog(this.id, lines));
    await this.flushing;
  }

  private push(line: string): void {
    this.all.push(line);
    this.pending.push(line);
    if (this.pending.length >= FLUSH_LINES) void this.flush().catch(() => undefined);
    else this.timer ??= setTimeout(() => void this.flush().catch(() => undefined), FLUSH_MS);
  }
}

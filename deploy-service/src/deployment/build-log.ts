// A build's log: lines from the install and build, batched into the deployment's Redis stream,
// capped at MAX_LOG_BYTES with a note that it was cut, and kept whole (capped) for logs/<id>.log.
// A build's output is read as bytes (LineReader): a line is cut at MAX_LINE_BYTES before it is
// buffered, every byte read counts towards MAX_LOG_BYTES, and a build that goes on printing past
// FLOOD_FACTOR × MAX_LOG_BYTES is flooding (the command runner stops it).
import type { Queue } from '@slipway/shared';

const FLUSH_LINES = 200;
const FLUSH_MS = 250;
/** A batch Redis did not take is tried again after this. */
const RETRY_FLUSH_MS = 1000;
const TAIL_LINES = 20;
/** The longest line kept; the rest of a longer one is counted and dropped as it arrives. */
export const MAX_LINE_BYTES = 4000;
/** Output past this many times MAX_LOG_BYTES stops the command: reading it costs the worker a core. */
export const FLOOD_FACTOR = 100;
/** Lines of the running command kept for the failure summary (its first ones; the tail is kept too). */
const COMMAND_LINES = 2000;
/** Values shorter than this are not hidden: they would blank out ordinary words. */
const MIN_SECRET_CHARS = 6;

export class BuildLog {
  private pending: string[] = [];
  private readonly all: string[] = [];
  private readonly recent: string[] = [];
  private bytes = 0;
  /** Bytes of command output read, shown or not. */
  private read = 0;
  private truncated = false;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  private secrets: { name: string; value: string }[] = [];
  private command: string[] = [];

  constructor(
    private readonly queue: Queue,
    private readonly id: string,
    readonly maxBytes: number,
  ) {}

  /**
   * The build's env values: a line that prints one shows `[env NAME]` instead, and so does one that
   * prints it base64-, hex- or URL-encoded. This guards against accidents only: the build holds the
   * values and can always print them some other way (split, reversed), so a value is no secret from it.
   */
  hide(env: Readonly<Record<string, string>>): void {
    const forms = (value: string) => {
      const bytes = Buffer.from(value);
      return new Set([value, bytes.toString('base64'), bytes.toString('base64').replace(/=+$/, ''), bytes.toString('base64url'), bytes.toString('hex'), encodeURIComponent(value)]);
    };
    this.secrets = Object.entries(env)
      .filter(([, value]) => value.length >= MIN_SECRET_CHARS)
      .flatMap(([name, value]) => [...forms(value)].map((form) => ({ name, value: form })))
      .sort((a, b) => b.value.length - a.value.length); // the longest first, so one inside another is hidden whole
  }

  /** Counts `n` bytes of command output read. */
  countRead(n: number): void {
    this.read += n;
  }

  /** True once the command output read passes FLOOD_FACTOR × MAX_LOG_BYTES. */
  get flooded(): boolean {
    return this.read > this.maxBytes * FLOOD_FACTOR;
  }

  line(text: string): void {
    let line = text;
    for (const { name, value } of this.secrets) if (line.includes(value)) line = line.replaceAll(value, `[env ${name}]`);
    this.recent.push(line);
    if (this.recent.length > TAIL_LINES) this.recent.shift();
    if (this.command.length < COMMAND_LINES) this.command.push(line);
    if (this.truncated) return;
    const size = Buffer.byteLength(line) + 1;
    if (this.bytes + size > this.maxBytes || this.read > this.maxBytes) {
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

  /**
   * Writes every pending line; call before settling the deployment. A batch Redis did not take (it is
   * away) goes back in front of the pending lines and is written by the next flush, so an outage
   * delays lines instead of losing them (a batch whose reply alone was lost may show twice).
   */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    // Chained so batches reach the stream in order.
    this.flushing = this.flushing.then(async () => {
      const lines = this.pending;
      this.pending = [];
      try {
        await this.queue.appendLog(this.id, lines);
      } catch (err) {
        this.pending = [...lines, ...this.pending];
        this.timer ??= setTimeout(() => void this.flush().catch(() => undefined), RETRY_FLUSH_MS);
        throw err;
      }
    });
    const done = this.flushing;
    this.flushing = done.catch(() => undefined);
    await done;
  }

  /** Stops the retry timer (the build is over; its last flush was awaited). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private push(line: string): void {
    this.all.push(line);
    this.pending.push(line);
    if (this.pending.length >= FLUSH_LINES) void this.flush().catch(() => undefined);
    else this.timer ??= setTimeout(() => void this.flush().catch(() => undefined), FLUSH_MS);
  }
}

/**
 * Splits one output stream into lines (at \n, \r or \r\n) without ever holding more than
 * MAX_LINE_BYTES of a line: the rest of a longer line is only counted, and the line is given with
 * its full length once it ends.
 */
export class LineReader {
  private kept: Buffer[] = [];
  private keptBytes = 0;
  private length = 0;
  private afterCr = false;

  constructor(private readonly onLine: (text: string) => void) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte !== 0x0a && byte !== 0x0d) continue;
      // \r\n is one break: the \n right after a \r ends nothing.
      const skip = byte === 0x0a && this.afterCr && i === start && this.length === 0;
      if (!skip) {
        this.take(chunk.subarray(start, i));
        this.emit();
      }
      this.afterCr = byte === 0x0d;
      start = i + 1;
    }
    if (start < chunk.length) {
      this.afterCr = false;
      this.take(chunk.subarray(start));
    }
  }

  /** The stream ended: a last line without a newline is a line too. */
  end(): void {
    if (this.length > 0) this.emit();
  }

  private take(part: Buffer): void {
    this.length += part.length;
    const room = MAX_LINE_BYTES - this.keptBytes;
    if (room <= 0 || part.length === 0) return;
    const kept = part.length > room ? part.subarray(0, room) : part;
    // A copy: the chunk is the stream's and may be reused.
    this.kept.push(Buffer.from(kept));
    this.keptBytes += kept.length;
  }

  private emit(): void {
    const text = Buffer.concat(this.kept).toString('utf8');
    const cut = this.length > MAX_LINE_BYTES;
    this.onLine(cut ? `${text}… [slipway] line cut: it was ${this.length.toLocaleString('en-US')} bytes long` : text);
    this.kept = [];
    this.keptBytes = 0;
    this.length = 0;
  }
}

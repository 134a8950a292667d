// How a deployment's progress shows on stderr: a line per status change, and on a terminal a
// spinner line below it with the elapsed time, redrawn in place. stdout stays free for the result.

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const FRAME_MS = 100;

export class Progress {
  private readonly started = Date.now();
  private readonly live: boolean;
  private status = '';
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly id: string,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.live = out.isTTY === true;
    // unref'd: the spinner must never be what keeps the process alive.
    if (this.live) this.timer = setInterval(() => this.draw(), FRAME_MS).unref();
  }

  /** A status it has not shown yet: one permanent line. */
  update(status: string): void {
    if (status === this.status) return;
    this.status = status;
    this.line(`${this.id} ${status}${this.started < Date.now() - 1000 ? ` (${this.elapsed()})` : ''}`);
  }

  /** Anything else worth a line (a warning, an outage), kept above the spinner. */
  line(text: string): void {
    this.clear();
    this.out.write(`${text}\n`);
    this.draw();
  }

  elapsed(): string {
    const s = Math.round((Date.now() - this.started) / 1000);
    return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
  }

  private draw(): void {
    if (!this.timer) return;
    this.frame = (this.frame + 1) % FRAMES.length;
    this.out.write(`\r${FRAMES[this.frame]} ${this.status} ${this.elapsed()}\x1b[K`);
  }

  private clear(): void {
    if (this.live) this.out.write('\r\x1b[K');
  }
}

// Live build logs as server-sent events: each log line a `data:` event, then `event: end` once the
// build is over. Streams are counted per client address and in all (LOG_STREAMS_PER_CLIENT,
// LOG_STREAMS_MAX: past either, 429), each lives at most LOG_STREAM_SECONDS (then `event: end` with
// `data: reconnect`: the client asks again from its last `id:`), and a shutdown ends them all at
// once with `data: shutdown`, so the process can exit without waiting on a client.
import type { Request, Response } from 'express';
import { FINAL_STATUSES, TooManyRequestsError, type Config, type Queue } from '@slipway/shared';
import { clientKey } from '../access/throttle';

const POLL_MS = 500;

export class LogStreams {
  private readonly open = new Set<{ end(reason: string): void }>();
  private readonly perClient = new Map<string, number>();
  private closing = false;

  constructor(
    private readonly queue: Queue,
    private readonly limits: Pick<Config, 'logStreamsPerClient' | 'logStreamsMax' | 'logStreamMs'>,
  ) {}

  /** Streams `id`'s log from after `after` until the build ends, the client goes, the lifetime passes or a shutdown. */
  async serve(req: Request, res: Response, id: string, after: string): Promise<void> {
    const client = clientKey(req);
    const mine = this.perClient.get(client) ?? 0;
    if (this.closing) throw new TooManyRequestsError('the API is shutting down; ask again shortly', 1);
    if (mine >= this.limits.logStreamsPerClient) throw new TooManyRequestsError(`more than ${this.limits.logStreamsPerClient} live log streams from this address (LOG_STREAMS_PER_CLIENT)`, 5);
    if (this.open.size >= this.limits.logStreamsMax) throw new TooManyRequestsError(`more than ${this.limits.logStreamsMax} live log streams in all (LOG_STREAMS_MAX)`, 5);
    this.perClient.set(client, mine + 1);
    let ended: string | null = null;
    let wake: () => void = () => undefined;
    const stream = {
      end: (reason: string) => {
        ended ??= reason;
        wake();
      },
    };
    this.open.add(stream);
    const lifetime = setTimeout(() => stream.end('reconnect'), this.limits.logStreamMs);
    req.on('close', () => stream.end('gone'));
    try {
      res.status(200).set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
      res.flushHeaders();
      let cursor = after;
      while (ended === null) {
        const { lines, cursor: next } = await this.queue.readLog(id, cursor);
        for (const line of lines) res.write(`data: ${line.replace(/\r?\n/g, ' ')}\n\n`);
        cursor = next;
        if (lines.length > 0) res.write(`id: ${cursor}\n\n`);
        const record = await this.queue.get(id);
        if (!record || (FINAL_STATUSES.includes(record.status) && lines.length === 0)) {
          ended = record?.status ?? 'unknown';
          break;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, POLL_MS);
        });
      }
      if (ended !== 'gone') res.write(`event: end\ndata: ${ended}\n\n`);
      res.end();
    } finally {
      clearTimeout(lifetime);
      this.open.delete(stream);
      const left = (this.perClient.get(client) ?? 1) - 1;
      if (left > 0) this.perClient.set(client, left);
      else this.perClient.delete(client);
    }
  }

  /** Ends every stream with `event: end` / `data: shutdown`, and refuses new ones; resolves once they are all gone. */
  async closeAll(): Promise<void> {
    this.closing = true;
    for (const stream of this.open) stream.end('shutdown');
    while (this.open.size > 0) await new Promise((r) => setTimeout(r, 10));
  }
}

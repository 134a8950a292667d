// A TCP proxy in front of redis-server that can lose one reply: the request that contains a marker
// is delivered, then the connection is cut before the answer gets back. That is what a network
// reset, or a client timeout, does to a command Redis has already run.
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface LossyProxy {
  readonly url: string;
  /** The next request containing `marker` runs on the server, and its reply is lost. */
  loseReplyTo(marker: string): void;
  /** From now on, requests still reach the server but no reply comes back, and no connection closes (a silent network). */
  silence(): void;
  /** Replies flow again (those dropped while silent stay lost). */
  speak(): void;
  /** The network is cut: every connection is reset and new ones are refused (ECONNREFUSED). */
  cut(): Promise<void>;
  /** Connections are taken again, on the same port. */
  mend(): Promise<void>;
  close(): Promise<void>;
}

export async function startLossyProxy(targetPort: number): Promise<LossyProxy> {
  let marker: string | null = null;
  let silent = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    let cutOnReply = false;
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => {
      if (marker !== null && chunk.includes(marker)) {
        marker = null;
        cutOnReply = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (cutOnReply) client.destroy();
      else if (!silent) client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    loseReplyTo(m) {
      marker = m;
    },
    silence() {
      silent = true;
    },
    speak() {
      silent = false;
    },
    async cut() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
    async mend() {
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

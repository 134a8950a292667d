// Prometheus metrics for GET /metrics: the queue's lengths read from Redis at scrape time, the
// deploy API's outcomes, request durations, and the process's own figures. One registry per app.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Queue, QueueStats } from '@slipway/shared';

export interface Metrics {
  registry: Registry;
  /** POST /deploy outcomes by answer code (`accepted` or an error code). */
  deploys: Counter<'outcome'>;
  requestSeconds: Histogram<'method' | 'route' | 'status'>;
}

export function createMetrics(queue: Queue): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'slipway_upload_' });
  // The registry collects its gauges concurrently; they share one read of the queue per scrape.
  let read: { at: number; stats: Promise<QueueStats> } | null = null;
  const stats = () => {
    if (!read || Date.now() - read.at > 500) read = { at: Date.now(), stats: queue.stats() };
    return read.stats;
  };
  new Gauge({
    name: 'slipway_queue_length',
    help: 'Deployment ids per queue list: waiting (LLEN build-queue), processing, delayed (retries), dead.',
    labelNames: ['list'],
    registers: [registry],
    async collect() {
      const s = await stats();
      for (const list of ['waiting', 'processing', 'delayed', 'dead'] as const) this.set({ list }, s[list]);
    },
  });
  new Gauge({
    name: 'slipway_worker_slots',
    help: 'Live deploy worker slots (with a heartbeat).',
    registers: [registry],
    async collect() {
      this.set((await stats()).workers.length);
    },
  });
  new Gauge({
    name: 'slipway_worker_slots_busy',
    help: 'Worker slots building a deployment right now.',
    registers: [registry],
    async collect() {
      this.set((await stats()).workers.filter((w) => w.current).length);
    },
  });
  return {
    registry,
    deploys: new Counter({ name: 'slipway_deploy_requests_total', help: 'POST /deploy answers, by outcome.', labelNames: ['outcome'], registers: [registry] }),
    requestSeconds: new Histogram({
      name: 'slipway_http_request_duration_seconds',
      help: 'API request durations (site requests excluded).',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.02, 0.1, 0.5, 2, 10, 60],
      registers: [registry],
    }),
  };
}

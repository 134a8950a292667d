// What every bench section shares: the rows it reports, the servers it may use, and the arithmetic.
import os from 'node:os';
import type { Stack } from '../test/harness/stack';

/** One line of the results table: a case, its two figures side by side, their ratio, and the goal. */
export interface Row {
  section: string;
  case: string;
  a: string;
  b: string;
  /** B / A, or whatever ratio the case states (say which in `case`). */
  ratio: string;
  /** The speed goal this row is judged by, when it has one (e.g. "≥ 1× BullMQ"). */
  target?: string;
  /** Whether the goal was met in this run. */
  met?: boolean;
}

export interface BenchContext {
  /** --quick: smaller sizes and fewer rounds, for CI (so the bench never rots); figures are indicative only. */
  quick: boolean;
  /** A folder of the run's own, removed at the end. */
  tmpRoot: string;
  s3Endpoint: string;
  /** The delay each way the latency proxy adds in the rows that say so (`--s3-latency-ms`, 20 by default). */
  s3LatencyMs: number;
  git: { url: string; root: string };
  /** The full stack (API + in-process workers) on its own redis-server and bucket. */
  stack: Stack;
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

/** The p-th percentile by nearest rank. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export function ms(x: number): string {
  return x >= 100 ? `${x.toFixed(0)} ms` : `${x.toFixed(x >= 10 ? 1 : 2)} ms`;
}

export function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(a / b >= 10 ? 0 : a / b >= 1 ? 1 : 2)}×`;
}

export function perSecond(x: number): string {
  return `${Math.round(x).toLocaleString('en-US')}/s`;
}

/** The machine, for the top of the results: figures mean little without it. */
export function machine(versions: { redis: string }): string[] {
  const cpus = os.cpus();
  return [
    `- Machine: ${cpus.length} cores (${cpus[0]?.model.trim() ?? 'unknown CPU'}), ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB memory, ${os.type()} ${os.release()}`,
    `- Node ${process.versions.node}, Redis ${versions.redis}, S3: s3rver (single-threaded, in a child process), git: git http-backend on loopback`,
  ];
}

/** The results as a markdown table. */
export function table(rows: readonly Row[]): string {
  const header = ['section', 'case', 'A', 'B', 'ratio', 'target', 'met'];
  const cells = rows.map((r) => [r.section, r.case, r.a, r.b, r.ratio, r.target ?? '', r.met === undefined ? '' : r.met ? 'yes' : '**no**']);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

// The HTTP API as the CLI sees it: the answers it reads, typed, and one request function that turns
// every failure into a CliError with the exit code it stands for (refused → 3, unreachable or 5xx → 4).
import { randomUUID } from 'node:crypto';
import { CliError, EXIT } from './errors';

export type Status = 'uploading' | 'queued' | 'building' | 'deployed' | 'failed' | 'canceled' | 'skipped';
export const FINAL_STATUSES: readonly Status[] = ['deployed', 'failed', 'canceled', 'skipped'];

/** GET /deployments/:id (the fields the CLI reads). */
export interface Deployment {
  id: string;
  status: Status;
  repoUrl: string;
  branch?: string;
  commit?: string;
  error?: string;
  url: string;
  project?: string;
  createdAt: string;
  finishedAt?: string;
}

/** POST /deploy and POST /projects/:name/deployments (the latter adds branch, production, aliasUrl). */
export interface Accepted {
  id: string;
  status: Status;
  url: string;
  branch?: string;
  production?: boolean;
  aliasUrl?: string;
}

/** An item of GET /deployments and GET /projects/:name/deployments (the latter adds the markers). */
export interface Listed {
  id: string;
  project: string | null;
  status: Status;
  branch: string | null;
  commit: string | null;
  createdAt: string;
  finishedAt: string | null;
  error: string | null;
  url: string;
  production?: boolean;
  target?: 'production' | 'preview';
  alias?: string | null;
}

export interface Project {
  name: string;
  repoUrl: string;
  productionBranch: string;
  url: string;
  production: { id: string; url: string } | null;
  pinned: boolean;
}

export interface Page<T> {
  items: T[];
  next: string | null;
}

export interface LogPage {
  lines: string[];
  cursor: string;
}

/** GET /projects/:name/env (and the answer of a change): what is set, never a value. */
export interface EnvListing {
  version: number;
  variables: { name: string; target: 'production' | 'preview' | 'branch'; branch?: string; updatedAt: string; by: string }[];
}

/** POST /projects/:name/rollback and /promote. */
export interface Pointed {
  production: string;
  pinned: boolean;
  url: string;
  message: string;
}

const REQUEST_TIMEOUT_MS = 30_000;
/** How long postOnce asks again with the same key before it gives up. */
const RETRY_WINDOW_MS = 60_000;
/** The API's own page limit. */
const MAX_PAGE = 100;

export class Api {
  private readonly base: string;

  constructor(
    url: string,
    private readonly token: string | undefined,
  ) {
    // Kept as a prefix, not resolved against: an API behind a proxy may live under a path.
    this.base = url.replace(/\/+$/, '');
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }

  delete<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  /**
   * A POST that makes something (a deployment), sent with an Idempotency-Key of its own and sent again
   * with the same key when no answer came (the connection broke) or the API says the first is still
   * being prepared: the API then answers with the one deployment, never a second.
   */
  async postOnce<T>(path: string, body: unknown): Promise<T> {
    const key = randomUUID();
    const deadline = Date.now() + RETRY_WINDOW_MS;
    for (let wait = 500; ; wait = Math.min(wait * 2, 5000)) {
      try {
        return await this.request<T>('POST', path, body, { 'idempotency-key': key });
      } catch (err) {
        const retry = err instanceof CliError && (err.exitCode === EXIT.unreachable || /still preparing/.test(err.message));
        if (!retry || Date.now() + wait > deadline) throw err;
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /** Up to `max` items of a paged listing, newest first, following `next` page by page. */
  async list<T>(path: string, max: number): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | null = null;
    do {
      const query: string = new URLSearchParams({ limit: String(Math.min(MAX_PAGE, max - items.length)), ...(cursor ? { cursor } : {}) }).toString();
      const page: Page<T> = await this.get<Page<T>>(`${path}?${query}`);
      items.push(...page.items);
      cursor = page.next;
    } while (cursor && items.length < max);
    return items;
  }

  private async request<T>(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json', ...extra };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let status: number;
    let text: string;
    try {
      const res = await fetch(this.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      status = res.status;
      text = await res.text();
    } catch (err) {
      throw new CliError(`could not reach the API at ${this.base} (${reason(err)}); is it running? Set SLIPWAY_URL or --url to its address`, EXIT.unreachable);
    }
    const json = parseJson(text);
    if (status >= 200 && status < 300) {
      if (json === undefined && text !== '') throw new CliError(`${method} ${this.base}${path} answered ${status} with something other than JSON; is SLIPWAY_URL the Slipway API?`, EXIT.unreachable);
      return json as T;
    }
    const message = errorMessage(json) ?? `${method} ${path} answered ${status}`;
    if (status === 401) throw new CliError(`${message} (set SLIPWAY_TOKEN or --token to an API token; \`npm start\` keeps one in .slipway/api-token)`, EXIT.refused);
    throw new CliError(message, status >= 500 || status < 400 ? EXIT.unreachable : EXIT.refused);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The message of the API's `{error: {code, message}}`, if that is what it answered. */
function errorMessage(json: unknown): string | undefined {
  const error = (json as { error?: { message?: unknown } } | undefined)?.error;
  return typeof error?.message === 'string' ? error.message : undefined;
}

/** Why fetch failed, in a word where Node gives one: ECONNREFUSED, ENOTFOUND, a timeout. */
function reason(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return err instanceof Error ? err.message : String(err);
}

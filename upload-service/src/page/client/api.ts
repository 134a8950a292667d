// The page's calls to the API, with the API token this browser keeps (asked for once, on a 401), and
// the shapes of the answers it reads.
import { $ } from './dom';

const TOKEN_KEY = 'slipway-api-token';

export interface Page<T> {
  items: T[];
  next: string | null;
}

export interface Deployment {
  id: string;
  status: string;
  url: string;
  repoUrl?: string;
  branch?: string;
  commit?: string;
  createdAt?: string;
  error?: string;
  liveBuild?: string;
  cancelRequested?: string;
  /** A push that changed none of the project's watched paths: what still serves, and why. */
  skip?: { serving: string; message: string };
  project?: string;
  /** In a project's history: whether production serves it, the alias it serves, what it was built for. */
  production?: boolean | string;
  alias?: string;
  target?: string;
}

/** GET /projects/:name/env, and the answer of a change: names, never values. */
export interface EnvListing {
  version: number;
  variables: { name: string; target: string; branch?: string; updatedAt: string; by: string }[];
}

export interface Project {
  name: string;
  url: string;
  repoUrl: string;
  productionBranch: string;
  rootDir?: string;
  buildCommand?: string[] | string;
  outputDir?: string;
  envNames?: string[];
  gitAuth?: { username: string; set: boolean } | null;
  deployKey?: { publicKey: string } | null;
  forge?: { apiUrl: string | null; set: boolean } | null;
  notifications?: { url: string; events?: string[] }[];
  production: { id: string; url: string } | null;
  pinned: boolean;
  branches?: { alias: string; url: string; id: string }[];
  domains?: (string | { host?: string; name?: string; domain?: string; url?: string; status?: string })[];
  message?: string;
  /** Hook URLs, and a new hook secret in the answer that made the project. */
  [field: string]: unknown;
}

/** An API error: its message and HTTP status. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export function askToken(): void {
  $('auth').hidden = false;
  $('token').focus();
}

export function saveToken(token: string): void {
  localStorage.setItem(TOKEN_KEY, token);
}

async function api(path: string, options: RequestInit, quiet: boolean): Promise<Response> {
  const token = localStorage.getItem(TOKEN_KEY);
  const headers = { ...(options.headers as Record<string, string> | undefined), ...(token ? { authorization: 'Bearer ' + token } : {}) };
  const res = await fetch(path, { ...options, headers });
  if (res.status === 401) {
    // Forget only the token this request carried: one saved while it was on its way is still untried.
    if (token && localStorage.getItem(TOKEN_KEY) === token) localStorage.removeItem(TOKEN_KEY);
    if (!quiet) askToken();
  }
  return res;
}

/** The answer's JSON, or an ApiError carrying the API's message and the HTTP status. */
export async function call<T = Record<string, unknown>>(method: string, path: string, body?: unknown, quiet = false): Promise<T> {
  const options: RequestInit = { method };
  if (body !== undefined) {
    options.headers = { 'content-type': 'application/json' };
    options.body = JSON.stringify(body);
  }
  const res = await api(path, options, quiet);
  const data = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
  if (!res.ok) throw new ApiError(data?.error?.message ?? `${res.status} ${res.statusText}`, res.status);
  return data as T;
}

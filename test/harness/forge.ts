// A forge's REST API on a free loopback port, shaped like the parts of GitHub's and GitLab's that
// Slipway calls: the same paths, auth headers, status codes and rate-limit headers, with statuses and
// comments kept in memory, and every request recorded so tests can assert the exact calls.
//   GitHub (under /github):  POST /repos/:owner/:repo/statuses/:sha, GET|POST /repos/:owner/:repo/issues/:n/comments,
//                            PATCH /repos/:owner/:repo/issues/comments/:id      Authorization: Bearer <token>
//   GitLab (under /gitlab):  POST /projects/:path/statuses/:sha, GET|POST /projects/:path/merge_requests/:iid/notes,
//                            PUT /projects/:path/merge_requests/:iid/notes/:id  PRIVATE-TOKEN: <token>
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ForgeCall {
  method: string;
  path: string;
  auth: string;
  body: Record<string, unknown> | null;
  answered: number;
}

export interface Forge {
  /** e.g. http://127.0.0.1:PORT/github: the apiUrl a project sets. */
  githubUrl: string;
  gitlabUrl: string;
  calls: ForgeCall[];
  /** Commit statuses by sha, in the order posted. */
  statuses: Map<string, Record<string, unknown>[]>;
  /** Comments by `<repo>#<n>`. */
  comments: Map<string, { id: number; body: string }[]>;
  /** The next `count` requests (matching `match`, when given) answer `status` (502: a proxy in front failing). */
  failNext(count: number, status?: number, match?: RegExp, headers?: Record<string, string>): void;
  /** The next `count` matching requests are done, but answered `status`: a reply lost on the way back. */
  loseReplies(count: number, match: RegExp, status?: number): void;
  /** Removes a comment, as a user deleting it on the forge would. */
  deleteComment(key: string, id: number): void;
  close(): Promise<void>;
}

export async function startForge(token: string): Promise<Forge> {
  const calls: ForgeCall[] = [];
  const statuses = new Map<string, Record<string, unknown>[]>();
  const comments = new Map<string, { id: number; body: string }[]>();
  let nextId = 1000;
  let failures: { count: number; status: number; match?: RegExp; headers: Record<string, string>; after?: boolean }[] = [];

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: Record<string, unknown> | null = null;
      try {
        body = raw ? (JSON.parse(raw) as Record<string, unknown>) : null;
      } catch {
        body = { unparsable: raw };
      }
      const url = new URL(req.url ?? '/', 'http://forge');
      const github = url.pathname.startsWith('/github/');
      const auth = (github ? req.headers.authorization : req.headers['private-token']) ?? '';
      const call: ForgeCall = { method: req.method ?? '', path: `${url.pathname}${url.search}`, auth: String(auth), body, answered: 0 };
      calls.push(call);
      const failing = failures.find((f) => f.count > 0 && (!f.match || f.match.test(`${req.method} ${url.pathname}`)));
      if (failing) {
        failing.count -= 1;
        failures = failures.filter((f) => f.count > 0);
      }
      const answer = (status: number, json: unknown, headers: Record<string, string> = {}) => {
        if (failing?.after) [status, json] = [failing.status, { message: 'Bad Gateway' }];
        call.answered = status;
        res.writeHead(status, { 'content-type': 'application/json', 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '4999', 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600), ...headers });
        res.end(JSON.stringify(json));
      };
      if (failing && !failing.after) return answer(failing.status, { message: 'Server Error' }, failing.headers);
      if (auth !== (github ? `Bearer ${token}` : token)) return answer(401, { message: github ? 'Bad credentials' : '401 Unauthorized' });
      const p = url.pathname;
      let m: RegExpExecArray | null;
      const list = (key: string) => comments.get(key) ?? (comments.set(key, []), comments.get(key)!);
      if ((m = /^\/github\/repos\/([^/]+\/[^/]+)\/statuses\/([0-9a-f]{40})$/.exec(p)) && req.method === 'POST') {
        if (!['pending', 'success', 'failure', 'error'].includes(String(body?.state))) return answer(422, { message: 'Validation Failed' });
        (statuses.get(m[2]!) ?? (statuses.set(m[2]!, []), statuses.get(m[2]!)!)).push({ repo: m[1], ...body });
        return answer(201, { id: nextId++, ...body });
      }
      if ((m = /^\/github\/repos\/([^/]+\/[^/]+)\/issues\/(\d+)\/comments$/.exec(p))) {
        const key = `${m[1]}#${m[2]}`;
        if (req.method === 'GET') return answer(200, list(key));
        if (req.method === 'POST') {
          const comment = { id: nextId++, body: String(body?.body ?? '') };
          list(key).push(comment);
          return answer(201, comment);
        }
      }
      if ((m = /^\/github\/repos\/([^/]+\/[^/]+)\/issues\/comments\/(\d+)$/.exec(p)) && req.method === 'PATCH') {
        for (const all of comments.values()) {
          const found = all.find((c) => c.id === Number(m![2]));
          if (found) return (found.body = String(body?.body ?? '')), answer(200, found);
        }
        return answer(404, { message: 'Not Found' });
      }
      if ((m = /^\/gitlab\/projects\/([^/]+)\/statuses\/([0-9a-f]{40})$/.exec(p)) && req.method === 'POST') {
        const all = statuses.get(m[2]!) ?? (statuses.set(m[2]!, []), statuses.get(m[2]!)!);
        if (all.at(-1)?.state === body?.state) return answer(400, { message: `Cannot transition status via :${String(body?.state)} from :${String(body?.state)}` });
        all.push({ repo: decodeURIComponent(m[1]!), ...body });
        return answer(201, { id: nextId++, ...body });
      }
      if ((m = /^\/gitlab\/projects\/([^/]+)\/merge_requests\/(\d+)\/notes(?:\/(\d+))?$/.exec(p))) {
        const key = `${decodeURIComponent(m[1]!)}#${m[2]}`;
        if (!m[3] && req.method === 'GET') return answer(200, list(key));
        if (!m[3] && req.method === 'POST') {
          const note = { id: nextId++, body: String(body?.body ?? '') };
          list(key).push(note);
          return answer(201, note);
        }
        if (m[3] && req.method === 'PUT') {
          const found = list(key).find((c) => c.id === Number(m![3]));
          if (!found) return answer(404, { message: '404 Not found' });
          found.body = String(body?.body ?? '');
          return answer(200, found);
        }
      }
      answer(404, { message: 'Not Found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    githubUrl: `${base}/github`,
    gitlabUrl: `${base}/gitlab`,
    calls,
    statuses,
    comments,
    failNext(count, status = 502, match, headers = {}) {
      failures.push({ count, status, match, headers });
    },
    loseReplies(count, match, status = 502) {
      failures.push({ count, status, match, headers: {}, after: true });
    },
    deleteComment(key, id) {
      comments.set(key, (comments.get(key) ?? []).filter((c) => c.id !== id));
    },
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

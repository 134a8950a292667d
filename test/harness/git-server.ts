// A tiny git smart-HTTP server for integration tests: `git http-backend` run as a CGI behind a
// Node http server on loopback, serving the bare repositories under one folder — plus a helper
// that writes fixture repositories into that folder.
//
// Everything streams: request bodies are piped into the CGI's stdin and its output is piped back
// after its header block, so large fetches never sit in memory.
import http from 'node:http';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, rename, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface GitServer {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:PORT; clone `${url}/<name>.git`. */
  url: string;
  /** Folder the bare repositories are served from. */
  root: string;
  /** Stops listening, drops open connections and kills running CGI children. Idempotent. */
  close(): Promise<void>;
}

export interface FixtureOptions {
  /** Branch of the main commit, which HEAD points at. Default 'main'. */
  branch?: string;
  /** More branches: name → the complete file set of that branch's commit (a child of the main commit). */
  extraBranches?: Record<string, Record<string, string | Buffer>>;
}

/**
 * The environment for every git process we start: the caller's, minus any GIT_* variables
 * (GIT_DIR, GIT_INDEX_FILE… are set when tests run from a git hook and would redirect git).
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('GIT_')) env[key] = value;
  return { ...env, GIT_TERMINAL_PROMPT: '0', ...extra };
}

/** Server-side config for every served repository, so fetches by SHA and partial clones work too. */
const SERVE_CONFIG: Record<string, string> = {
  GIT_CONFIG_COUNT: '3',
  GIT_CONFIG_KEY_0: 'uploadpack.allowFilter',
  GIT_CONFIG_VALUE_0: 'true',
  GIT_CONFIG_KEY_1: 'uploadpack.allowReachableSHA1InWant',
  GIT_CONFIG_VALUE_1: 'true',
  GIT_CONFIG_KEY_2: 'uploadpack.allowAnySHA1InWant',
  GIT_CONFIG_VALUE_2: 'true',
};

const HEADER_LIMIT = 64 * 1024;

export interface GitServerOptions {
  /**
   * HTTP Basic credentials every request must carry, as a forge asks for a private repository:
   * without them 401 (with WWW-Authenticate, so git asks its credential helper), with others 401 too.
   */
  auth?: { username: string; password: string };
  /** Waits this long before answering each request (a slow forge), so a clone lasts long enough to watch. */
  delayMs?: number;
}

export async function startGitServer(root: string, options: GitServerOptions = {}): Promise<GitServer> {
  root = path.resolve(root);
  await mkdir(root, { recursive: true });
  const children = new Set<ChildProcess>();
  let closing: Promise<void> | undefined;

  const server = http.createServer((req, res) => {
    if (closing) {
      res.writeHead(503, { Connection: 'close' }).end('closing\n');
      return;
    }
    if (options.auth) {
      const expected = `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}`;
      if (req.headers.authorization !== expected) {
        req.resume();
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="private"', 'Content-Type': 'text/plain' }).end('authentication required\n');
        return;
      }
    }
    if (options.delayMs) setTimeout(() => handle(req, res), options.delayMs);
    else handle(req, res);
  });

  function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    let pathInfo: string;
    try {
      pathInfo = decodeURIComponent(q === -1 ? rawUrl : rawUrl.slice(0, q));
    } catch {
      res.writeHead(400).end('bad path\n');
      return;
    }
    const env = cleanEnv({
      ...SERVE_CONFIG,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: pathInfo,
      REQUEST_METHOD: req.method ?? 'GET',
      QUERY_STRING: q === -1 ? '' : rawUrl.slice(q + 1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      REMOTE_USER: '',
      SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    });
    const gitProtocol = req.headers['git-protocol'];
    if (typeof gitProtocol === 'string') env.GIT_PROTOCOL = gitProtocol;
    const contentLength = req.headers['content-length'];
    if (contentLength !== undefined) env.CONTENT_LENGTH = contentLength;
    const contentEncoding = req.headers['content-encoding'];
    if (contentEncoding !== undefined) env.HTTP_CONTENT_ENCODING = contentEncoding;

    // Its own process group, so close() can kill http-backend together with its upload-pack.
    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    children.add(child);

    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4096);
    });

    let failed = false;
    const fail = (message: string) => {
      if (failed) return;
      failed = true;
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${message}\n${stderr}`);
      else res.destroy(new Error(message));
    };

    child.on('error', (err) => {
      children.delete(child);
      fail(`git http-backend: ${err.message}`);
    });
    child.on('close', (code, signal) => {
      children.delete(child);
      if (!headersDone) fail(`git http-backend exited (${signal ?? code}) before its headers`);
    });

    // Request body → CGI stdin. The child may exit without reading it all (a 404, say): ignore EPIPE.
    child.stdin!.on('error', () => {});
    req.pipe(child.stdin!);
    req.on('error', () => kill(child));
    // The client went away before we finished: nobody wants the output any more.
    res.on('close', () => {
      if (!res.writableFinished) kill(child);
    });

    // CGI stdout: a header block up to the first blank line, then the body.
    let headersDone = false;
    let head: Buffer = Buffer.alloc(0);
    const stdout = child.stdout!;
    const onData = (chunk: Buffer) => {
      head = head.length ? Buffer.concat([head, chunk]) : chunk;
      let end = head.indexOf('\r\n\r\n');
      let sepLength = 4;
      const lf = head.indexOf('\n\n');
      if (lf !== -1 && (end === -1 || lf < end)) {
        end = lf;
        sepLength = 2;
      }
      if (end === -1) {
        if (head.length > HEADER_LIMIT) {
          stdout.off('data', onData);
          kill(child);
          fail('git http-backend: header block too large');
        }
        return;
      }
      stdout.off('data', onData);
      headersDone = true;
      let status = 200;
      let statusMessage: string | undefined;
      for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') {
          const match = /^(\d{3})\s*(.*)$/.exec(value);
          if (match) {
            status = Number(match[1]);
            statusMessage = match[2] || undefined;
          }
          continue;
        }
        const previous = res.getHeader(name);
        if (previous === undefined) res.setHeader(name, value);
        else res.setHeader(name, [...(Array.isArray(previous) ? previous : [String(previous)]), value]);
      }
      res.statusCode = status;
      if (statusMessage) res.statusMessage = statusMessage;
      const rest = head.subarray(end + sepLength);
      head = Buffer.alloc(0);
      if (rest.length && !res.write(rest)) {
        stdout.pause();
        res.once('drain', () => stdout.pipe(res));
      } else {
        stdout.pipe(res);
      }
    };
    stdout.on('data', onData);
    stdout.on('end', () => {
      // No blank line at all: treat what came as an error (the close handler answers 500).
      if (!headersDone) kill(child);
    });
  }

  function kill(child: ChildProcess): void {
    if (child.exitCode !== null || child.signalCode !== null) return;
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    root,
    close() {
      closing ??= (async () => {
        const exits = [...children].map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              child.once('close', () => resolve());
              child.once('error', () => resolve());
            }),
        );
        for (const child of children) kill(child);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await Promise.all([closed, ...exits]);
      })();
      return closing;
    },
  };
}

const AUTHOR = 'Slipway Fixture <fixture@slipway.test> 1700000000 +0000';

/** A path in fast-import's C-style quoting (always quoted, so any name round-trips). */
function quotePath(p: string): string {
  let out = '"';
  for (const ch of p) {
    const code = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (code < 0x20 || code === 0x7f) out += `\\${code.toString(8).padStart(3, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** Prefix of a fixture file value that makes it a symbolic link to the rest of the string. */
export const SYMLINK_PREFIX = 'symlink:';
/** Prefix of a fixture file value that makes it executable. */
export const EXEC_PREFIX = 'exec:';

function* dataCommand(content: string | Buffer): Generator<Buffer> {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  yield Buffer.from(`data ${bytes.length}\n`);
  if (bytes.length) yield bytes;
  yield Buffer.from('\n');
}

function* commitCommands(
  branch: string,
  mark: number,
  parent: number | undefined,
  message: string,
  files: Record<string, string | Buffer>,
): Generator<Buffer> {
  yield Buffer.from(`commit refs/heads/${branch}\nmark :${mark}\nauthor ${AUTHOR}\ncommitter ${AUTHOR}\n`);
  yield* dataCommand(message);
  if (parent !== undefined) yield Buffer.from(`from :${parent}\ndeleteall\n`);
  for (const [file, content] of Object.entries(files)) {
    const normalized = file.replace(/^\.\//, '');
    // A value `symlink:<target>` commits a symbolic link (mode 120000) pointing at <target>.
    // … and `exec:<contents>` an executable file (mode 100755).
    const link = typeof content === 'string' && content.startsWith(SYMLINK_PREFIX);
    const exec = typeof content === 'string' && content.startsWith(EXEC_PREFIX);
    yield Buffer.from(`M ${link ? '120000' : exec ? '100755' : '100644'} inline ${quotePath(normalized)}\n`);
    yield* dataCommand(link ? content.slice(SYMLINK_PREFIX.length) : exec ? content.slice(EXEC_PREFIX.length) : content);
  }
}

/**
 * Creates (or replaces) the bare repository `<root>/<name>.git` holding one commit of `files`
 * (relative posix paths → contents) on `options.branch` (default 'main', which HEAD points at),
 * plus one commit per extra branch. Returns its clone URL `${baseUrl}/<name>.git`.
 *
 * Built with `git fast-import` straight into the bare repository — no working tree, no clone —
 * with a fixed author, date and message, so the same files always give the same commit SHA.
 */
export async function createFixtureRepo(
  server: { url: string; root: string },
  name: string,
  files: Record<string, string | Buffer>,
  options: FixtureOptions = {},
): Promise<string> {
  const branch = options.branch ?? 'main';
  if (!name || path.isAbsolute(name) || name.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new Error(`createFixtureRepo: bad repository name ${JSON.stringify(name)}`);
  }
  const target = path.join(path.resolve(server.root), `${name}.git`);
  const tmp = path.join(path.dirname(target), `.tmp-${path.basename(target)}-${randomBytes(6).toString('hex')}`);
  await mkdir(path.dirname(target), { recursive: true });
  const env = cleanEnv();

  try {
    await execFileAsync('git', ['init', '--quiet', '--bare', `--initial-branch=${branch}`, tmp], { env });
    // The server sets these for every request too; in the repo they also hold for file:// access.
    await appendFile(path.join(tmp, 'config'), '[uploadpack]\n\tallowFilter = true\n\tallowReachableSHA1InWant = true\n');

    function* stream(): Generator<Buffer> {
      yield* commitCommands(branch, 1, undefined, 'fixture\n', files);
      let mark = 2;
      for (const [extra, extraFiles] of Object.entries(options.extraBranches ?? {})) {
        if (extra === branch) throw new Error(`createFixtureRepo: extra branch ${extra} is the main branch`);
        yield* commitCommands(extra, mark++, 1, `fixture (${extra})\n`, extraFiles);
      }
      yield Buffer.from('done\n');
    }
    await fastImport(tmp, Readable.from(stream(), { objectMode: false }), env);

    await rm(target, { recursive: true, force: true });
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return `${server.url.replace(/\/+$/, '')}/${name}.git`;
}

function fastImport(gitDir: string, input: Readable, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', [`--git-dir=${gitDir}`, 'fast-import', '--quiet', '--done'], {
      env,
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-8192);
    });
    let inputError: Error | undefined;
    input.on('error', (err) => {
      inputError = err;
      child.stdin!.destroy();
      child.kill('SIGKILL');
    });
    child.stdin!.on('error', () => {}); // EPIPE if fast-import dies; its exit status says why.
    input.pipe(child.stdin!);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (inputError) reject(inputError);
      else if (code === 0) resolve();
      else reject(new Error(`git fast-import failed (${signal ?? code}): ${stderr.trim()}`));
    });
  });
}

// The site server (upload-service/src/site-main.ts) as a child process on a free port, for the tests
// and the bench; and nginx (Debian's package) serving a folder from local disk, for the bench's peers.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import getPort from 'get-port';
import { waitUntil } from './worker-process';

export interface SiteServer {
  port: number;
  child: ChildProcess;
  logs: string[];
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** Starts the site server with `env` (a stack's, say) on a free port and waits until it is ready. */
export async function startSiteServer(env: Record<string, string>): Promise<SiteServer> {
  const port = await getPort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'upload-service/src/site-main.ts'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env, SERVE_SITES: '0', SITE_PORT: String(port), LOG_LEVEL: env.LOG_LEVEL ?? 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  for (const stream of [child.stdout!, child.stderr!]) createInterface({ input: stream }).on('line', (line) => logs.push(line));
  // 'close', not 'exit': its output is all read by then.
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  await waitUntil('the site server to be ready', async () => ((await status(port, '/readyz').catch(() => 0)) === 200 ? true : undefined), 60_000);
  return { port, child, logs, exited };
}

function status(port: number, urlPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: urlPath, headers: { host: `127.0.0.1:${port}` } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

/**
 * nginx serving `root` on a free loopback port, configured as a static host would be (sendfile,
 * ETags, `try_files` for clean URLs, one worker per core, no access log). Returns its URL and stop.
 */
export async function startNginx(root: string, workDir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await getPort();
  await mkdir(workDir, { recursive: true });
  const conf = path.join(workDir, 'nginx.conf');
  await writeFile(
    conf,
    `user root;
worker_processes auto;
daemon off;
pid ${workDir}/nginx.pid;
error_log ${workDir}/error.log warn;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path ${workDir}/body;
  proxy_temp_path ${workDir}/proxy;
  fastcgi_temp_path ${workDir}/fastcgi;
  uwsgi_temp_path ${workDir}/uwsgi;
  scgi_temp_path ${workDir}/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / { try_files $uri $uri.html $uri/ =404; }
  }
}
`,
  );
  const child = spawn('nginx', ['-c', conf, '-p', workDir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitUntil('nginx to answer', async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr.trim()}`);
    return (await status(port, '/').catch(() => 0)) > 0 ? true : undefined;
  }, 15_000);
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      child.kill('SIGQUIT');
      await exited;
    },
  };
}

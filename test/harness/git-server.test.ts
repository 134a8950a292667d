import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { createFixtureRepo, startGitServer, type GitServer } from './git-server';
import { BINARY, manyFiles } from './fixtures';

const execFileAsync = promisify(execFile);

function gitEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('GIT_')) env[key] = value;
  return { ...env, GIT_TERMINAL_PROMPT: '0' };
}

async function git(args: string[], cwd?: string): Promise<string> {
  const { stdout } = await execFileAsync('git', args, { cwd, env: gitEnv(), maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** Processes below this one (pid, pgid, args), from ps. */
async function descendants(): Promise<{ pid: number; pgid: number; args: string }[]> {
  const { stdout } = await execFileAsync('ps', ['-e', '-o', 'pid=,ppid=,pgid=,args=']);
  const rows = stdout
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), pgid: Number(m[3]), args: m[4]! }));
  const found = new Set([process.pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const row of rows) {
      if (!found.has(row.pid) && found.has(row.ppid)) {
        found.add(row.pid);
        grew = true;
      }
    }
  }
  return rows.filter((row) => row.pid !== process.pid && found.has(row.pid) && !/^ps /.test(row.args));
}

async function gitChildren() {
  return (await descendants()).filter((row) => /\bgit/.test(row.args));
}

describe('git smart-HTTP test server', () => {
  let tmp: string;
  let server: GitServer;
  let repoUrl: string;

  const mainFiles = {
    'index.html': '<h1>main</h1>',
    'a/b/c/deep.txt': 'deep\n',
    'img/logo.png': BINARY,
    'with space/ünïcode "quoted".txt': 'odd name\n',
    'empty.txt': '',
  };
  const otherFiles = { 'index.html': '<h1>other</h1>', 'only/other.txt': 'other only\n' };

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'git-server-test-'));
    server = await startGitServer(path.join(tmp, 'repos'));
    repoUrl = await createFixtureRepo(server, 'site', mainFiles, { extraBranches: { other: otherFiles } });
  });

  afterAll(async () => {
    await server?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('returns the clone URL under the server URL', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(repoUrl).toBe(`${server.url}/site.git`);
  });

  it('serves a shallow clone of the default branch', async () => {
    const dir = path.join(tmp, 'clone-main');
    await git(['clone', '--quiet', '--depth', '1', repoUrl, dir]);
    for (const [file, content] of Object.entries(mainFiles)) {
      expect(await readFile(path.join(dir, file))).toEqual(Buffer.from(content));
    }
    expect((await git(['rev-parse', '--abbrev-ref', 'HEAD'], dir)).trim()).toBe('main');
    expect((await git(['rev-list', '--count', 'HEAD'], dir)).trim()).toBe('1');
    expect(await readFile(path.join(dir, '.git', 'shallow'), 'utf8')).not.toBe('');
    await expect(readFile(path.join(dir, 'only/other.txt'))).rejects.toThrow();
  });

  it('serves a shallow clone of another branch, over protocol v0 as well as v2', async () => {
    for (const version of ['2', '0']) {
      const dir = path.join(tmp, `clone-other-v${version}`);
      await git(['-c', `protocol.version=${version}`, 'clone', '--quiet', '--depth', '1', '--branch', 'other', repoUrl, dir]);
      expect(await readFile(path.join(dir, 'index.html'), 'utf8')).toBe('<h1>other</h1>');
      expect(await readFile(path.join(dir, 'only/other.txt'), 'utf8')).toBe('other only\n');
      await expect(readFile(path.join(dir, 'a/b/c/deep.txt'))).rejects.toThrow();
      expect((await git(['rev-list', '--count', 'HEAD'], dir)).trim()).toBe('1');
    }
  });

  it('lists both branches with HEAD on the main branch, with stable commit ids', async () => {
    const refs = await git(['ls-remote', '--symref', repoUrl]);
    expect(refs).toMatch(/^ref: refs\/heads\/main\tHEAD$/m);
    expect(refs).toMatch(/^[0-9a-f]{40}\trefs\/heads\/main$/m);
    expect(refs).toMatch(/^[0-9a-f]{40}\trefs\/heads\/other$/m);
    const again = await createFixtureRepo(server, 'site-copy', mainFiles, { extraBranches: { other: otherFiles } });
    const sha = (text: string) => /^([0-9a-f]{40})\trefs\/heads\/main$/m.exec(text)?.[1];
    expect(sha(await git(['ls-remote', again]))).toBe(sha(refs));
  });

  it('honours a custom branch and replaces an existing repository', async () => {
    const url = await createFixtureRepo(server, 'nested/replaced', { 'v.txt': 'one' });
    const url2 = await createFixtureRepo(server, 'nested/replaced', { 'v.txt': 'two' }, { branch: 'trunk' });
    expect(url2).toBe(url);
    const dir = path.join(tmp, 'clone-replaced');
    await git(['clone', '--quiet', '--depth', '1', url, dir]);
    expect(await readFile(path.join(dir, 'v.txt'), 'utf8')).toBe('two');
    expect((await git(['rev-parse', '--abbrev-ref', 'HEAD'], dir)).trim()).toBe('trunk');
    // No temporary directories left behind.
    expect((await readdir(path.join(server.root, 'nested'))).sort()).toEqual(['replaced.git']);
  });

  it('fails to clone a repository that does not exist', async () => {
    await expect(git(['clone', '--quiet', '--depth', '1', `${server.url}/missing.git`, path.join(tmp, 'missing')])).rejects.toThrow(
      /not found|404/i,
    );
    const res = await fetch(`${server.url}/missing.git/info/refs?service=git-upload-pack`);
    expect(res.status).toBe(404);
  });

  it('accepts gzip-encoded, chunked request bodies', async () => {
    const sha = (await git(['ls-remote', repoUrl, 'refs/heads/main'])).slice(0, 40);
    const pkt = (line: string) => `${(line.length + 4).toString(16).padStart(4, '0')}${line}`;
    const body = gzipSync(Buffer.from(`${pkt(`want ${sha}\n`)}0000${pkt('done\n')}`));
    const response = await new Promise<{ status: number; type: string | undefined; body: Buffer }>((resolve, reject) => {
      const req = http.request(`${server.url}/site.git/git-upload-pack`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-git-upload-pack-request', 'Content-Encoding': 'gzip' },
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      // Two writes and no Content-Length: sent chunked.
      req.write(body.subarray(0, 10));
      req.end(body.subarray(10));
    });
    expect(response.status).toBe(200);
    expect(response.type).toBe('application/x-git-upload-pack-result');
    expect(response.body.subarray(0, 8).toString()).toBe('0008NAK\n');
    expect(response.body.subarray(8, 12).toString()).toBe('PACK');
  });

  it('creates and clones a 1,200-file fixture quickly', async () => {
    const files = manyFiles(1200);
    const t0 = performance.now();
    const url = await createFixtureRepo(server, 'many', files);
    const t1 = performance.now();
    const dir = path.join(tmp, 'clone-many');
    await git(['clone', '--quiet', '--depth', '1', url, dir]);
    const t2 = performance.now();
    console.log(`1,201-file fixture: create ${(t1 - t0).toFixed(0)} ms, clone --depth 1 ${(t2 - t1).toFixed(0)} ms`);
    expect((await git(['ls-files'], dir)).trim().split('\n')).toHaveLength(Object.keys(files).length);
    expect(await readFile(path.join(dir, 'files/11/f1199.txt'), 'utf8')).toBe('file 1199\n');
    expect(t1 - t0).toBeLessThan(2000);
  });

  it('close() kills running CGI children, drops connections and is idempotent', async () => {
    const own = await startGitServer(path.join(tmp, 'repos'));
    expect(await gitChildren()).toEqual([]);
    // A POST whose body never ends keeps `git http-backend` waiting on its stdin.
    const req = http.request(`${own.url}/site.git/git-upload-pack`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-git-upload-pack-request' },
    });
    const outcome = new Promise<string>((resolve) => {
      req.on('error', (err) => resolve(`error: ${err.message}`));
      req.on('response', (res) => resolve(`status ${res.statusCode}`));
    });
    req.write('0032want ');
    let running: Awaited<ReturnType<typeof gitChildren>> = [];
    for (let i = 0; i < 100 && running.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      running = (await gitChildren()).filter((row) => /http-backend/.test(row.args));
    }
    // `git http-backend` runs `git-http-backend` as a child: both must go.
    expect(running.length).toBeGreaterThan(0);

    await Promise.all([own.close(), own.close()]);
    await own.close();
    expect(await gitChildren()).toEqual([]);
    expect(await outcome).toMatch(/^error: /);
    await expect(fetch(`${own.url}/site.git/info/refs`)).rejects.toThrow();
  });
});

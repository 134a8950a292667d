// Hostile input against the running upload-service: every forbidden URL form, option injection,
// traversal in every path field, oversized bodies and repositories, floods. Each gets its status
// and code, and leaves nothing behind in Redis or S3.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manyFiles } from './harness/fixtures';
import { startStack, type Stack, storedKeys } from './harness/stack';

let strict: Stack;
beforeAll(async () => {
  strict = await startStack({ workers: 0, env: { ALLOW_PRIVATE_NETWORKS: '0' } });
});
afterAll(async () => {
  await strict?.close();
});

/** Runs `test` against a stack of its own with `env`, and always stops it. */
async function withStack(env: Record<string, string>, test: (stack: Stack) => Promise<void>): Promise<void> {
  const stack = await startStack({ workers: 0, env });
  try {
    await test(stack);
  } finally {
    await stack.close();
  }
}

async function expectNothingStored(stack: Stack): Promise<void> {
  expect(await storedKeys(stack)).toEqual([]);
  let objects = 0;
  for await (const _ of stack.storage.list('')) objects++;
  expect(objects).toBe(0);
}

const ok = 'https://140.82.112.3/owner/site.git';
const cases: [string, unknown, number, string, RegExp][] = [
  // Schemes and forms that are not https URLs.
  ['file: URL', { repoUrl: 'file:///etc/passwd' }, 400, 'INVALID_URL', /scheme "file"/],
  ['ssh: URL', { repoUrl: 'ssh://git@140.82.112.3/o/r.git' }, 400, 'INVALID_URL', /SSH repoUrl needs a deploy key/],
  ['git: URL', { repoUrl: 'git://140.82.112.3/o/r.git' }, 400, 'INVALID_URL', /scheme "git"/],
  ['ext:: transport', { repoUrl: 'ext::sh -c touch% /tmp/pwned' }, 400, 'INVALID_URL', /not a URL|scheme/],
  ['ftp: URL', { repoUrl: 'ftp://140.82.112.3/r.git' }, 400, 'INVALID_URL', /scheme "ftp"/],
  ['javascript: URL', { repoUrl: 'javascript:alert(1)' }, 400, 'INVALID_URL', /scheme "javascript"/],
  ['data: URL', { repoUrl: 'data:text/plain,hi' }, 400, 'INVALID_URL', /scheme "data"/],
  ['plain http without ALLOW_PRIVATE_NETWORKS', { repoUrl: 'http://140.82.112.3/o/r.git' }, 400, 'INVALID_URL', /scheme "http"/],
  ['scp-like git address', { repoUrl: 'git@github.com:owner/repo.git' }, 400, 'INVALID_URL', /SSH repoUrl needs a deploy key/],
  ['local absolute path', { repoUrl: '/srv/git/repo.git' }, 400, 'INVALID_URL', /not a URL/],
  ['local relative path', { repoUrl: '../repo' }, 400, 'INVALID_URL', /not a URL/],
  ['option injection in repoUrl', { repoUrl: '--upload-pack=touch /tmp/pwned' }, 400, 'INVALID_URL', /must not start with "-"/],
  ['user name in the URL', { repoUrl: 'https://token@140.82.112.3/o/r.git' }, 400, 'INVALID_URL', /credentials/],
  ['password in the URL', { repoUrl: 'https://:secret@140.82.112.3/o/r.git' }, 400, 'INVALID_URL', /credentials/],
  ['query string', { repoUrl: `${ok}?ref=x` }, 400, 'INVALID_URL', /query string/],
  // Addresses that are not public, in every spelling.
  ['loopback', { repoUrl: 'https://127.0.0.1/r.git' }, 400, 'INVALID_URL', /loopback/],
  ['loopback, short form', { repoUrl: 'https://127.1/r.git' }, 400, 'INVALID_URL', /loopback/],
  ['loopback as a decimal number', { repoUrl: 'https://2130706433/r.git' }, 400, 'INVALID_URL', /loopback/],
  ['loopback in hex', { repoUrl: 'https://0x7f000001/r.git' }, 400, 'INVALID_URL', /loopback/],
  ['loopback in octal', { repoUrl: 'https://0177.0.0.1/r.git' }, 400, 'INVALID_URL', /loopback/],
  ['localhost', { repoUrl: 'https://localhost/r.git' }, 400, 'INVALID_URL', /loopback/],
  ['LOCALHOST in capitals', { repoUrl: 'https://LOCALHOST:8443/r.git' }, 400, 'INVALID_URL', /loopback/],
  ['the unspecified address', { repoUrl: 'https://0.0.0.0/r.git' }, 400, 'INVALID_URL', /unspecified/],
  ['private 10/8', { repoUrl: 'https://10.1.2.3/r.git' }, 400, 'INVALID_URL', /private/],
  ['private 172.16/12', { repoUrl: 'https://172.16.5.4/r.git' }, 400, 'INVALID_URL', /private/],
  ['private 192.168/16', { repoUrl: 'https://192.168.1.10/r.git' }, 400, 'INVALID_URL', /private/],
  ['carrier-grade NAT', { repoUrl: 'https://100.64.0.1/r.git' }, 400, 'INVALID_URL', /carrierGradeNat/],
  ['cloud metadata (link-local)', { repoUrl: 'https://169.254.169.254/latest/meta-data/' }, 400, 'INVALID_URL', /linkLocal/],
  ['multicast', { repoUrl: 'https://224.0.0.1/r.git' }, 400, 'INVALID_URL', /multicast/],
  ['broadcast', { repoUrl: 'https://255.255.255.255/r.git' }, 400, 'INVALID_URL', /broadcast/],
  ['documentation range (reserved)', { repoUrl: 'https://192.0.2.1/r.git' }, 400, 'INVALID_URL', /reserved/],
  ['IPv6 loopback', { repoUrl: 'https://[::1]/r.git' }, 400, 'INVALID_URL', /loopback/],
  ['IPv6 loopback, long form', { repoUrl: 'https://[0:0:0:0:0:0:0:1]/r.git' }, 400, 'INVALID_URL', /loopback/],
  ['IPv4-mapped IPv6 loopback', { repoUrl: 'https://[::ffff:127.0.0.1]/r.git' }, 400, 'INVALID_URL', /loopback|only public/],
  ['IPv6 unique local', { repoUrl: 'https://[fd12:3456::1]/r.git' }, 400, 'INVALID_URL', /uniqueLocal/],
  ['IPv6 link-local', { repoUrl: 'https://[fe80::1]/r.git' }, 400, 'INVALID_URL', /linkLocal/],
  ['IPv6 unspecified', { repoUrl: 'https://[::]/r.git' }, 400, 'INVALID_URL', /unspecified/],
  ['IPv4-compatible IPv6 (metadata)', { repoUrl: 'https://[::a9fe:a9fe]/latest/meta-data/' }, 400, 'INVALID_URL', /IPv4-compatible/],
  ['a host that does not resolve', { repoUrl: 'https://no-such-host.invalid/r.git' }, 400, 'INVALID_URL', /does not resolve/],
  // Option injection and traversal in the other fields.
  ['branch as an option', { repoUrl: ok, branch: '--upload-pack=touch /tmp/x' }, 400, 'INVALID_INPUT', /branch/],
  ['branch with ..', { repoUrl: ok, branch: 'main/../../x' }, 400, 'INVALID_INPUT', /branch/],
  ['branch with a space', { repoUrl: ok, branch: 'a b' }, 400, 'INVALID_INPUT', /branch/],
  ['branch with NUL', { repoUrl: ok, branch: 'ma\u0000in' }, 400, 'INVALID_INPUT', /branch/],
  ['branch too long', { repoUrl: ok, branch: 'b'.repeat(300) }, 400, 'INVALID_INPUT', /branch/],
  ['rootDir with ..', { repoUrl: ok, rootDir: 'apps/../../..' }, 400, 'INVALID_INPUT', /rootDir/],
  ['rootDir absolute', { repoUrl: ok, rootDir: '/etc' }, 400, 'INVALID_INPUT', /rootDir/],
  ['rootDir as an option', { repoUrl: ok, rootDir: '-rf' }, 400, 'INVALID_INPUT', /rootDir/],
  ['rootDir with a backslash climb', { repoUrl: ok, rootDir: '..\\..\\windows' }, 400, 'INVALID_INPUT', /rootDir/],
  ['outputDir with ..', { repoUrl: ok, outputDir: '..' }, 400, 'INVALID_INPUT', /outputDir/],
  ['outputDir with NUL', { repoUrl: ok, outputDir: 'dist\u0000/x' }, 400, 'INVALID_INPUT', /outputDir/],
  ['buildCommand with &&', { repoUrl: ok, buildCommand: 'npm run build && curl evil.example' }, 400, 'INVALID_INPUT', /buildCommand/],
  ['buildCommand with a redirect', { repoUrl: ok, buildCommand: 'cat /etc/passwd > dist/p' }, 400, 'INVALID_INPUT', /buildCommand/],
  ['buildCommand with a glob', { repoUrl: ok, buildCommand: 'rm -rf *' }, 400, 'INVALID_INPUT', /buildCommand/],
  ['installCommand as an option', { repoUrl: ok, installCommand: '--version' }, 400, 'INVALID_INPUT', /installCommand/],
  ['installCommand array with a number', { repoUrl: ok, installCommand: ['npm', 1] }, 400, 'INVALID_INPUT', /installCommand/],
  ['installCommand too long', { repoUrl: ok, installCommand: `npm ${'x'.repeat(1200)}` }, 400, 'INVALID_INPUT', /installCommand/],
  // Malformed bodies.
  ['repoUrl null', { repoUrl: null }, 400, 'INVALID_INPUT', /repoUrl/],
  ['repoUrl an array', { repoUrl: [ok] }, 400, 'INVALID_INPUT', /repoUrl/],
  ['repoUrl too long', { repoUrl: `https://140.82.112.3/${'a'.repeat(2100)}` }, 400, 'INVALID_INPUT', /repoUrl/],
  ['a JSON string body', '"https://140.82.112.3/r.git"', 400, 'INVALID_INPUT', /JSON object/],
  ['a JSON number body', '42', 400, 'INVALID_INPUT', /JSON object/],
  ['an unknown field', { repoUrl: ok, secrets: { AWS_SECRET_ACCESS_KEY: 'x' } }, 400, 'INVALID_INPUT', /secrets/],
  ['an env name that would reach the loader', { repoUrl: ok, env: { 'LD_PRELOAD ': '/tmp/x.so' } }, 400, 'INVALID_INPUT', /env/],
  ['malformed JSON', '{"repoUrl":', 400, 'INVALID_INPUT', /not valid JSON/],
  ['a body over 16 KB', { repoUrl: ok, branch: 'x'.repeat(17_000) }, 413, 'BODY_TOO_LARGE', /16 KB/],
];

describe('POST /deploy refuses hostile input', () => {
  it(`covers at least 40 kinds of bad input (${cases.length})`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  it.each(cases)('%s', async (_name, body, status, code, message) => {
    const res = await strict.post('/deploy', body);
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ error: { code, message: expect.stringMatching(message) } });
    expect(JSON.stringify(res.body)).not.toMatch(/\n\s+at /); // no stack traces
    await expectNothingStored(strict);
  });
});

describe('allow-list and limits', () => {
  it('refuses a host outside GIT_ALLOWED_HOSTS', async () => {
    await withStack({ GIT_ALLOWED_HOSTS: 'github.com, gitlab.com' }, async (stack) => {
      const res = await stack.post('/deploy', { repoUrl: 'https://bitbucket.org/o/r.git' });
      expect(res).toEqual({ status: 400, body: { error: { code: 'INVALID_URL', message: 'repoUrl host "bitbucket.org" is not in GIT_ALLOWED_HOSTS (github.com, gitlab.com)' } } });
      await expectNothingStored(stack);
    });
  });

  it('stops a repository larger than MAX_REPO_MB while cloning: 413 with the limit', async () => {
    await withStack({ MAX_REPO_MB: '1' }, async (stack) => {
      const random = Buffer.alloc(3 * 1024 * 1024);
      for (let i = 0; i < random.length; i += 4) random.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, i);
      const res = await stack.post('/deploy', { repoUrl: await stack.repo('huge', { 'index.html': 'x', 'big.bin': random }) });
      expect(res.status).toBe(413);
      expect(res.body.error).toEqual({ code: 'REPO_TOO_LARGE', message: expect.stringMatching(/the limit is 1 MB/) });
      await expectNothingStored(stack);
    });
  });

  it('refuses a checkout bomb (a tiny download that expands past MAX_REPO_MB) before anything is checked out', async () => {
    await withStack({ MAX_REPO_MB: '5' }, async (stack) => {
      // 64 MB of zeros: git's pack holds it in well under 1 MB, so only the tree's own sizes show it.
      const res = await stack.post('/deploy', { repoUrl: await stack.repo('bomb', { 'index.html': 'x', 'bomb.bin': Buffer.alloc(64 * 1024 * 1024) }) });
      expect(res.status).toBe(413);
      expect(res.body.error).toEqual({ code: 'REPO_TOO_LARGE', message: 'repository files add up to 64.0 MB; the limit is 5 MB (MAX_REPO_MB)' });
      await expectNothingStored(stack);
    });
  });

  it('refuses a repository with more files than MAX_REPO_FILES: 413 with the count and the limit', async () => {
    await withStack({ MAX_REPO_FILES: '100' }, async (stack) => {
      const res = await stack.post('/deploy', { repoUrl: await stack.repo('crowded', manyFiles(250)) });
      expect(res.status).toBe(413);
      expect(res.body.error).toEqual({ code: 'REPO_TOO_LARGE', message: expect.stringMatching(/the limit is 100\b/) });
      await expectNothingStored(stack);
    });
  });

  it('rate-limits POST /deploy per client: 429 with Retry-After', async () => {
    await withStack({ DEPLOY_RATE_LIMIT: '3' }, async (stack) => {
      const answers = [];
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`${stack.api}/deploy`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
        answers.push({ status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() });
      }
      expect(answers.map((a) => a.status)).toEqual([400, 400, 400, 429, 429]);
      expect(answers[3]).toEqual({ status: 429, retryAfter: '60', body: { error: { code: 'RATE_LIMITED', message: expect.stringMatching(/the limit is 3/) } } });
    });
  });

  it('bounds concurrent clones: past the waiting line, 429 instead of unbounded work', async () => {
    await withStack({ MAX_CONCURRENT_CLONES: '1', MAX_WAITING_CLONES: '0' }, async (stack) => {
      const repoUrl = await stack.repo('busy', manyFiles(600));
      const answers = await Promise.all([0, 1, 2].map(() => stack.post('/deploy', { repoUrl })));
      const statuses = answers.map((a) => a.status).sort();
      expect(statuses).toEqual([202, 429, 429]);
      expect(answers.find((a) => a.status === 429)?.body.error).toEqual({ code: 'RATE_LIMITED', message: expect.stringMatching(/the limit is 1, try again shortly/) });
      expect(await stack.redis.lLen('build-queue')).toBe(1);
    });
  });
});

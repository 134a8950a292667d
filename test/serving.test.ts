// Serving like a CDN, against the real stack: strong ETags and 304s, ranges, Brotli and gzip made at
// publish, immutable caching for hashed assets only, clean URLs and one trailing-slash policy, 404.html,
// the output's _redirects and _headers, security headers, and how many S3 reads a request costs.
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './harness/stack';

let stack: Stack;
let id: string;

const para = (n: number) => Array.from({ length: n }, (_, i) => `<p>Paragraph ${i} of a page long enough to be worth compressing.</p>`).join('\n');
const INDEX = `<!doctype html><title>Home</title><h1>Home</h1>\n${para(40)}`;
const BUNDLE = `export function main(){${Array.from({ length: 400 }, (_, i) => `console.log("line ${i}");`).join('')}}`;
const BIG = 'x'.repeat(100) + '\n' + 'The quick brown fox jumps over the lazy dog. '.repeat(7000);
const files: Record<string, string> = {
  'index.html': INDEX,
  'about.html': '<h1>About</h1>',
  'docs/index.html': '<h1>Docs</h1>',
  'app/index.html': '<h1>App shell</h1>',
  '404.html': '<h1>Nothing here</h1>',
  'assets/index-Ca74PG3G.js': BUNDLE,
  'assets/logo.svg': '<svg xmlns="http://www.w3.org/2000/svg"/>',
  'data.json': '{"small":true}',
  'big.txt': BIG,
  _redirects: [
    '# moved sections',
    '/old-blog/*      /blog/:splat            301',
    '/news/:year/:slug  /articles/:year/:slug  302',
    '/app/*           /app/index.html         200',
    '/gone            /404.html               404',
    '/forced          /about                  301!',
    '/about           /nowhere                301',
    '/elsewhere       https://example.com/x   302',
  ].join('\n'),
  _headers: ['/*', '  X-Robots-Tag: noindex', '/assets/*', '  X-Asset: yes', '/about', '  Cache-Control: public, max-age=60'].join('\n'),
};

beforeAll(async () => {
  stack = await startStack();
  id = await stack.deploy({ repoUrl: await stack.repo('cdn-site', files) });
  expect((await stack.waitFor(id)).status).toBe('deployed');
});
afterAll(async () => {
  await stack?.close();
});

/** A GET (or other method) to the site with the given request headers; the body as received (not decoded). */
function get(urlPath: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: stack.config.port, path: urlPath, method, headers: { host: `${id}.${stack.config.baseDomain}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('serving', () => {
  it('serves the Brotli or gzip variant made at publish, whichever the client accepts best', async () => {
    const br = await get('/', { 'accept-encoding': 'gzip, deflate, br' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers.vary).toMatch(/Accept-Encoding/i);
    expect(Number(br.headers['content-length'])).toBe(br.body.length);
    expect(br.body.length).toBeLessThan(INDEX.length / 3);
    expect(brotliDecompressSync(br.body).toString()).toBe(INDEX);

    const gz = await get('/', { 'accept-encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.body).toString()).toBe(INDEX);
    const refused = await get('/', { 'accept-encoding': 'br;q=0, gzip;q=0' });
    expect(refused.headers['content-encoding']).toBeUndefined();
    expect(refused.body.toString()).toBe(INDEX);
    expect((await get('/')).body.toString()).toBe(INDEX);
    expect(brotliDecompressSync((await get('/assets/index-Ca74PG3G.js', { 'accept-encoding': 'br' })).body).toString()).toBe(BUNDLE);
    // Too small to be worth it: stored and served as it is.
    expect((await get('/data.json', { 'accept-encoding': 'br' })).headers['content-encoding']).toBeUndefined();
  });

  it('answers If-None-Match with 304 from a strong ETag per representation', async () => {
    const first = await get('/', { 'accept-encoding': 'br' });
    const etag = first.headers.etag!;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{43}-br"$/);
    expect((await get('/')).headers.etag).toBe(etag.replace('-br"', '"'));
    const again = await get('/', { 'accept-encoding': 'br', 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.headers.etag).toBe(etag);
    expect((await get('/', { 'accept-encoding': 'br', 'if-none-match': `"other", W/${etag}` })).status).toBe(304);
    expect((await get('/', { 'accept-encoding': 'br', 'if-none-match': '"stale"' })).status).toBe(200);
    expect((await get('/', { 'if-none-match': etag })).status).toBe(200); // another representation
  });

  it('serves byte ranges (206), refuses unsatisfiable ones (416), and ignores a range for another version', async () => {
    const part = await get('/big.txt', { range: 'bytes=0-99', 'accept-encoding': 'br' });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 0-99/${BIG.length}`);
    expect(part.headers['content-encoding']).toBeUndefined();
    expect(part.body.toString()).toBe('x'.repeat(100));
    const tail = await get('/big.txt', { range: 'bytes=-10' });
    expect(tail.body.toString()).toBe(BIG.slice(-10));
    expect(tail.headers['content-range']).toBe(`bytes ${BIG.length - 10}-${BIG.length - 1}/${BIG.length}`);
    const small = await get('/about', { range: 'bytes=4-8' });
    expect(small.status).toBe(206);
    expect(small.body.toString()).toBe('About');
    const beyond = await get('/big.txt', { range: `bytes=${BIG.length}-` });
    expect(beyond.status).toBe(416);
    expect(beyond.headers['content-range']).toBe(`bytes */${BIG.length}`);
    expect((await get('/big.txt', { range: 'bytes=0-1,5-6' })).status).toBe(200);
    expect((await get('/big.txt', { range: 'bytes=0-9', 'if-range': '"an-old-version"' })).status).toBe(200);
    expect((await get('/big.txt')).headers['accept-ranges']).toBe('bytes');
  });

  it('caches hashed assets for a year and makes everything else revalidate', async () => {
    expect((await get('/assets/index-Ca74PG3G.js')).headers['cache-control']).toBe('public, max-age=31536000, immutable');
    for (const p of ['/', '/assets/logo.svg', '/data.json', '/docs/']) expect((await get(p)).headers['cache-control'], p).toBe('public, max-age=0, must-revalidate');
  });

  it('has clean URLs and one trailing-slash policy', async () => {
    expect((await get('/about')).body.toString()).toBe('<h1>About</h1>');
    const cases: [string, string][] = [
      ['/about.html', '/about'],
      ['/about/', '/about'],
      ['/docs', '/docs/'],
      ['/docs/index.html', '/docs/'],
      ['/index.html', '/'],
      ['/about.html?ref=nav', '/about?ref=nav'],
    ];
    for (const [from, to] of cases) {
      const res = await get(from);
      expect([res.status, res.headers.location], from).toEqual([308, to]);
    }
    expect((await get('/docs/')).body.toString()).toBe('<h1>Docs</h1>');
  });

  it('serves 404.html with status 404 for anything unknown', async () => {
    for (const p of ['/missing', '/missing.js', '/docs/nope/']) {
      const res = await get(p);
      expect([res.status, res.body.toString()], p).toEqual([404, '<h1>Nothing here</h1>']);
    }
  });

  it('applies the output\'s _redirects: splats, placeholders, rewrites, forced rules, external targets', async () => {
    const expectations: [string, number, string | undefined][] = [
      ['/old-blog/2024/hello', 301, '/blog/2024/hello'],
      ['/old-blog/2024/hello?x=1', 301, '/blog/2024/hello?x=1'],
      ['/old-blog/caf%C3%A9', 301, '/blog/caf%C3%A9'],
      ['/news/2023/launch', 302, '/articles/2023/launch'],
      ['/forced', 301, '/about'],
      ['/elsewhere', 302, 'https://example.com/x'],
    ];
    for (const [p, status, location] of expectations) {
      const res = await get(p);
      expect([res.status, res.headers.location], p).toEqual([status, location]);
    }
    expect((await get('/app/settings/profile')).body.toString()).toBe('<h1>App shell</h1>');
    expect(await get('/gone').then((r) => [r.status, r.body.toString()])).toEqual([404, '<h1>Nothing here</h1>']);
    expect((await get('/about')).status).toBe(200); // a file shadows an unforced rule
    expect((await get('/_redirects')).status).toBe(404); // rule files are not served
    expect((await get('/_headers')).status).toBe(404);
  });

  it('applies the output\'s _headers by path pattern, and sends security headers on every site answer', async () => {
    const asset = await get('/assets/logo.svg');
    expect(asset.headers['x-robots-tag']).toBe('noindex');
    expect(asset.headers['x-asset']).toBe('yes');
    expect((await get('/')).headers['x-asset']).toBeUndefined();
    expect((await get('/about')).headers['cache-control']).toBe('public, max-age=60');
    for (const res of [await get('/'), await get('/missing')]) {
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['referrer-policy']).toBe('strict-origin-when-cross-origin');
    }
    const page = await fetch(`${stack.api}/`);
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
  });

  it('costs at most one S3 read per request, and none for a 304, a 404 or a cached small file', async () => {
    const storage = stack.storage;
    const original = storage.get.bind(storage);
    let reads = 0;
    storage.get = (...args: Parameters<typeof original>) => {
      reads++;
      return original(...args);
    };
    try {
      const count = async (p: string, headers: Record<string, string> = {}) => {
        reads = 0;
        const res = await get(p, headers);
        return { status: res.status, reads };
      };
      const etag = (await get('/assets/logo.svg')).headers.etag!;
      expect(await count('/assets/logo.svg')).toEqual({ status: 200, reads: 0 }); // kept in memory
      expect(await count('/assets/logo.svg', { 'if-none-match': etag })).toEqual({ status: 304, reads: 0 });
      expect(await count('/missing.css')).toEqual({ status: 404, reads: 0 });
      expect(await count('/old-blog/x')).toEqual({ status: 301, reads: 0 });
      // Larger than SITE_CACHE_FILE_KB: one ranged read each time.
      expect(await count('/big.txt', { range: 'bytes=0-9' })).toEqual({ status: 206, reads: 1 });
      expect(await count('/big.txt')).toEqual({ status: 200, reads: 1 });
    } finally {
      storage.get = original;
    }
  });

  it('serves a build published before manifests existed by probing S3, as before', async () => {
    const old = await stack.deploy({ repoUrl: await stack.repo('pre-manifest', { 'index.html': '<h1>old</h1>', 'docs/index.html': '<h1>old docs</h1>' }) });
    const record = await stack.waitFor(old);
    await stack.storage.deletePrefix(`dist/${old}/${record.liveBuild}.meta/`);
    const site = (p: string) => stack.site(old, p).then((r) => [r.status, r.body.toString()]);
    expect(await site('/')).toEqual([200, '<h1>old</h1>']);
    expect(await site('/docs/')).toEqual([200, '<h1>old docs</h1>']);
    expect(await site('/route')).toEqual([200, '<h1>old</h1>']);
    expect((await stack.site(old, '/missing.js')).status).toBe(404);
  });

  it('deploys a site whose _redirects and _headers mix valid and unsupported lines: the valid rules work, the skipped ones are in the log and on the record', async () => {
    const mixed = await stack.deploy({
      repoUrl: await stack.repo('mixed-rules', {
        'index.html': '<h1>x</h1>',
        'blog/launch.html': '<h1>Launch</h1>',
        'gone.html': '<h1>Gone for good</h1>',
        _redirects: [
          '/old /index.html 301 # a trailing comment',
          '/broken',
          '/store id=:id /blog/:id 302',
          '/api/* https://api.example.com/:splat 200',
          '/ /anz 302 Country=au,nz',
          '/retired /gone.html 410',
          '/teapot /index.html 418',
        ].join('\n'),
        _headers: ['/*', '  X-Site: mixed', '  X-Content-Type-Options: off', '  Location: https://evil.example/', 'https://other.example/*', '  X-Other: 1'].join('\n'),
      }),
    });
    const record = await stack.waitFor(mixed);
    expect(record.status, record.error).toBe('deployed');
    const warnings = [
      '_redirects line 2 skipped: expected "from to [status]", got only "/broken"',
      '_redirects line 4 skipped: a 200 rule to "https://api.example.com/:splat" would proxy another site; proxying is not supported (use a 3xx status to redirect)',
      '_redirects line 5 skipped: condition "Country=au,nz" is not supported (Slipway does not route by country, language, role or cookie)',
      '_redirects line 7 skipped: status 418 is not supported; use 200, 301, 302, 303, 307, 308, 404, 410, 451',
      '_headers line 3 skipped: X-Content-Type-Options is always nosniff on sites and cannot be changed',
      '_headers line 4 skipped: Location is set by the server for redirects; use _redirects',
      '_headers line 5 skipped: "https://other.example/*" names a host; only path patterns starting with "/" are supported, with the header lines under it',
    ];
    expect((await stack.get(`/deployments/${mixed}`)).body.warnings).toEqual(warnings);
    const lines = (await stack.get(`/deployments/${mixed}/logs`)).body.lines as string[];
    expect(lines.filter((line) => line.includes(' skipped: '))).toEqual(warnings.map((w) => `[slipway] ${w}`));
    expect(lines).toContainEqual(expect.stringMatching(/; 3 redirect rules, 1 header rules\)$/));

    const at = (p: string) => stack.site(mixed, p);
    expect(await at('/old').then((r) => [r.status, r.headers.location])).toEqual([301, '/index.html']);
    expect(await at('/store?id=launch').then((r) => [r.status, r.headers.location])).toEqual([302, '/blog/launch?id=launch']);
    expect(await at('/retired').then((r) => [r.status, r.body.toString()])).toEqual([410, '<h1>Gone for good</h1>']);
    expect((await at('/api/users')).status).toBe(200); // no proxy: the single-page fallback
    const page = await at('/');
    expect(page.status).toBe(200);
    expect(page.headers['x-site']).toBe('mixed');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers.location).toBeUndefined();
    expect(page.headers['x-other']).toBeUndefined();
  });

  it('deploys a site whose _redirects is over 64 KiB with none of its rules and one warning', async () => {
    const big = `/a /b 302\n${'# padding\n'.repeat(7000)}`;
    const id = await stack.deploy({ repoUrl: await stack.repo('big-rules', { 'index.html': '<h1>x</h1>', _redirects: big }) });
    const record = await stack.waitFor(id);
    expect(record.status, record.error).toBe('deployed');
    expect(record.warnings).toEqual([`_redirects in the output is not used: it is ${big.length.toLocaleString('en-US')} bytes; the limit is 65,536`]);
    expect((await stack.site(id, '/a')).status).toBe(200); // the rule was not read: the single-page fallback
  });

  it('a site whose _headers is built to backtrack answers a long path at once, and a longer one with 414', async () => {
    const hostile = await stack.deploy({
      repoUrl: await stack.repo('backtrack-rules', { 'index.html': '<h1>x</h1>', _headers: '/*a*a*a*a*a*a*a*a*z\n  X-Slow: 1\n/*/:a/:b/*z\n  X-Slow: 2\n' }),
    });
    expect((await stack.waitFor(hostile)).status).toBe('deployed');
    const start = performance.now();
    const res = await stack.site(hostile, `/${'a'.repeat(2000)}`);
    expect(performance.now() - start).toBeLessThan(1000);
    expect(res.status).toBe(200); // the SPA fallback: index.html
    expect(res.headers['x-slow']).toBeUndefined();
    expect((await stack.site(hostile, `/${'a'.repeat(3000)}`)).status).toBe(414);
  });
});

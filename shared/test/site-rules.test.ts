// The _redirects and _headers rules: what each kind of line becomes, what is skipped (with the warning
// naming the line and the reason), and that matching costs a bounded scan whatever the rules.
import { describe, expect, it } from 'vitest';
import { MAX_HEADER_RULES, MAX_PATTERN_CHARS, MAX_REDIRECT_RULES, MAX_WARNINGS, RuleWarnings, headersFor, matchRedirect, parseHeaders, parseRedirects } from '../src';

const redirect = (file: string, pathname: string, search = '') => matchRedirect(parseRedirects(file), pathname, search);
const headers = (file: string, pathname: string) => headersFor(parseHeaders(file), pathname);
/** The rules a file gives and the warnings its parse left. */
function parsed<T>(parse: (text: string, warnings: RuleWarnings) => T[], text: string): { rules: T[]; warnings: string[] } {
  const warnings = new RuleWarnings();
  const rules = parse(text, warnings);
  return { rules, warnings: warnings.list() };
}

describe('_redirects syntax', () => {
  it('reads from, to, status and force, skipping comments and blank lines', () => {
    const rules = parseRedirects('# moved pages\n\n/old /new\n  /a   /b\t302  \r\n/app/* /app/index.html 200!\n/gone /404.html 404\n');
    expect(rules).toEqual([
      { from: '/old', to: '/new', status: 301, force: false, line: 3 },
      { from: '/a', to: '/b', status: 302, force: false, line: 4 },
      { from: '/app/*', to: '/app/index.html', status: 200, force: true, line: 5 },
      { from: '/gone', to: '/404.html', status: 404, force: false, line: 6 },
    ]);
  });

  it.each([303, 307, 308])('accepts status %i', (status) => {
    expect(parseRedirects(`/a /b ${status}`)[0]?.status).toBe(status);
  });

  it('accepts an absolute http(s) URL as the target of a redirect', () => {
    expect(redirect('/docs/* https://docs.example.com/:splat 301!', '/docs/a/b')).toEqual({ to: 'https://docs.example.com/a/b', status: 301, force: true });
    expect(redirect('/search https://example.com/?q=a&x=1 302', '/search')?.to).toBe('https://example.com/?q=a&x=1');
  });

  it('reads an empty file as no rules', () => {
    expect(parseRedirects('')).toEqual([]);
    expect(parseRedirects('\uFEFF# only a comment\n')).toEqual([]);
  });
});

describe('_redirects Netlify syntax beyond from and to', () => {
  it('reads a trailing comment as a comment', () => {
    expect(parsed(parseRedirects, '/a /b 302 # moved in 2024\n/c /d #no space\n/e /f#frag').rules).toEqual([
      { from: '/a', to: '/b', status: 302, force: false, line: 1 },
      { from: '/c', to: '/d', status: 301, force: false, line: 2 },
      { from: '/e', to: '/f#frag', status: 301, force: false, line: 3 },
    ]);
  });

  it('reads query conditions before to, and matches only a request carrying them', () => {
    const file = '/store id=:id /blog/:id 301\n/list sort=new page=:n /new/:n 302!\n/store /shop 302';
    expect(parseRedirects(file)[0]).toEqual({ from: '/store', query: [['id', ':id']], to: '/blog/:id', status: 301, force: false, line: 1 });
    expect(redirect(file, '/store', '?id=launch')).toEqual({ to: '/blog/launch', status: 301, force: false });
    expect(redirect(file, '/store', '?x=1&id=a&id=b')?.to).toBe('/blog/a'); // other parameters allowed; the first value counts
    expect(redirect(file, '/store', '?id=')?.to).toBe('/shop'); // a placeholder needs a value
    expect(redirect(file, '/store')?.to).toBe('/shop');
    expect(redirect(file, '/list', '?page=2&sort=new')).toEqual({ to: '/new/2', status: 302, force: true });
    expect(redirect(file, '/list', '?page=2&sort=old')).toBeNull();
  });

  it('encodes a query value it puts in to, so it cannot add a segment, a query or a host', () => {
    expect(redirect('/go to=:t /:t 302', '/go', '?to=%2F%2Fevil.example%2Fx%3Fa%3D1')?.to).toBe('/%2F%2Fevil.example%2Fx%3Fa%3D1');
    expect(redirect('/find q=:q https://search.example/?q=:q 302', '/find', '?q=a%26admin%3D1 b')?.to).toBe('https://search.example/?q=a%26admin%3D1%20b');
  });

  it.each([410, 451])('accepts status %i, a rewrite that serves to with that status', (status) => {
    expect(redirect(`/old/* /gone.html ${status}`, '/old/x')).toEqual({ to: '/gone.html', status, force: false });
  });
});

describe('_redirects lines Slipway cannot honour are skipped, with the line and the reason', () => {
  it.each([
    ['/only-from', /expected "from to \[status\]", got only "\/only-from"/],
    ['/a b=c', /expected "from to \[status\]", got no "to" after the query conditions/],
    ['https://a.com/* /b', /names a host; only paths/],
    ['old /new', /must be a path starting with "\/"/],
    ['/a/*/b /c', /"\*" is allowed only as the whole last segment/],
    ['/a* /c', /"\*" is allowed only as the whole last segment/],
    ['/a/:1x /c', /placeholder ":1x"/],
    ['/a/x:y/:id/:id /c', /placeholder :id appears twice/],
    ['/a/:splat /c', /":splat" is reserved/],
    ['/a /b 418', /status 418 is not supported; use 200, 301, 302, 303, 307, 308, 404, 410, 451/],
    ['/a /b moved', /expected a status such as 301/],
    ['/a /b 301 !', /unexpected field "!"/],
    ['/a /b 302 extra', /unexpected field "extra"/],
    ['/store id=:id/:x /blog 301', /placeholder ":id\/:x" must be/],
    ['/store i$d=:id /blog/:id 301', /query parameter name "i\$d"/],
    ['/store id= /blog 301', /query condition "id=" has no value; use id=:id/],
    ['/store id=:splat /blog 301', /":splat" is reserved/],
    ['/post/:id id=:id /blog/:id 301', /placeholder :id appears twice/],
    ['/ /anz 302 Country=au,nz', /condition "Country=au,nz" is not supported \(Slipway does not route by country, language, role or cookie\)/],
    ['/ /fr 302 Language=fr', /condition "Language=fr" is not supported/],
    ['/admin/* /admin 200! Role=admin', /condition "Role=admin" is not supported/],
    ['/beta/* /beta.html 200 Cookie=beta', /condition "Cookie=beta" is not supported/],
    ['/api/* https://api.example.com/:splat 200', /would proxy another site; proxying is not supported/],
    ['/api/* https://api.example.com/:splat 200!', /proxying is not supported/],
    ['/x https://example.com/404 404', /proxying is not supported/],
    ['/x https://example.com/gone 410', /proxying is not supported/],
    ['/a ftp://example.com/a 301', /not a valid http\(s\) URL/],
    ['/a b.html 200', /to "b.html" must be a path starting with "\/"$/],
    ['/a b.html', /must be a path starting with "\/" or an http\(s\) URL/],
    ['/news/:year /blog/:year/:month', /to uses :month but from "\/news\/:year" has no :month/],
    ['/news /blog/:splat', /to uses :splat but from "\/news" has no "\*"/],
    ['/a\u0007 /b', /control character/],
  ])('skips %j', (rule, reason) => {
    const { rules, warnings } = parsed(parseRedirects, `# header\n/fine /ok\n${rule}\n/after /ok 302\n`);
    expect(rules.map((r) => r.line)).toEqual([2, 4]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^_redirects line 3 skipped: /);
    expect(warnings[0]).toMatch(reason);
  });

  it('skips a line longer than 2,000 characters', () => {
    const { rules, warnings } = parsed(parseRedirects, `/a /b\n/${'x'.repeat(2000)} /b`);
    expect(rules).toHaveLength(1);
    expect(warnings).toEqual(['_redirects line 2 skipped: line is 2,004 characters; the limit is 2,000']);
  });

  it(`keeps ${MAX_REDIRECT_RULES} rules and skips those beyond`, () => {
    const lines = Array.from({ length: MAX_REDIRECT_RULES + 2 }, (_, i) => `/page-${i} /p/${i}`);
    expect(parsed(parseRedirects, lines.slice(0, -2).join('\n'))).toEqual({ rules: expect.any(Array), warnings: [] });
    const { rules, warnings } = parsed(parseRedirects, ['# many', ...lines].join('\n'));
    expect(rules).toHaveLength(MAX_REDIRECT_RULES);
    expect(rules.at(-1)?.from).toBe(`/page-${MAX_REDIRECT_RULES - 1}`);
    expect(warnings).toEqual(['_redirects line 1002 skipped: beyond the first 1,000 rules, the limit', '_redirects line 1003 skipped: beyond the first 1,000 rules, the limit']);
  });

  it(`keeps at most ${MAX_WARNINGS} warnings, the last counting the rest`, () => {
    const { rules, warnings } = parsed(parseRedirects, ['/ok /fine', ...Array.from({ length: 5000 }, (_, i) => `/bad-${i}`)].join('\n'));
    expect(rules).toHaveLength(1);
    expect(warnings).toHaveLength(MAX_WARNINGS);
    expect(warnings[0]).toBe('_redirects line 2 skipped: expected "from to [status]", got only "/bad-0"');
    expect(warnings.at(-1)).toBe('and 4,981 more skipped');
  });

  it('cuts a warning to 300 characters', () => {
    const { warnings } = parsed(parseRedirects, `/a /b ${'9'.repeat(1000)}`);
    expect(warnings[0]).toHaveLength(300);
    expect(warnings[0]).toMatch(/^_redirects line 1 skipped: status 9+…$/);
  });
});

describe('redirect matching', () => {
  it('takes the first matching rule in file order', () => {
    const file = '/blog/special /special 302\n/blog/* /news/:splat\n/blog/special /never 307';
    expect(redirect(file, '/blog/special')).toEqual({ to: '/special', status: 302, force: false });
    expect(redirect(file, '/blog/other')).toEqual({ to: '/news/other', status: 301, force: false });
    expect(redirect(file, '/elsewhere')).toBeNull();
  });

  it('ignores a trailing slash on the path and in the rule', () => {
    expect(redirect('/about /team', '/about/')?.to).toBe('/team');
    expect(redirect('/about/ /team', '/about')?.to).toBe('/team');
    expect(redirect('/ /home', '/')?.to).toBe('/home');
    expect(redirect('/about /team', '/about//')).toBeNull();
  });

  it('matches paths case-sensitively and their characters literally', () => {
    expect(redirect('/About /team', '/about')).toBeNull();
    expect(redirect('/a.b+c(1) /x', '/a.b+c(1)')?.to).toBe('/x');
    expect(redirect('/a.b /x', '/aXb')).toBeNull();
    expect(redirect('/a.b /x', '/a.b/more')).toBeNull();
  });

  it('fills placeholders, which match one whole segment', () => {
    const file = '/news/:year/:month/:slug /blog/:year-:month/:slug.html 302';
    expect(redirect(file, '/news/2024/05/launch')?.to).toBe('/blog/2024-05/launch.html');
    expect(redirect(file, '/news/2024/05/launch/')?.to).toBe('/blog/2024-05/launch.html');
    expect(redirect(file, '/news/2024/05/launch/extra')).toBeNull();
    expect(redirect(file, '/news/2024//launch')).toBeNull();
  });

  it('fills the splat with the rest of the path, empty included', () => {
    const file = '/blog/* /posts/:splat';
    expect(redirect(file, '/blog/2024/05/launch')?.to).toBe('/posts/2024/05/launch');
    expect(redirect(file, '/blog/a/')?.to).toBe('/posts/a/');
    expect(redirect(file, '/blog/')?.to).toBe('/posts/');
    expect(redirect(file, '/blog')?.to).toBe('/posts/');
    expect(redirect(file, '/blogs')).toBeNull();
  });

  it('combines placeholders and a splat', () => {
    expect(redirect('/:lang/docs/* /docs/:splat?lang=:lang 302', '/fr/docs/guide/intro')?.to).toBe('/docs/guide/intro?lang=fr');
  });

  it('serves a single-page app with a catch-all rewrite', () => {
    expect(redirect('/* /index.html 200', '/any/deep/path')).toEqual({ to: '/index.html', status: 200, force: false });
    expect(redirect('/* /index.html 200', '/')?.to).toBe('/index.html');
  });

  it('never turns a path target into a protocol-relative URL', () => {
    expect(redirect('/out/* /:splat 302', '/out//evil.example/x')?.to).toBe('/evil.example/x');
    expect(redirect('/out/* /:splat 302', '/out/\\evil.example')?.to).toBe('/evil.example');
  });
});

describe('_headers syntax', () => {
  it('reads path blocks with set and detached headers', () => {
    const file = '# security\n/*\n  X-Frame-Options: DENY\n  Link: <https://cdn.example>; rel=preconnect\n\n/embed/*\n  ! X-Frame-Options\n\tCache-Control:   public, max-age=60  \n/empty\n';
    expect(parseHeaders(file)).toEqual([
      { path: '/*', set: [['X-Frame-Options', 'DENY'], ['Link', '<https://cdn.example>; rel=preconnect']], detach: [], line: 2 },
      { path: '/embed/*', set: [['Cache-Control', 'public, max-age=60']], detach: ['X-Frame-Options'], line: 6 },
      { path: '/empty', set: [], detach: [], line: 9 },
    ]);
  });
});

describe('_headers lines Slipway cannot honour are skipped, with the line and the reason', () => {
  it('skips a header line before any path line', () => {
    expect(parsed(parseHeaders, '# headers\n  X-A: 1\n/a\n  X-B: 2')).toEqual({
      rules: [{ path: '/a', set: [['X-B', '2']], detach: [], line: 3 }],
      warnings: ['_headers line 2 skipped: header line before any path line'],
    });
  });

  it('tells a header line from a path line by its text, indented or not', () => {
    expect(parseHeaders('/a\nX-A: 1\n  /b\n  X-B: 2')).toEqual([
      { path: '/a', set: [['X-A', '1']], detach: [], line: 1 },
      { path: '/b', set: [['X-B', '2']], detach: [], line: 3 },
    ]);
  });

  it.each([
    ['/a\n  X-A 1', 4, /expected "Name: value" or "! Name"/],
    ['/a\n  Bad Name: 1', 4, /"Bad Name" is not a valid header name/],
    ['/a\n  X-A:   ', 4, /header X-A has an empty value/],
    ['/a\n  X-A: one\u0001two', 4, /control character/],
    ['/a\n  !', 4, /"" is not a valid header name/],
    [`/a\n  X-A: ${'v'.repeat(2000)}`, 4, /line is 2,007 characters; the limit is 2,000/],
  ])('skips the header line in %j, keeping its path rule', (body, line, reason) => {
    const { rules, warnings } = parsed(parseHeaders, `/ok\n  X-Ok: 1\n${body}\n  X-After: 1\n`);
    expect(rules.map((r) => [r.path, r.set])).toEqual([['/ok', [['X-Ok', '1']]], ['/a', [['X-After', '1']]]]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(new RegExp(`^_headers line ${line} skipped: `));
    expect(warnings[0]).toMatch(reason);
  });

  it.each([
    ['https://site.example/*', /names a host; only path patterns/],
    ['/a extra', /a path line holds only the path/],
    ['/a/:1/b', /placeholder ":1"/],
    [`/${'a'.repeat(MAX_PATTERN_CHARS)}`, /the path pattern is 257 characters; the limit is 256/],
  ])('skips the path line %j with the header lines under it, which never join the rule above', (pathLine, reason) => {
    const { rules, warnings } = parsed(parseHeaders, `/ok\n  X-Ok: 1\n${pathLine}\n  X-Skipped: 1\n  X-Skipped-Too: 1\n/next\n  X-Next: 1`);
    expect(rules.map((r) => [r.path, r.set])).toEqual([['/ok', [['X-Ok', '1']]], ['/next', [['X-Next', '1']]]]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^_headers line 3 skipped: /);
    expect(warnings[0]).toMatch(reason);
    expect(warnings[0]).toMatch(/, with the header lines under it$/);
  });

  it.each(['Content-Length', 'content-encoding', 'Content-Range', 'Transfer-Encoding', 'Connection', 'Keep-Alive', 'Upgrade', 'Trailer', 'TE', 'ETag', 'Last-Modified', 'Accept-Ranges', 'Vary', 'Set-Cookie'])(
    'skips setting or detaching %s, which the server owns',
    (name) => {
      expect(parsed(parseHeaders, `/*\n  ${name}: x\n  ! ${name}\n  X-Ok: 1`)).toEqual({
        rules: [{ path: '/*', set: [['X-Ok', '1']], detach: [], line: 1 }],
        warnings: [`_headers line 2 skipped: ${name} is set by the server and cannot be changed by _headers`, `_headers line 3 skipped: ${name} is set by the server and cannot be changed by _headers`],
      });
    },
  );

  it(`keeps ${MAX_HEADER_RULES} path rules and skips those beyond, with their header lines`, () => {
    const blocks = Array.from({ length: MAX_HEADER_RULES + 1 }, (_, i) => `/p${i}\n  X-N: ${i}`);
    expect(parsed(parseHeaders, blocks.slice(0, -1).join('\n')).rules).toHaveLength(MAX_HEADER_RULES);
    const { rules, warnings } = parsed(parseHeaders, blocks.join('\n'));
    expect(rules).toHaveLength(MAX_HEADER_RULES);
    expect(rules.at(-1)?.set).toEqual([['X-N', '99']]);
    expect(warnings).toEqual(['_headers line 201 skipped: beyond the first 100 path rules, the limit, with the header lines under it']);
  });
});

describe('headers for a path', () => {
  it('collects every matching rule in order, names as written', () => {
    const file = '/*\n  X-Frame-Options: DENY\n/docs/*\n  Cache-Control: max-age=60\n/img/*\n  X-Img: 1';
    expect(headers(file, '/docs/a.html')).toEqual([
      ['X-Frame-Options', 'DENY'],
      ['Cache-Control', 'max-age=60'],
    ]);
    expect(headers(file, '/other')).toEqual([['X-Frame-Options', 'DENY']]);
  });

  it('joins a name set by several rules with ", "', () => {
    const file = '/*\n  Link: </a.css>; rel=preload\n/page\n  link: </b.js>; rel=preload\n  Link: </c.js>; rel=preload';
    expect(headers(file, '/page')).toEqual([['Link', '</a.css>; rel=preload, </b.js>; rel=preload, </c.js>; rel=preload']]);
  });

  it('detaches a header set by an earlier rule, and a later rule can set it again', () => {
    const file = '/*\n  X-Frame-Options: DENY\n  X-Robots-Tag: noindex\n/embed/*\n  ! x-frame-options\n/embed/special\n  X-Frame-Options: SAMEORIGIN';
    expect(headers(file, '/embed/widget')).toEqual([['X-Robots-Tag', 'noindex']]);
    expect(headers(file, '/embed/special')).toEqual([
      ['X-Robots-Tag', 'noindex'],
      ['X-Frame-Options', 'SAMEORIGIN'],
    ]);
    expect(headers(file, '/')).toEqual([
      ['X-Frame-Options', 'DENY'],
      ['X-Robots-Tag', 'noindex'],
    ]);
  });

  it('matches a splat anywhere, across slashes', () => {
    const file = '/*.js\n  X-Js: 1\n/assets/*/raw\n  X-Raw: 1';
    expect(headers(file, '/a/b/app.js')).toEqual([['X-Js', '1']]);
    expect(headers(file, '/app.json')).toEqual([]);
    expect(headers(file, '/assets/x/y/raw')).toEqual([['X-Raw', '1']]);
  });

  it('matches placeholders as one segment and a trailing slash either way', () => {
    const file = '/users/:id\n  X-User: 1\n/about/\n  X-About: 1';
    expect(headers(file, '/users/42')).toEqual([['X-User', '1']]);
    expect(headers(file, '/users/42/')).toEqual([['X-User', '1']]);
    expect(headers(file, '/users/42/posts')).toEqual([]);
    expect(headers(file, '/about')).toEqual([['X-About', '1']]);
  });

  it('matches literally and case-sensitively outside splats and placeholders', () => {
    const file = '/a.b?\n  X-A: 1';
    expect(headers(file, '/a.b?')).toEqual([['X-A', '1']]);
    expect(headers(file, '/aXb')).toEqual([]);
    expect(headers(file, '/A.b?')).toEqual([]);
  });
});

describe('rules stored as JSON', () => {
  it('survive JSON.stringify and JSON.parse and still match', () => {
    const redirects = JSON.parse(JSON.stringify(parseRedirects('/news/:year/* /archive/:year/:splat 308!'))) as ReturnType<typeof parseRedirects>;
    expect(matchRedirect(redirects, '/news/2020/a/b')).toEqual({ to: '/archive/2020/a/b', status: 308, force: true });
    const headerRules = JSON.parse(JSON.stringify(parseHeaders('/*\n  X-A: 1\n/x\n  ! X-A\n  X-B: 2'))) as ReturnType<typeof parseHeaders>;
    expect(headersFor(headerRules, '/x')).toEqual([['X-B', '2']]);
    expect(headersFor(headerRules, '/y')).toEqual([['X-A', '1']]);
  });

  it('stay plain data after matching', () => {
    const redirects = parseRedirects('/a/* /b/:splat');
    const headerRules = parseHeaders('/a\n  X-A: 1');
    matchRedirect(redirects, '/a/x');
    headersFor(headerRules, '/a');
    for (const rule of [...redirects, ...headerRules]) expect(JSON.parse(JSON.stringify(rule))).toStrictEqual(rule);
  });
});

describe('matching costs a bounded scan, whatever the rules', () => {
  // Each of these became a backtracking RegExp before: /*a*a*a*a*a*a*a*a*z took more than 10 s on one long path.
  const adversarial = ['/*a*a*a*a*a*a*a*a*z', '/*a*a*a*a*a*a*a*a*a', '/*/*/*/*/*/*/*/*/x', '/*:p/*', '/*/:a/:b/:c/:d/*z', `/*${'a*'.repeat(60)}b`, `/${'*a'.repeat(127)}`];
  // The longest path a site server matches (MAX_SITE_PATH_BYTES; longer ones are answered 414).
  const paths = ['/' + 'a'.repeat(2047), '/' + 'a/'.repeat(1023) + 'b', '/' + 'ab'.repeat(1023) + 'c', '/' + '/'.repeat(2047)];

  it('a _headers file of 100 adversarial rules answers a 2 KB path within 50 ms', () => {
    const rules = parseHeaders(Array.from({ length: MAX_HEADER_RULES }, (_, i) => `${adversarial[i % adversarial.length]}\n  X-N: ${i}`).join('\n'));
    let slowest = 0;
    for (const pathname of paths) {
      const start = performance.now();
      headersFor(rules, pathname);
      slowest = Math.max(slowest, performance.now() - start);
    }
    expect(slowest).toBeLessThan(50);
  });

  it('a _redirects file of 1,000 rules answers a 2 KB path within 50 ms', () => {
    const rules = parseRedirects(Array.from({ length: MAX_REDIRECT_RULES }, (_, i) => `/:a/:b/:c/${'a/'.repeat(60)}x${i}/* /to/:splat`).join('\n'));
    let slowest = 0;
    for (const pathname of paths) {
      const start = performance.now();
      expect(matchRedirect(rules, pathname)).toBeNull();
      slowest = Math.max(slowest, performance.now() - start);
    }
    expect(slowest).toBeLessThan(50);
  });

  it('still matches what the adversarial patterns describe', () => {
    expect(headers('/*a*a*a*a*a*a*a*a*z\n  X-A: 1', `/${'a'.repeat(8)}z`)).toEqual([['X-A', '1']]);
    expect(headers('/*a*a*a*a*a*a*a*a*z\n  X-A: 1', `/${'a'.repeat(7)}z`)).toEqual([]);
    expect(headers('/*/:a/*z\n  X-A: 1', '/x/y/w/z')).toEqual([['X-A', '1']]);
    expect(headers('/*/:a/*z\n  X-A: 1', '/x//z')).toEqual([]);
  });

  it(`skips a path pattern longer than ${MAX_PATTERN_CHARS} characters`, () => {
    expect(parsed(parseRedirects, `/${'a'.repeat(MAX_PATTERN_CHARS)} /b`)).toEqual({ rules: [], warnings: ['_redirects line 1 skipped: the path pattern is 257 characters; the limit is 256'] });
  });
});

describe('_headers cannot weaken what sites always send', () => {
  it.each([
    ['X-Content-Type-Options: off', /X-Content-Type-Options is always nosniff/],
    ['! X-Content-Type-Options', /X-Content-Type-Options is always nosniff/],
    ['Clear-Site-Data: "*"', /Clear-Site-Data cannot be set by a site/],
    ['Location: https://evil.example/', /Location is set by the server for redirects; use _redirects/],
    ['set-cookie: a=b; Domain=localhost', /set-cookie is set by the server/],
  ])('skips %j, with a warning', (line, reason) => {
    const { rules, warnings } = parsed(parseHeaders, `/*\n  ${line}`);
    expect(rules).toEqual([{ path: '/*', set: [], detach: [], line: 1 }]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^_headers line 2 skipped: /);
    expect(warnings[0]).toMatch(reason);
    expect(headersFor(rules, '/page')).toEqual([]);
  });

  it('drops such headers from rules stored before they were refused', () => {
    const stored = [{ path: '/*', set: [['X-Content-Type-Options', 'off'], ['Location', '//evil.example'], ['Clear-Site-Data', '"*"'], ['X-Ok', '1']] as [string, string][], detach: [], line: 1 }];
    expect(headersFor(stored, '/page')).toEqual([['X-Ok', '1']]);
  });
});

import { describe, expect, it } from 'vitest';
import { UnsafePathError } from '@slipway/shared';
import { siteFromHost, siteIdFromHost } from '../src/sites/host';
import { candidateKeys } from '../src/sites/legacy';

describe('site routing', () => {
  it('reads the deployment id from the Host header', () => {
    expect(siteIdFromHost('abcdefghij12.localhost:3000', 'localhost')).toBe('abcdefghij12');
    expect(siteIdFromHost('ABCDEFGHIJ12.Sites.Example.com.', 'sites.example.com')).toBe('abcdefghij12');
    expect(siteIdFromHost('localhost:3000', 'localhost')).toBeNull();
    expect(siteIdFromHost('a.b.localhost', 'localhost')).toBeNull();
    expect(siteIdFromHost('abcdefghij12.evil.com', 'localhost')).toBeNull();
    expect(siteIdFromHost(undefined, 'localhost')).toBeNull();
  });

  it('reads project aliases from the host: production and branch, nothing malformed', () => {
    expect(siteFromHost('shop.localhost:3000', 'localhost')).toEqual({ project: 'shop', branch: null });
    expect(siteFromHost('feature-x-1a2b3c--shop.localhost', 'localhost')).toEqual({ project: 'shop', branch: 'feature-x-1a2b3c' });
    expect(siteFromHost('abcdefghij12.localhost', 'localhost')).toEqual({ deployment: 'abcdefghij12' });
    for (const host of ['a--b--shop.localhost', '--shop.localhost', 'x-.--shop.localhost', 'sh_op.localhost', 'localhost', '127.0.0.1', '[::1]:3000', 'x_y.example.com']) {
      expect(siteFromHost(host, 'localhost'), host).toBeNull();
    }
    // Any other host name may be a project's custom domain: the caller looks it up.
    expect(siteFromHost('WWW.Shop.Example:8080', 'localhost')).toEqual({ domain: 'www.shop.example' });
  });

  it('maps paths to keys with index.html and single-page fallbacks', () => {
    const id = 'dist/abcdefghij12/b1234567';
    expect(candidateKeys(id, '/')).toEqual([`${id}/index.html`]);
    expect(candidateKeys(id, '/docs/')).toEqual([`${id}/docs/index.html`]);
    expect(candidateKeys(id, '/app.js')).toEqual([`${id}/app.js`]);
    expect(candidateKeys(id, '/about')).toEqual([`${id}/about`, `${id}/about/index.html`, `${id}/index.html`]);
    expect(candidateKeys(id, '/a%20b.html')).toEqual([`${id}/a b.html`]);
  });

  it('uses the deployment\'s own SPA fallback page for routes with no file', () => {
    const id = 'dist/abcdefghij12/b1234567';
    expect(candidateKeys(id, '/', '200.html')).toEqual([`${id}/index.html`, `${id}/200.html`]);
    expect(candidateKeys(id, '/app/settings', '200.html')).toEqual([`${id}/app/settings`, `${id}/app/settings/index.html`, `${id}/200.html`]);
    expect(candidateKeys(id, '/missing.js', '200.html')).toEqual([`${id}/missing.js`]);
  });

  it.each(['/../other/index.html', '/%2e%2e/other/index.html', '/a/%2E%2E/%2e%2e/x', '/..%2fx', '/%00', '/%E0%A4%A'])('never leaves dist/<id>/ for %s', (p) => {
    expect(() => candidateKeys('dist/abcdefghij12/b1234567', p)).toThrowError(UnsafePathError);
  });
});

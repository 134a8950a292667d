// Serving deployed sites by host name from their live build, dist/<id>/<build>/ in S3: index and
// single-page fallbacks, content types, 404s, and no way out of the deployment's prefix.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageKeys } from '@slipway/shared';
import { startStack, type Stack } from './harness/stack';

let stack: Stack;
const id = 'sitetest0001';
const other = 'othersite001';
beforeAll(async () => {
  stack = await startStack({ workers: 0 });
  // As a worker leaves them: the files under the build's prefix, and the record pointing at that build.
  for (const site of [id, other]) await stack.redis.hSet(`deployment:${site}`, 'liveBuild', 'build0001');
  await stack.storage.putText(`${storageKeys.build(id, 'build0002')}/index.html`, 'a build that never went live');
  await stack.storage.putText(`${storageKeys.build('nolivebuild1', 'build0001')}/index.html`, 'not live');
  const put = (site: string, rel: string, body: string) => stack.storage.putText(`${storageKeys.build(site, 'build0001')}/${rel}`, body);
  await put(id, 'index.html', 'spa shell');
  await put(id, 'guide/index.html', 'guide index');
  await put(id, 'app.js', 'js');
  await put(id, 'styles/main.css', 'css');
  await put(id, 'a b.txt', 'spaced');
  await put(other, 'index.html', 'other site');
  await put(other, 'secret.txt', 'other secret');
});
afterAll(async () => {
  await stack?.close();
});

describe('site serving', () => {
  it('serves / from index.html and folders from their index.html', async () => {
    expect((await stack.site(id, '/')).body.toString()).toBe('spa shell');
    expect((await stack.site(id, '/guide/')).body.toString()).toBe('guide index');
    expect((await stack.site(id, '/guide')).body.toString()).toBe('guide index');
  });

  it('answers a path with no file and no extension with index.html (single-page apps)', async () => {
    const res = await stack.site(id, '/users/42/settings?tab=1');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.body.toString()).toBe('spa shell');
  });

  it('serves only the live build: a deployment with none is 404', async () => {
    expect((await stack.site('nolivebuild1', '/')).status).toBe(404);
    await stack.redis.hSet('deployment:nolivebuild1', 'liveBuild', '../../x');
    expect((await stack.site('nolivebuild1', '/')).status).toBe(404);
  });

  it('answers 404 for a missing file with an extension', async () => {
    expect((await stack.site(id, '/missing.js')).status).toBe(404);
    expect((await stack.site(id, '/styles/missing.css')).status).toBe(404);
  });

  it('sets content types from the file name and supports HEAD and encoded names', async () => {
    expect((await stack.site(id, '/app.js')).headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect((await stack.site(id, '/styles/main.css')).headers['content-type']).toBe('text/css; charset=utf-8');
    const head = await stack.site(id, '/app.js', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('2');
    expect(head.body.length).toBe(0);
    expect((await stack.site(id, '/a%20b.txt')).body.toString()).toBe('spaced');
  });

  it.each([
    ['/../othersite001/secret.txt', 400],
    ['/%2e%2e/othersite001/secret.txt', 400],
    ['/x/%2E%2E/%2E%2E/othersite001/secret.txt', 400],
    ['/..%2fothersite001%2fsecret.txt', 400],
    ['/%5c..%5cothersite001/secret.txt', 400],
    // Decoded once, this is a file literally named "%2e%2e": no such file.
    ['/%252e%252e/othersite001/secret.txt', 404],
  ])('never serves another deployment for %s (answers %i)', async (p, status) => {
    const res = await stack.site(id, p);
    expect(res.status).toBe(status);
    expect(res.body.toString()).not.toContain('other secret');
  });

  it('answers 404 for a host whose deployment does not exist, and 405 for other methods', async () => {
    expect((await stack.site('nosuchsite00', '/')).status).toBe(404);
    expect((await stack.site(id, '/', 'POST')).status).toBe(405);
  });

  it('serves the web page at / on the bare host', async () => {
    const res = await fetch(`${stack.api}/`);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain('<form id="deploy">');
    // The bundled script (esbuild writes its strings in double quotes) posts the form to /deploy.
    expect(html).toMatch(/["']\/deploy["']/);
    expect(html).toContain('<script>');
  });

  it('leaves the API alone for requests to the bare host', async () => {
    expect((await stack.get('/queue')).body).toEqual({ waiting: 0, processing: 0, delayed: 0, dead: 0, workers: [] });
  });
});

import { describe, expect, it } from 'vitest';
import { checkRepoUrl } from '../src/deploy/url-policy';

const strict = { allowPrivateNetworks: false };
const open = { allowPrivateNetworks: true };

describe('repository URL policy', () => {
  it.each([
    ['file:///etc/passwd', /scheme "file"/],
    ['ssh://git@github.com/a/b.git', /an SSH repoUrl needs a deploy key/],
    ['git@github.com:a/b.git', /an SSH repoUrl needs a deploy key/],
    ['ext::sh -c touch% /tmp/x', /not a URL|scheme/],
    ['git://github.com/a/b.git', /scheme "git"/],
    ['http://github.com/a/b.git', /scheme "http"/],
    ['-uhttps://x', /must not start with "-"/],
    ['https://user:pw@github.com/a/b.git', /credentials/],
    ['https://127.0.0.1/a.git', /loopback/],
    ['https://2130706433/a.git', /loopback/],
    ['https://0x7f.1/a.git', /loopback/],
    ['https://10.0.0.5/a.git', /private/],
    ['https://192.168.1.1/a.git', /private/],
    ['https://169.254.169.254/latest/meta-data', /linkLocal/],
    ['https://[::1]/a.git', /loopback/],
    ['https://[::ffff:127.0.0.1]/a.git', /only public hosts/],
    ['https://[fd00::1]/a.git', /uniqueLocal/],
    ['https://localhost/a.git', /loopback/],
    ['not a url', /not a URL/],
  ])('refuses %s', async (url, message) => {
    await expect(checkRepoUrl(url, strict)).rejects.toMatchObject({ code: 'INVALID_URL', message: expect.stringMatching(message) });
  });

  it('accepts a public https URL given as an address and pins nothing for it', async () => {
    await expect(checkRepoUrl('https://140.82.112.3/owner/site.git', strict)).resolves.toMatchObject({ host: '140.82.112.3', port: 443, address: undefined });
  });

  it.each([
    ['ssh://git:pw@github.com/a/b.git', /must not contain a password/],
    ['ssh://-oProxyCommand=touch%20x@github.com/a/b.git', /repoUrl user/],
    ['ssh://git@-oProxyCommand=x/a.git', /not a URL|no host|not a valid host/],
    ['ssh://git@github.com/a b.git', /path is letters/],
    ['ssh://git@github.com/a.git?x=1', /query string/],
    ['ssh://git@127.0.0.1/a.git', /loopback/],
    ['git@10.0.0.5:a/b.git', /private/],
    ['git@localhost:a/b.git', /loopback/],
  ])('with a deploy key, still refuses %s', async (url, message) => {
    await expect(checkRepoUrl(url, strict, { ssh: true })).rejects.toMatchObject({ code: 'INVALID_URL', message: expect.stringMatching(message) });
  });

  it('with a deploy key, takes ssh:// and git@host:path URLs under the host rules, as given', async () => {
    await expect(checkRepoUrl('ssh://git@140.82.112.3:2222/owner/site.git', strict, { ssh: true })).resolves.toEqual({ url: 'ssh://git@140.82.112.3:2222/owner/site.git', transport: 'ssh', user: 'git', host: '140.82.112.3', port: 2222, address: undefined });
    await expect(checkRepoUrl('git@140.82.112.3:owner/site.git', strict, { ssh: true })).resolves.toMatchObject({ url: 'git@140.82.112.3:owner/site.git', transport: 'ssh', user: 'git', port: 22 });
    await expect(checkRepoUrl('git@140.82.112.3:owner/site.git', { allowPrivateNetworks: false, allowedHosts: ['github.com'] }, { ssh: true })).rejects.toThrow(/GIT_ALLOWED_HOSTS/);
  });

  it('lets ALLOW_PRIVATE_NETWORKS=1 clone over http from loopback', async () => {
    await expect(checkRepoUrl('http://127.0.0.1:8080/a.git', open)).resolves.toMatchObject({ host: '127.0.0.1', port: 8080 });
    await expect(checkRepoUrl('http://localhost:8080/a.git', open)).resolves.toMatchObject({ host: 'localhost', address: expect.any(String) });
  });
});

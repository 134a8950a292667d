// The egress proxy's rule for where a build may connect: public addresses on ports 80 and 443,
// narrowed by BUILD_EGRESS_ALLOW, widened for named hosts by BUILD_EGRESS_PRIVATE_HOSTS — never to
// the host itself or to cloud metadata.
import { describe, expect, it } from 'vitest';
import { resolveTarget } from '../src/egress';

const open = { privateHosts: undefined, allowHosts: undefined };

describe('egress policy', () => {
  it('lets a build reach public addresses on 80 and 443 only', async () => {
    expect(await resolveTarget('93.184.215.14', 443, open)).toBe('93.184.215.14');
    await expect(resolveTarget('93.184.215.14', 22, open)).rejects.toThrow(/port 22 is not allowed/);
    await expect(resolveTarget('93.184.215.14', 6379, open)).rejects.toThrow(/port 6379/);
  });

  it.each([
    ['127.0.0.1', /loopback/],
    ['localhost', /loopback/],
    ['169.254.169.254', /linkLocal/],
    ['10.0.0.5', /private/],
    ['192.168.1.1', /private/],
    ['100.64.0.1', /carrierGradeNat/],
    ['::1', /loopback/],
    ['fd00::1', /uniqueLocal/],
    ['::ffff:127.0.0.1', /loopback/],
  ])('refuses %s', async (host, reason) => {
    await expect(resolveTarget(host, 443, open)).rejects.toThrow(reason);
  });

  it('narrows to BUILD_EGRESS_ALLOW hosts and their subdomains', async () => {
    const policy = { privateHosts: undefined, allowHosts: ['example.com'] };
    await expect(resolveTarget('evil.test', 443, policy)).rejects.toThrow(/not in BUILD_EGRESS_ALLOW/);
    await expect(resolveTarget('notexample.com', 443, policy)).rejects.toThrow(/not in BUILD_EGRESS_ALLOW/);
    // A listed subdomain passes the list (whether it then resolves depends on the network).
    const outcome = await resolveTarget('cdn.example.com', 443, policy).then(() => 'reachable', (err: Error) => err.message);
    expect(outcome).not.toMatch(/BUILD_EGRESS_ALLOW/);
  });

  it('trusts BUILD_EGRESS_PRIVATE_HOSTS with private addresses, but never with loopback or metadata', async () => {
    expect(await resolveTarget('10.0.0.5', 443, { privateHosts: ['10.0.0.5'], allowHosts: undefined })).toBe('10.0.0.5');
    await expect(resolveTarget('127.0.0.1', 443, { privateHosts: ['127.0.0.1'], allowHosts: undefined })).rejects.toThrow(/loopback/);
    await expect(resolveTarget('169.254.169.254', 80, { privateHosts: ['169.254.169.254'], allowHosts: undefined })).rejects.toThrow(/linkLocal/);
  });
});

// Where deliveries (commit statuses, comments) may go: the URL rules, and when a forge is asked again.
import { describe, expect, it } from 'vitest';
import { checkDeliveryUrl, retryAfter } from '../src/notify/http';

describe('checkDeliveryUrl', () => {
  it.each([
    ['http://api.example.com', /https/],
    ['https://user:pw@api.example.com', /credentials/],
    ['https://127.0.0.1/api', /loopback/],
    ['https://10.0.0.8/api', /private/],
    ['https://169.254.169.254/latest', /linkLocal/],
    ['https://[::1]/api', /loopback/],
    ['https://localhost/api', /this machine/],
    ['not a url', /not a URL/],
  ])('refuses %s', (url, message) => {
    expect(() => checkDeliveryUrl(url, false, 'forge.apiUrl')).toThrow(message);
  });
  it('takes a public https URL, and a loopback http one only with private networks allowed', () => {
    expect(checkDeliveryUrl('https://api.github.com', false, 'x').host).toBe('api.github.com');
    expect(checkDeliveryUrl('http://127.0.0.1:8080/api/v4', true, 'x').port).toBe('8080');
  });
});

describe('retryAfter', () => {
  const answer = (status: number, headers: Record<string, string> = {}) => ({ status, headers, body: '' });
  it('asks again after 5xx, 408 and 429, never after another 4xx', () => {
    expect(retryAfter(answer(502), 100)).toBe(100);
    expect(retryAfter(answer(408), 100)).toBe(100);
    expect(retryAfter(answer(429), 100)).toBe(100);
    expect(retryAfter(answer(401), 100)).toBeNull();
    expect(retryAfter(answer(404), 100)).toBeNull();
    expect(retryAfter(answer(422), 100)).toBeNull();
  });
  it("waits as long as the forge says, at most an hour", () => {
    expect(retryAfter(answer(429, { 'retry-after': '30' }), 100)).toBe(30_000);
    expect(retryAfter(answer(503, { 'retry-after': '999999' }), 100)).toBe(3_600_000);
    const now = 1_000_000_000_000;
    expect(retryAfter(answer(403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now / 1000 + 60) }), 100, now)).toBe(60_000);
    expect(retryAfter(answer(403, { 'x-ratelimit-remaining': '12' }), 100, now)).toBeNull();
  });
});

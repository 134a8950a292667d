// Sealing secrets at rest: what is sealed opens only with its key and only for its place, altered
// text is refused, the previous key opens during a rotation but never seals, and a bad key is a
// configuration error that does not print the key.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, Secrets, loadConfig, parseSecretsKey, sealedKeyId } from '../src';

const key = () => parseSecretsKey(randomBytes(32).toString('base64'), 'SECRETS_KEY');

describe('sealed secrets', () => {
  it('opens what it sealed, for the same place only, and never shows the value', () => {
    const secrets = new Secrets(key());
    const sealed = secrets.seal('ghp_s3cret-token', 'project:site:gitToken');
    expect(sealed).toMatch(/^sealed:v1:[0-9a-f]{12}:[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain('s3cret');
    expect(secrets.seal('ghp_s3cret-token', 'project:site:gitToken')).not.toBe(sealed); // a fresh nonce each time
    expect(secrets.open(sealed, 'project:site:gitToken')).toBe('ghp_s3cret-token');
    expect(() => secrets.open(sealed, 'project:other:gitToken')).toThrow(/does not open under key .*sealed for another place/);
  });

  it('refuses altered text and values of other keys', () => {
    const secrets = new Secrets(key());
    const sealed = secrets.seal('value', 'p');
    const body = sealed.slice(sealed.lastIndexOf(':') + 1);
    const flipped = Buffer.from(body, 'base64url');
    flipped[14]! ^= 1;
    expect(() => secrets.open(sealed.replace(body, flipped.toString('base64url')), 'p')).toThrow(/altered/);
    const other = new Secrets(key()).seal('value', 'p');
    expect(() => secrets.open(other, 'p')).toThrow(`p is sealed under key ${sealedKeyId(other)}, which is neither SECRETS_KEY nor SECRETS_KEY_PREVIOUS here`);
    expect(() => secrets.open('plain', 'p')).toThrow(/holds no sealed value/);
  });

  it('during a rotation, opens what the previous key sealed and seals under the new one', () => {
    const old = key();
    const sealedBefore = new Secrets(old).seal('value', 'p');
    const rotating = new Secrets(key(), old);
    expect(rotating.open(sealedBefore, 'p')).toBe('value');
    expect(rotating.isCurrent(sealedBefore)).toBe(false);
    const again = rotating.seal('value', 'p');
    expect(rotating.isCurrent(again)).toBe(true);
    expect(new Secrets(rotating.current).open(again, 'p')).toBe('value');
  });

  it('without SECRETS_KEY seals nothing, and says how to get one', () => {
    expect(() => new Secrets(null).seal('v', 'p')).toThrow(/cannot be stored: SECRETS_KEY is not set on this server/);
  });

  it('takes 32 bytes as hex or base64; anything else is a configuration error that hides the value', () => {
    const bytes = randomBytes(32);
    expect(parseSecretsKey(bytes.toString('hex'), 'SECRETS_KEY').id).toBe(parseSecretsKey(bytes.toString('base64'), 'SECRETS_KEY').id);
    expect(parseSecretsKey(bytes.toString('base64url'), 'SECRETS_KEY').bytes.equals(bytes)).toBe(true);
    for (const bad of ['short', 'a'.repeat(63), randomBytes(16).toString('base64'), randomBytes(33).toString('hex')]) {
      expect(() => parseSecretsKey(bad, 'SECRETS_KEY')).toThrow(ConfigError);
    }
    expect(() => loadConfig({ SECRETS_KEY: 'not-a-key-but-a-secret' })).toThrow(/SECRETS_KEY=\(hidden\): must be 32 random bytes/);
    expect(() => loadConfig({ SECRETS_KEY: 'not-a-key-but-a-secret' })).not.toThrow(/not-a-key/);
    expect(() => loadConfig({ SECRETS_KEY_PREVIOUS: bytes.toString('hex') })).toThrow(/only read during a rotation/);
  });
});

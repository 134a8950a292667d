// Secrets at rest: git credentials and env values are sealed with AES-256-GCM (authenticated, a
// fresh 96-bit nonce each time) under SECRETS_KEY before they reach Redis, and opened only where
// they are used (the API to clone and to copy a project's env into a deployment, the worker to give
// a build its env). The sealed text names its key by a short hash, so SECRETS_KEY_PREVIOUS can
// still open what the previous key sealed while everything is sealed again (rotation, keys.ts).
// What was sealed for one place cannot be moved to another: the place (`project:<name>:env`) is the
// cipher's additional data, so opening it anywhere else fails.
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { ConfigError, UnavailableError } from '../errors';

const PREFIX = 'sealed:v1:';
const SEALED = /^sealed:v1:([0-9a-f]{12}):([A-Za-z0-9_-]{38,})$/;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export interface SecretsKey {
  /** The first 12 hex digits of the key's SHA-256: names it, tells nothing of it. */
  readonly id: string;
  readonly bytes: Buffer;
}

/** A sealed value that cannot be opened: no key for it, or it was altered or moved. */
export class SealedValueError extends UnavailableError {}

/** SECRETS_KEY's text (32 random bytes as 64 hex digits or base64) as a key; ConfigError naming the setting otherwise. */
export function parseSecretsKey(text: string, setting: string): SecretsKey {
  const t = text.trim();
  const bytes = /^[0-9a-f]{64}$/i.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/_-]{43}=?$/.test(t) ? Buffer.from(t, 'base64') : Buffer.alloc(0);
  if (bytes.length !== 32) throw new ConfigError(`invalid configuration: ${setting}=(hidden): must be 32 random bytes as 64 hex digits or base64 (openssl rand -base64 32)`);
  return Object.freeze({ id: createHash('sha256').update(bytes).digest('hex').slice(0, 12), bytes });
}

export function isSealed(value: string): boolean {
  return value.startsWith(PREFIX);
}

/** The id of the key `value` was sealed under, or null when it is not a sealed value. */
export function sealedKeyId(value: string): string | null {
  return SEALED.exec(value)?.[1] ?? null;
}

export class Secrets {
  constructor(
    /** SECRETS_KEY: seals, and opens. Null: nothing can be sealed (or opened) on this process. */
    readonly current: SecretsKey | null,
    /** SECRETS_KEY_PREVIOUS: only opens, while what it sealed is sealed again under the current key. */
    readonly previous: SecretsKey | null = null,
  ) {}

  get enabled(): boolean {
    return this.current !== null;
  }

  /** Whether `value` is sealed under the current key (nothing left to do for rotation). */
  isCurrent(value: string): boolean {
    return this.current !== null && sealedKeyId(value) === this.current.id;
  }

  /** Throws SealedValueError (503) when nothing can be sealed here: before work that would end in a seal. */
  ensureEnabled(): void {
    if (!this.current) throw new SealedValueError('secrets (env values, git credentials) cannot be stored: SECRETS_KEY is not set on this server (npm start makes one; compose and Kubernetes take it from their secrets)');
  }

  /**
   * Keys for signing what is not sealed (preview cookies, share links), derived from SECRETS_KEY for
   * `purpose` (HKDF-SHA256): the current key's first, to sign with; SECRETS_KEY_PREVIOUS's after it,
   * so what was signed before a rotation still checks. Empty when no key is set.
   */
  signingKeys(purpose: string): Buffer[] {
    return [this.current, this.previous].filter((k): k is SecretsKey => k !== null).map((k) => Buffer.from(hkdfSync('sha256', k.bytes, Buffer.alloc(0), `slipway:${purpose}`, 32)));
  }

  seal(plain: string, place: string): string {
    this.ensureEnabled();
    const key = this.current!;
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.bytes, nonce);
    cipher.setAAD(Buffer.from(place));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `${PREFIX}${key.id}:${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url')}`;
  }

  open(sealed: string, place: string): string {
    const match = SEALED.exec(sealed);
    if (!match) throw new SealedValueError(`${place} holds no sealed value`);
    const key = [this.current, this.previous].find((k) => k?.id === match[1]);
    if (!key) throw new SealedValueError(`${place} is sealed under key ${match[1]}, which is neither SECRETS_KEY nor SECRETS_KEY_PREVIOUS here`);
    const raw = Buffer.from(match[2]!, 'base64url');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.bytes, raw.subarray(0, NONCE_BYTES));
      decipher.setAAD(Buffer.from(place));
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
      return Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new SealedValueError(`${place} does not open under key ${key.id}: it was altered, or sealed for another place`);
    }
  }
}

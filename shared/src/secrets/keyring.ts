// Which keys sealed what Redis holds, and rotation.
//   secrets:keys   set: the id of every key that may have sealed a value here. A service with a
//                  SECRETS_KEY adds its id when it starts, before it seals anything.
// A service whose keys do not cover that set stops at start with a message naming the key ids,
// rather than failing later on the first value it opens. Rotation: start the API with the new key
// as SECRETS_KEY and the old one as SECRETS_KEY_PREVIOUS; it seals again, under the new key, every
// value another key sealed (and env values stored plain before sealing existed), then drops the
// old id from the set, so the previous key can go at the next start.
import { ConfigError } from '../errors';
import { DEPLOYMENTS_KEY, PROJECTS_KEY, SECRETS_KEYS_KEY, projectKey, recordKey } from '../keys';
import type { Redis } from '../io/redis';
import type { Logger } from '../logger';
import type { Secrets } from './seal';

/** The hash fields that hold sealed values, by the kind of record. */
export const SEALED_FIELDS = { project: ['sealedEnv', 'gitToken', 'deployKey', 'forgeToken', 'sealedNotifications', 'previewPassword'], deployment: ['sealedEnv'] } as const;

/** The place a field's value is sealed for (the cipher's additional data): its Redis key and field. */
export const sealedPlace = (redisKey: string, field: string) => `${redisKey}:${field}`;

/** Throws ConfigError when Redis holds values sealed under a key this process does not have; else records its key. */
export async function checkSecretsKeys(redis: Redis, secrets: Secrets): Promise<void> {
  const ids = await redis.sMembers(SECRETS_KEYS_KEY);
  const have = [secrets.current?.id, secrets.previous?.id].filter((id): id is string => id !== undefined);
  const missing = ids.filter((id) => !have.includes(id)).sort();
  if (missing.length > 0) {
    const which = `Redis holds values sealed under key ${missing.join(' and ')}`;
    throw new ConfigError(
      secrets.enabled
        ? `${which}, which is neither SECRETS_KEY (${secrets.current!.id}) nor SECRETS_KEY_PREVIOUS: start with the key that sealed them, as SECRETS_KEY, or as SECRETS_KEY_PREVIOUS beside a new SECRETS_KEY to rotate`
        : `${which}, and SECRETS_KEY is not set: start with SECRETS_KEY set to that key (npm start keeps it in .slipway/secrets-key)`,
    );
  }
  if (secrets.current) await redis.sAdd(SECRETS_KEYS_KEY, secrets.current.id);
}

// The field still holds what was read: then it takes the value sealed anew (a change made meanwhile wins).
const SWAP = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1`;
// A plain env (stored before sealing existed) becomes sealedEnv and the names beside it, if it is still the same.
const SEAL_PLAIN = `
if redis.call('HGET', KEYS[1], 'env') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'sealedEnv', ARGV[2], ARGV[3], ARGV[4])
redis.call('HDEL', KEYS[1], 'env')
return 1`;

type Plain = Record<string, string>;
/** What a plain env becomes, by the kind of record: the document sealed, and the field naming what is in it. */
const FROM_PLAIN = {
  // A project's one env was every branch's: both environments get it (projects/secrets.ts).
  project: (env: Plain, now: string) => ({
    document: { production: env, preview: env, branches: {} },
    names: ['envMeta', Object.keys(env).sort().flatMap((name) => ['production', 'preview'].map((target) => ({ name, target, updatedAt: now, by: 'before sealing' })))],
  }),
  deployment: (env: Plain) => ({ document: env, names: ['envNames', Object.keys(env).sort()] }),
} as const;

export interface ResealResult {
  /** Values sealed again under the current key. */
  resealed: number;
  /** Plain env values (from before sealing) sealed. */
  sealedPlain: number;
}

/**
 * Seals again, under SECRETS_KEY, whatever another key sealed, and seals plain env values; then
 * leaves only the current key in the set. Safe to run twice, and beside the services' own writes.
 */
export async function resealAll(redis: Redis, secrets: Secrets): Promise<ResealResult> {
  const result: ResealResult = { resealed: 0, sealedPlain: 0 };
  if (!secrets.current) return result;
  const visit = async (key: string, fields: readonly string[], kind: keyof typeof FROM_PLAIN) => {
    const hash = await redis.hGetAll(key);
    for (const field of fields) {
      const value = hash[field];
      if (value === undefined || secrets.isCurrent(value)) continue;
      const place = sealedPlace(key, field);
      const again = secrets.seal(secrets.open(value, place), place);
      result.resealed += Number(await redis.eval(SWAP, { keys: [key], arguments: [field, value, again] }));
    }
    if (hash.env !== undefined) {
      const { document, names } = FROM_PLAIN[kind](JSON.parse(hash.env) as Plain, new Date().toISOString());
      const sealed = secrets.seal(JSON.stringify(document), sealedPlace(key, 'sealedEnv'));
      result.sealedPlain += Number(await redis.eval(SEAL_PLAIN, { keys: [key], arguments: [hash.env, sealed, names[0] as string, JSON.stringify(names[1])] }));
    }
  };
  for (const [set, keyOf, kind] of [
    [PROJECTS_KEY, projectKey, 'project'],
    [DEPLOYMENTS_KEY, recordKey, 'deployment'],
  ] as const) {
    for await (const members of redis.zScanIterator(set, { COUNT: 200 })) {
      for (const member of members as unknown as ({ value: string } | string)[]) await visit(keyOf(typeof member === 'string' ? member : member.value), SEALED_FIELDS[kind], kind);
    }
  }
  const ids = await redis.sMembers(SECRETS_KEYS_KEY);
  const old = ids.filter((id) => id !== secrets.current!.id);
  if (old.length > 0) await redis.sRem(SECRETS_KEYS_KEY, old);
  return result;
}

/** The API's start: the keys checked (ConfigError when they do not cover what Redis holds), then a rotation's re-sealing. */
export async function prepareSecrets(redis: Redis, secrets: Secrets, logger: Logger): Promise<void> {
  await checkSecretsKeys(redis, secrets);
  if (!secrets.enabled) return;
  const { resealed, sealedPlain } = await resealAll(redis, secrets);
  if (resealed + sealedPlain > 0) logger.info({ resealed, sealedPlain, key: secrets.current!.id }, 'sealed again under SECRETS_KEY');
}

// The queue's Lua scripts: scripts/<transition>.lua, one per transition, each opening with the KEYS
// and ARGV it takes and every value it returns. Read once when this module loads, each with
// scripts/helpers.lua in front, and run by SHA (EVALSHA, with EVAL when the server has not seen it:
// its first use, or a restarted Redis).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis } from '../io/redis';
import { EVENTS_KEY } from '../keys';

export const SCRIPT_NAMES = ['enqueue', 'keep-uploading', 'start', 'settle', 'release', 'retry', 'bury', 'promote', 'recover', 'cancel', 'redeploy', 'trim-dead', 'restore', 'skip'] as const;
export type ScriptName = (typeof SCRIPT_NAMES)[number];

const read = (name: string) => readFileSync(new URL(`./scripts/${name}.lua`, import.meta.url), 'utf8');
const HELPERS = read('helpers');
const bodies = Object.fromEntries(SCRIPT_NAMES.map((name) => [name, read(name)])) as Record<ScriptName, string>;
const sources = Object.fromEntries(SCRIPT_NAMES.map((name) => [name, HELPERS + bodies[name]])) as Record<ScriptName, string>;
const shas = Object.fromEntries(SCRIPT_NAMES.map((name) => [name, createHash('sha1').update(sources[name]).digest('hex')])) as Record<ScriptName, string>;

/** Each script's text by its constant's name, and the helpers (LUA_HELPERS): what a script runs is LUA_HELPERS + its text. */
export const QUEUE_SCRIPTS: Readonly<Record<string, string>> = Object.freeze({
  ...Object.fromEntries(SCRIPT_NAMES.map((name) => [`${name.toUpperCase().replace(/-/g, '_')}_SCRIPT`, bodies[name]])),
  LUA_HELPERS: HELPERS,
});

/** Runs one script; its reply as Redis gives it (the callers type it). The events stream goes last (helpers.lua: EVENTS). */
export async function runScript(redis: Redis, name: ScriptName, given: string[], args: string[]): Promise<unknown> {
  const keys = [...given, EVENTS_KEY];
  try {
    return await redis.evalSha(shas[name], { keys, arguments: args });
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return redis.eval(sources[name], { keys, arguments: args });
  }
}

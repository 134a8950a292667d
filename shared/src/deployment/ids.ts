// Deployment ids: short, random, lowercase letters and digits, so an id is a valid host name label.
import { randomInt } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
export const ID_LENGTH = 12;
// Starts with a letter so the label never looks like a number to a resolver.
export const ID_PATTERN = /^[a-z][a-z0-9]{9,31}$/;

export function newDeploymentId(): string {
  let id = ALPHABET[randomInt(26)]!;
  while (id.length < ID_LENGTH) id += ALPHABET[randomInt(ALPHABET.length)]!;
  return id;
}

export function isDeploymentId(value: string): boolean {
  return ID_PATTERN.test(value);
}

/** A build's id: one per build attempt, naming the folder its output is published under. */
export const BUILD_ID_PATTERN = /^[a-z0-9]{8,32}$/;

export function newBuildId(): string {
  let id = '';
  while (id.length < 10) id += ALPHABET[randomInt(ALPHABET.length)]!;
  return id;
}

// An app's package.json as the worker reads it: the one type for it, and its reading (a regular file,
// never a link, at most 1 MB; a file that is not a JSON object fails the build, saying so).
import path from 'node:path';
import { BuildFailedError, readSmallFile } from '@slipway/shared';

/** The fields detection reads; the rest of the file is left alone. */
export interface PackageJson {
  scripts?: Record<string, unknown>;
  dependencies?: Record<string, unknown>;
  devDependencies?: Record<string, unknown>;
}

/** The app's package.json, or null when it has none. */
export async function readPackageJson(appDir: string): Promise<PackageJson | null> {
  const text = await readSmallFile(path.join(appDir, 'package.json'));
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as PackageJson;
  } catch (err) {
    throw new BuildFailedError(`package.json is not a valid JSON object (${err instanceof Error ? err.message : String(err)})`);
  }
}

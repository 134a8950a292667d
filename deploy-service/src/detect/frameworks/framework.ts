// What a framework preset is: the data each framework file gives (the packages that signal it, the
// frameworks it builds on, its script and its default folders) and the view of the app its config
// reader gets. Precedence is stated here, never implied by the order of a list.
import path from 'node:path';
import { readSmallFile } from '@slipway/shared';
import { folder, type Value } from './static-config';

/**
 * When two frameworks match and neither excludes the other, the higher kind wins: a site generator or
 * meta-framework over a UI library over a bundler or task runner. A tie goes to the id, alphabetically.
 */
export const KIND_RANK = { framework: 3, library: 2, bundler: 1 } as const;

/** A folder the site may land in, relative to the app folder, and why Slipway looks there. */
export interface OutputFolder {
  dir: string;
  why: string;
}

/** The app as a config reader sees it: its files (small, regular, never followed links) and its build script. */
export interface AppFiles {
  dir: string;
  deps: Readonly<Record<string, unknown>>;
  /** The text of the package.json script the build runs ('' when it has none). */
  script: string;
  /** A small text file of the app folder, or null. */
  read(rel: string): Promise<string | null>;
  /** The first of `names` the app has, with its text. */
  first(names: readonly string[]): Promise<{ name: string; text: string } | null>;
}

export interface Framework {
  /** Stable id, the one `excludes` names. */
  id: string;
  /** For the log. */
  name: string;
  kind: keyof typeof KIND_RANK;
  /** Any of these among the dependencies signals it… */
  packages: readonly string[];
  /** …together with all of these (Solid with Vite). */
  with?: readonly string[];
  /** Frameworks it builds on: when both match, this one is chosen (VitePress excludes Vite). */
  excludes?: readonly string[];
  /** Scripts that build the static site, the first the app has wins (default `build`). */
  scripts?: readonly string[];
  /** With none of them: a command of the framework's own, run through the package manager. */
  bin?: readonly string[] | ((app: AppFiles) => Promise<readonly string[]>);
  /** Whether the app really builds with it, beyond the packages (gulp: a build script or a gulpfile). */
  applies?(app: AppFiles, scripts: Readonly<Record<string, unknown>>): Promise<boolean>;
  /** The folders to look in, preferred first: read from the framework's config where it can be, then its default. */
  outputs(app: AppFiles): Promise<OutputFolder[]>;
}

/** The app folder as AppFiles: config files are read bounded (256 kB) and only when they are regular files. */
export function appFiles(dir: string, deps: Readonly<Record<string, unknown>>, script: string): AppFiles {
  const read = (rel: string) => readSmallFile(path.join(dir, rel), 256 * 1024);
  return {
    dir,
    deps,
    script,
    read,
    first: async (names) => {
      for (const name of names) {
        const text = await read(name);
        if (text !== null) return { name, text };
      }
      return null;
    },
  };
}

/** Default folders, each said to be the framework's default. */
export const defaults = (name: string, dirs: readonly string[], note = ''): OutputFolder[] => dirs.map((dir) => ({ dir, why: `${name}'s default${note}` }));

/** A framework whose folder is fixed: nothing to read. */
export const fixed =
  (name: string, ...dirs: string[]) =>
  async (): Promise<OutputFolder[]> =>
    defaults(name, dirs);

/** `file.js`, `file.mjs`… for each extension. */
export const withExtensions = (base: string, exts: readonly string[]) => exts.map((ext) => `${base}.${ext}`);

/**
 * The folder a config value names (relative to `base`), ahead of the defaults; the defaults alone, saying
 * why, when the value is missing or is not a plain folder name.
 */
export function configured(value: Value | undefined, key: string, file: string, base: string, name: string, dirs: readonly string[]): OutputFolder[] {
  if (value === undefined) return defaults(name, dirs, `; no ${key} in ${file}`);
  const dir = value.kind === 'string' ? folder(value.value, base) : null;
  if (dir === null) return defaults(name, dirs, `; ${key} in ${file} is not a plain folder name`);
  return [{ dir, why: `${key} in ${file}` }, ...defaults(name, dirs)];
}

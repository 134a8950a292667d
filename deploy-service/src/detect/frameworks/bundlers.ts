// Bundlers and task runners an app may build with directly: the lowest kind, chosen only when no
// framework or UI library matches (framework.ts KIND_RANK).
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { defaults, fixed, type Framework, type OutputFolder } from './framework';
import { commandArgs, folder, optionValue } from './static-config';

const GULPFILES = ['gulpfile.js', 'gulpfile.mjs', 'gulpfile.cjs', 'gulpfile.ts', 'gulpfile.babel.js'];

export const wmr: Framework = { id: 'wmr', name: 'WMR', kind: 'bundler', packages: ['wmr'], outputs: fixed('WMR', 'dist') };

export const webpack: Framework = { id: 'webpack', name: 'webpack', kind: 'bundler', packages: ['webpack', 'webpack-cli'], outputs: fixed('webpack', 'dist', 'build') };

export const parcel: Framework = {
  id: 'parcel',
  name: 'Parcel',
  kind: 'bundler',
  packages: ['parcel', 'parcel-bundler'],
  async outputs(app): Promise<OutputFolder[]> {
    const cli = optionValue(commandArgs(app.script, /\bparcel\s+build\b/) ?? [], ['--dist-dir', '-d', '--out-dir']);
    const dir = cli === null ? null : folder(cli);
    return dir ? [{ dir, why: '--dist-dir in the build script' }, ...defaults('Parcel', ['dist'])] : defaults('Parcel', ['dist']);
  },
};

export const gulp: Framework = {
  id: 'gulp',
  name: 'gulp',
  kind: 'bundler',
  packages: ['gulp'],
  bin: ['gulp', 'build'],
  // gulp among the dependencies builds the site only with a build script or a gulpfile.
  applies: async (app, scripts) => {
    if (typeof scripts.build === 'string') return true;
    for (const name of GULPFILES) if ((await lstat(path.join(app.dir, name)).catch(() => null))?.isFile()) return true;
    return false;
  },
  outputs: fixed('gulp', 'dist', 'build', 'public'),
};

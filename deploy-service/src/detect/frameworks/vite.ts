// Vite: the site lands in build.outDir (dist/ by default), relative to root, read from vite.config.*
// or the build script's `vite build [root] --outDir`.
import path from 'node:path';
import { configured, defaults, withExtensions, type Framework, type OutputFolder } from './framework';
import { commandArgs, exportedObject, folder, lookup, optionValue, positional, withoutComments } from './static-config';

const CONFIGS = withExtensions('vite.config', ['ts', 'js', 'mjs', 'mts', 'cjs', 'cts']);
const VALUED = ['--outDir', '--base', '--mode', '-m', '--config', '-c', '--assetsDir', '--target', '--logLevel', '-l', '--filter', '-f'];

export const vite: Framework = {
  id: 'vite',
  name: 'Vite',
  kind: 'bundler',
  packages: ['vite'],
  async outputs(app): Promise<OutputFolder[]> {
    const args = commandArgs(app.script, /\bvite\s+build\b/) ?? [];
    const config = await app.first(CONFIGS);
    const object = config ? exportedObject(withoutComments(config.text)) : null;
    // The script's root argument, else the config's; outDir (either's) is relative to it.
    const cliRoot = positional(args, VALUED);
    const root = cliRoot !== null ? { kind: 'string' as const, value: cliRoot } : lookup(object, 'root');
    if (root !== undefined && root.kind !== 'string') return defaults('Vite', ['dist'], `; root in ${config!.name} is not a plain folder name`);
    const base = root === undefined ? '.' : (folder(root.value) ?? '.');
    const dflt = [path.posix.join(base, 'dist')];
    const cli = optionValue(args, ['--outDir']);
    const fromCli = cli === null ? null : folder(cli, base);
    if (fromCli) return [{ dir: fromCli, why: '--outDir in the build script' }, ...defaults('Vite', dflt)];
    if (!config) return defaults('Vite', dflt);
    return configured(lookup(object, 'build', 'outDir'), 'build.outDir', config.name, base, 'Vite', dflt);
  },
};

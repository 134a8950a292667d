// VitePress: a docs site built on Vite. Its project root is the folder `vitepress build <root>` names
// (docs/ in the usual layout); the site lands in <root>/.vitepress/dist unless the root's
// .vitepress/config.* sets outDir (relative to the root) or the script passes --outDir.
import path from 'node:path';
import { configured, defaults, withExtensions, type AppFiles, type Framework, type OutputFolder } from './framework';
import { commandArgs, exportedObject, folder, lookup, optionValue, positional, withoutComments } from './static-config';

const COMMAND = /\bvitepress\s+build\b/;
const VALUED = ['--outDir', '--base', '--target', '--mode', '-m', '--assetsInlineLimit'];
const configs = (root: string) => withExtensions(path.posix.join(root, '.vitepress/config'), ['js', 'ts', 'mjs', 'mts', 'cjs', 'cts']);

/** The project root: the script's argument, else docs/ when it holds a .vitepress config, else the app folder. */
async function root(app: AppFiles): Promise<string> {
  const args = commandArgs(app.script, COMMAND);
  if (args) return folder(positional(args, VALUED) ?? '.') ?? '.';
  return (await app.first(configs('docs'))) ? 'docs' : '.';
}

export const vitepress: Framework = {
  id: 'vitepress',
  name: 'VitePress',
  kind: 'framework',
  packages: ['vitepress'],
  excludes: ['vite'],
  scripts: ['docs:build', 'build'],
  bin: async (app) => {
    const dir = await root(app);
    return dir === '.' ? ['vitepress', 'build'] : ['vitepress', 'build', dir];
  },
  async outputs(app): Promise<OutputFolder[]> {
    const base = await root(app);
    const dflt = [path.posix.join(base, '.vitepress/dist')];
    const cli = optionValue(commandArgs(app.script, COMMAND) ?? [], ['--outDir']);
    const fromCli = cli === null ? null : folder(cli);
    if (fromCli) return [{ dir: fromCli, why: '--outDir in the build script' }, ...defaults('VitePress', dflt)];
    const config = await app.first(configs(base));
    if (!config) return defaults('VitePress', dflt, ` for the root ${base}/`);
    return configured(lookup(exportedObject(withoutComments(config.text)), 'outDir'), 'outDir', config.name, base, 'VitePress', dflt);
  },
};

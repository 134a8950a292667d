// VuePress (1 and 2): a Vue docs site. Its source folder is the one `vuepress build <dir>` names
// (docs/ in the usual layout); the site lands in <dir>/.vuepress/dist unless <dir>/.vuepress/config.*
// sets dest or the script passes --dest (both relative to the app folder).
import path from 'node:path';
import { configured, defaults, withExtensions, type AppFiles, type Framework, type OutputFolder } from './framework';
import { commandArgs, exportedObject, folder, lookup, optionValue, positional, withoutComments } from './static-config';

const COMMAND = /\bvuepress(?:-vite|-webpack)?\s+build\b/;
const VALUED = ['--dest', '-d', '--config', '-c', '--temp', '-t', '--cache', '--port', '-p', '--host'];
const configs = (dir: string) => withExtensions(path.posix.join(dir, '.vuepress/config'), ['js', 'ts', 'mjs', 'mts', 'cjs', 'cts']);

async function sourceDir(app: AppFiles): Promise<string> {
  const args = commandArgs(app.script, COMMAND);
  if (args) return folder(positional(args, VALUED) ?? '.') ?? '.';
  return (await app.first(configs('docs'))) ? 'docs' : '.';
}

export const vuepress: Framework = {
  id: 'vuepress',
  name: 'VuePress',
  kind: 'framework',
  packages: ['vuepress', '@vuepress/cli', 'vuepress-vite'],
  excludes: ['vite', 'webpack'],
  scripts: ['docs:build', 'build'],
  bin: async (app) => {
    const dir = await sourceDir(app);
    return dir === '.' ? ['vuepress', 'build'] : ['vuepress', 'build', dir];
  },
  async outputs(app): Promise<OutputFolder[]> {
    const src = await sourceDir(app);
    const dflt = [path.posix.join(src, '.vuepress/dist')];
    const cli = optionValue(commandArgs(app.script, COMMAND) ?? [], ['--dest', '-d']);
    const fromCli = cli === null ? null : folder(cli);
    if (fromCli) return [{ dir: fromCli, why: '--dest in the build script' }, ...defaults('VuePress', dflt)];
    const config = await app.first(configs(src));
    if (!config) return defaults('VuePress', dflt, ` for the source folder ${src}/`);
    return configured(lookup(exportedObject(withoutComments(config.text)), 'dest'), 'dest', config.name, '.', 'VuePress', dflt);
  },
};

// The shape VitePress and VuePress share: a docs site whose source folder is the one
// `<tool> build <dir>` names (docs/ in the usual layout, found by its config there), built to
// <dir>/<dot folder>/dist unless the script passes an output option or <dir>/<dot folder>/config.*
// sets one.
import path from 'node:path';
import { configured, defaults, withExtensions, type AppFiles, type Framework, type OutputFolder } from './framework';
import { commandArgs, exportedObject, folder, lookup, optionValue, positional, withoutComments } from './static-config';

export interface DocsSite extends Pick<Framework, 'id' | 'name' | 'packages' | 'excludes'> {
  /** The build command in a script, e.g. /\bvitepress\s+build\b/. */
  command: RegExp;
  /** The command that builds it when the app has no such script. */
  tool: string;
  /** Options that take a value (so the folder argument is found past them). */
  valued: readonly string[];
  /** `.vitepress`, `.vuepress`. */
  dotFolder: string;
  /** The script's output options and the config's key for the output folder. */
  outOptions: readonly string[];
  configKey: string;
  /** What the source folder is called in the log, and whether the config's folder is relative to it (else to the app folder). */
  folderWord: string;
  configRelativeToSource: boolean;
}

export function docsSite(spec: DocsSite): Framework {
  const configs = (dir: string) => withExtensions(path.posix.join(dir, spec.dotFolder, 'config'), ['js', 'ts', 'mjs', 'mts', 'cjs', 'cts']);
  /** The source folder: the script's argument, else docs/ when it holds a config, else the app folder. */
  const source = async (app: AppFiles): Promise<string> => {
    const args = commandArgs(app.script, spec.command);
    if (args) return folder(positional(args, spec.valued) ?? '.') ?? '.';
    return (await app.first(configs('docs'))) ? 'docs' : '.';
  };
  return {
    id: spec.id,
    name: spec.name,
    kind: 'framework',
    packages: spec.packages,
    excludes: spec.excludes,
    scripts: ['docs:build', 'build'],
    bin: async (app) => {
      const dir = await source(app);
      return dir === '.' ? [spec.tool, 'build'] : [spec.tool, 'build', dir];
    },
    async outputs(app): Promise<OutputFolder[]> {
      const src = await source(app);
      const dflt = [path.posix.join(src, spec.dotFolder, 'dist')];
      const cli = optionValue(commandArgs(app.script, spec.command) ?? [], spec.outOptions);
      const fromCli = cli === null ? null : folder(cli);
      if (fromCli) return [{ dir: fromCli, why: `${spec.outOptions[0]} in the build script` }, ...defaults(spec.name, dflt)];
      const config = await app.first(configs(src));
      if (!config) return defaults(spec.name, dflt, ` for the ${spec.folderWord} ${src}/`);
      return configured(lookup(exportedObject(withoutComments(config.text)), spec.configKey), spec.configKey, config.name, spec.configRelativeToSource ? src : '.', spec.name, dflt);
    },
  };
}

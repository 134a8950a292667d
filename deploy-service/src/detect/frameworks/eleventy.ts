// Eleventy: the site lands in _site/, or in the output folder its config names (`dir: { output }` in
// the returned or exported object, `setOutputDirectory('…')` in Eleventy 3), or the script's --output.
import { defaults, type Framework, type OutputFolder } from './framework';
import { commandArgs, folder, objectAfter, optionValue, property, withoutComments } from './static-config';

/** In the order Eleventy looks for them. */
const CONFIGS = ['.eleventy.js', 'eleventy.config.js', 'eleventy.config.mjs', 'eleventy.config.cjs'];
const DEFAULT = ['_site'];

export const eleventy: Framework = {
  id: 'eleventy',
  name: 'Eleventy',
  kind: 'framework',
  packages: ['@11ty/eleventy'],
  excludes: ['vite', 'webpack', 'gulp'],
  bin: ['eleventy'],
  async outputs(app): Promise<OutputFolder[]> {
    const cli = optionValue(commandArgs(app.script, /(?:^|[\s/])eleventy\b/) ?? [], ['--output']);
    const fromCli = cli === null ? null : folder(cli);
    if (fromCli) return [{ dir: fromCli, why: '--output in the build script' }, ...defaults('Eleventy', DEFAULT)];
    const config = await app.first(CONFIGS);
    if (!config) return defaults('Eleventy', DEFAULT);
    const text = withoutComments(config.text);
    const call = /\bsetOutputDirectory\s*\(\s*(['"])([^'"\n]*)\1\s*\)/.exec(text)?.[2];
    const dir = objectAfter(text, /\bdir\s*:\s*/);
    const output = call !== undefined ? { kind: 'string' as const, value: call } : dir === null ? undefined : property(dir, 'output');
    if (output === undefined) return defaults('Eleventy', DEFAULT, `; no output folder in ${config.name}`);
    const found = output.kind === 'string' ? folder(output.value) : null;
    if (found === null) return defaults('Eleventy', DEFAULT, `; the output folder in ${config.name} is not a plain folder name`);
    return [{ dir: found, why: `${call !== undefined ? 'setOutputDirectory' : 'dir.output'} in ${config.name}` }, ...defaults('Eleventy', DEFAULT)];
  },
};

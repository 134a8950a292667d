// Astro: the site lands in outDir (dist/ by default), relative to root, both read from astro.config.*.
// A server build (output: 'server', an adapter) is refused after the build (static-output.ts).
import { configured, defaults, withExtensions, type Framework, type OutputFolder } from './framework';
import { exportedObject, folder, lookup, withoutComments } from './static-config';

const CONFIGS = withExtensions('astro.config', ['mjs', 'js', 'ts', 'mts', 'cjs']);

export const astro: Framework = {
  id: 'astro',
  name: 'Astro',
  kind: 'framework',
  packages: ['astro'],
  excludes: ['vite'],
  async outputs(app): Promise<OutputFolder[]> {
    const config = await app.first(CONFIGS);
    if (!config) return defaults('Astro', ['dist']);
    const object = exportedObject(withoutComments(config.text));
    const root = lookup(object, 'root');
    // outDir is relative to root: with a root Slipway cannot read, the default is all it has.
    if (root !== undefined && root.kind !== 'string') return defaults('Astro', ['dist'], `; root in ${config.name} is not a plain folder name`);
    const base = root === undefined ? '.' : (folder(root.value) ?? '.');
    return configured(lookup(object, 'outDir'), 'outDir', config.name, base, 'Astro', [base === '.' ? 'dist' : `${base}/dist`]);
  },
};

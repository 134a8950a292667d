// Nuxt: `nuxt generate` writes the site to .output/public (and links dist/ to it), or to nitro's
// output.publicDir when nuxt.config.* sets one. `nuxt build` makes a server, refused after the build.
import { configured, withExtensions, type Framework, type OutputFolder } from './framework';
import { exportedObject, lookup, withoutComments } from './static-config';

const CONFIGS = withExtensions('nuxt.config', ['ts', 'js', 'mjs', 'mts']);
const DEFAULT = ['.output/public', 'dist'];

export const nuxt: Framework = {
  id: 'nuxt',
  name: 'Nuxt (generate)',
  kind: 'framework',
  packages: ['nuxt', 'nuxt3'],
  excludes: ['vite', 'webpack'],
  // Its `generate` when the app has that script; its `build` otherwise (a server: refused after the build).
  scripts: ['generate', 'build'],
  async outputs(app): Promise<OutputFolder[]> {
    const config = await app.first(CONFIGS);
    if (!config) return DEFAULT.map((dir) => ({ dir, why: "Nuxt's default" }));
    return configured(lookup(exportedObject(withoutComments(config.text)), 'nitro', 'output', 'publicDir'), 'nitro.output.publicDir', config.name, '.', 'Nuxt', DEFAULT);
  },
};

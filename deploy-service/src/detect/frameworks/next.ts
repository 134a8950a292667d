// Next.js: a static site only with `output: 'export'` in next.config.*, written to distDir when the
// config sets one, else out/. Without it `next build` makes a server app, which static-output.ts
// refuses after the build (unless the script still exports to out/, as `next export` did).
import { defaults, withExtensions, type Framework, type OutputFolder } from './framework';
import { exportedObject, folder, lookup, withoutComments } from './static-config';

const CONFIGS = withExtensions('next.config', ['js', 'mjs', 'ts', 'cjs', 'mts']);

export const next: Framework = {
  id: 'next',
  name: 'Next.js (static export)',
  kind: 'framework',
  packages: ['next'],
  excludes: ['webpack'],
  async outputs(app): Promise<OutputFolder[]> {
    const config = await app.first(CONFIGS);
    if (!config) return defaults('Next.js', ['out'], "; no next.config, so next build makes a server unless the script exports");
    const object = exportedObject(withoutComments(config.text));
    const output = lookup(object, 'output');
    if (output?.kind !== 'string' || output.value !== 'export') {
      return defaults('Next.js', ['out'], `; ${config.name} sets no output: 'export', so next build makes a server unless the script exports`);
    }
    const distDir = lookup(object, 'distDir');
    if (distDir === undefined) return [{ dir: 'out', why: `output: 'export' in ${config.name}` }];
    const dir = distDir.kind === 'string' ? folder(distDir.value) : null;
    if (dir === null) return defaults('Next.js', ['out'], `; distDir in ${config.name} is not a plain folder name`);
    return [{ dir, why: `output: 'export' and distDir in ${config.name}` }, ...defaults('Next.js', ['out'])];
  },
};

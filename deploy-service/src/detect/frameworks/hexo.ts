// Hexo: `hexo generate` writes the site to public/, or to public_dir in _config.yml.
import { defaults, type Framework, type OutputFolder } from './framework';
import { folder } from './static-config';

export const hexo: Framework = {
  id: 'hexo',
  name: 'Hexo',
  kind: 'framework',
  packages: ['hexo'],
  excludes: ['gulp'],
  bin: ['hexo', 'generate'],
  async outputs(app): Promise<OutputFolder[]> {
    const config = await app.read('_config.yml');
    // A top-level `public_dir: value` (quoted or not, a trailing comment aside).
    const raw = config === null ? null : /^public_dir:[ \t]*(.*?)[ \t]*(?:[ \t]#.*)?$/m.exec(config)?.[1];
    if (raw === null || raw === undefined) return defaults('Hexo', ['public']);
    const dir = folder(raw.replace(/^(['"])(.*)\1$/, '$2'));
    return dir ? [{ dir, why: 'public_dir in _config.yml' }, ...defaults('Hexo', ['public'])] : defaults('Hexo', ['public'], '; public_dir in _config.yml is not a plain folder name');
  },
};

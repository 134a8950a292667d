// SvelteKit with @sveltejs/adapter-static: the site lands in the adapter's `pages` folder (build/ by
// default), read from its options in svelte.config.js. Another adapter makes a server, which
// static-output.ts refuses after the build.
import { defaults, type Framework, type OutputFolder } from './framework';
import { folder, objectAfter, property, withoutComments } from './static-config';

const CONFIGS = ['svelte.config.js', 'svelte.config.mjs', 'svelte.config.cjs'];
const DEFAULT = ['build'];

export const sveltekit: Framework = {
  id: 'sveltekit',
  name: 'SvelteKit (static adapter)',
  kind: 'framework',
  packages: ['@sveltejs/kit'],
  excludes: ['vite'],
  async outputs(app): Promise<OutputFolder[]> {
    const config = await app.first(CONFIGS);
    if (!config) return defaults('adapter-static', DEFAULT);
    const text = withoutComments(config.text);
    // The name the adapter is imported as: `import adapter from '@sveltejs/adapter-static'` (or require).
    const name = /\bimport\s+([A-Za-z_$][\w$]*)\s+from\s+['"]@sveltejs\/adapter-static['"]/.exec(text)?.[1] ?? /\b(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*=\s*require\(\s*['"]@sveltejs\/adapter-static['"]\s*\)/.exec(text)?.[1];
    if (!name) return defaults('SvelteKit', DEFAULT, `; no adapter-static in ${config.name}`);
    const call = new RegExp(`\\b${name.replace(/\$/g, '\\$')}\\s*\\(\\s*`);
    const found = call.exec(text);
    if (!found) return defaults('adapter-static', DEFAULT, `; ${name}() is not called in ${config.name}`);
    if (text[found.index + found[0].length] === ')') return defaults('adapter-static', DEFAULT);
    const options = objectAfter(text, call);
    const pages = options === null ? { kind: 'other' as const } : property(options, 'pages');
    if (pages === undefined) return defaults('adapter-static', DEFAULT, `; no pages in ${config.name}`);
    const dir = pages.kind === 'string' ? folder(pages.value) : null;
    if (dir === null) return defaults('adapter-static', DEFAULT, `; adapter-static's options in ${config.name} are not plain`);
    return [{ dir, why: `adapter-static pages in ${config.name}` }, ...defaults('adapter-static', DEFAULT)];
  },
};


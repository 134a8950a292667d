// Frameworks whose static site always lands in the same folder: nothing of theirs to read.
import { fixed, type Framework } from './framework';

export const gatsby: Framework = { id: 'gatsby', name: 'Gatsby', kind: 'framework', packages: ['gatsby'], excludes: ['webpack'], outputs: fixed('Gatsby', 'public') };

export const createReactApp: Framework = { id: 'create-react-app', name: 'Create React App', kind: 'framework', packages: ['react-scripts'], excludes: ['webpack'], outputs: fixed('Create React App', 'build') };

export const vueCli: Framework = { id: 'vue-cli', name: 'Vue CLI', kind: 'framework', packages: ['@vue/cli-service'], excludes: ['webpack'], outputs: fixed('Vue CLI', 'dist') };

export const remix: Framework = {
  id: 'remix',
  name: 'Remix / React Router (SPA mode)',
  kind: 'framework',
  packages: ['@remix-run/dev', '@react-router/dev'],
  excludes: ['vite'],
  outputs: fixed('SPA mode', 'build/client'),
};

export const solidStart: Framework = { id: 'solid-start', name: 'SolidStart', kind: 'framework', packages: ['@solidjs/start'], excludes: ['solid', 'vite'], outputs: fixed('SolidStart', '.output/public') };

export const solid: Framework = { id: 'solid', name: 'Solid (Vite)', kind: 'library', packages: ['solid-js'], with: ['vite'], excludes: ['vite'], outputs: fixed('Vite', 'dist') };

export const preact: Framework = { id: 'preact', name: 'Preact (Vite)', kind: 'library', packages: ['preact'], with: ['vite'], excludes: ['vite'], outputs: fixed('Vite', 'dist') };

export const preactCli: Framework = { id: 'preact-cli', name: 'Preact CLI', kind: 'framework', packages: ['preact-cli'], excludes: ['webpack', 'preact'], outputs: fixed('Preact CLI', 'build') };

export const gridsome: Framework = { id: 'gridsome', name: 'Gridsome', kind: 'framework', packages: ['gridsome'], excludes: ['webpack'], outputs: fixed('Gridsome', 'dist') };

export const reactStatic: Framework = { id: 'react-static', name: 'React Static', kind: 'framework', packages: ['react-static'], excludes: ['webpack'], outputs: fixed('React Static', 'dist') };

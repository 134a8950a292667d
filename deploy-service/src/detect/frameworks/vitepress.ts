// VitePress: a docs site built on Vite. Its project root is the folder `vitepress build <root>` names
// (docs/ in the usual layout); the site lands in <root>/.vitepress/dist unless the root's
// .vitepress/config.* sets outDir (relative to the root) or the script passes --outDir.
import { docsSite } from './docs-site';

export const vitepress = docsSite({
  id: 'vitepress',
  name: 'VitePress',
  packages: ['vitepress'],
  excludes: ['vite'],
  command: /\bvitepress\s+build\b/,
  tool: 'vitepress',
  valued: ['--outDir', '--base', '--target', '--mode', '-m', '--assetsInlineLimit'],
  dotFolder: '.vitepress',
  outOptions: ['--outDir'],
  configKey: 'outDir',
  folderWord: 'root',
  configRelativeToSource: true,
});

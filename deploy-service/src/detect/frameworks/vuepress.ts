// VuePress (1 and 2): a Vue docs site. Its source folder is the one `vuepress build <dir>` names
// (docs/ in the usual layout); the site lands in <dir>/.vuepress/dist unless <dir>/.vuepress/config.*
// sets dest or the script passes --dest (both relative to the app folder).
import { docsSite } from './docs-site';

export const vuepress = docsSite({
  id: 'vuepress',
  name: 'VuePress',
  packages: ['vuepress', '@vuepress/cli', 'vuepress-vite'],
  excludes: ['vite', 'webpack'],
  command: /\bvuepress(?:-vite|-webpack)?\s+build\b/,
  tool: 'vuepress',
  valued: ['--dest', '-d', '--config', '-c', '--temp', '-t', '--cache', '--port', '-p', '--host'],
  dotFolder: '.vuepress',
  outOptions: ['--dest', '-d'],
  configKey: 'dest',
  folderWord: 'source folder',
  configRelativeToSource: false,
});

// Fixture repositories, built by code: each returns the files of a repository as path → contents.

/** Bytes 0–255 twice: a binary file that any text re-encoding on the way would corrupt. */
export const BINARY = Buffer.from([...Array(512).keys()].map((i) => i % 256));

export function staticSite(): Record<string, string | Buffer> {
  return {
    'index.html': '<!doctype html><title>home</title><h1>Home</h1>',
    'about/index.html': '<!doctype html><title>about</title><h1>About</h1>',
    'css/site.css': 'body { color: #123456; }',
    'js/app.js': 'console.log("app");',
    'img/logo.png': BINARY,
    'docs/guide/deep/page.html': '<p>deep page</p>',
    'data/info.json': '{"ok":true}',
    'README.md': '# a static site',
  };
}

/** A package.json project without dependencies whose build script writes `<outDir>/`. */
export function buildSite(outDir = 'build', marker = 'built'): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name: 'fixture', private: true, scripts: { build: 'node build.js' } }),
    'build.js': `
const fs = require('fs');
fs.mkdirSync('${outDir}/assets', { recursive: true });
fs.writeFileSync('${outDir}/index.html', '<h1>${marker}</h1>');
fs.writeFileSync('${outDir}/assets/main.js', 'console.log(1)');
console.log('build wrote ${outDir}/');
`,
    'src/app.txt': 'source only, never published',
  };
}

export function manyFiles(count: number): Record<string, string> {
  const files: Record<string, string> = { 'index.html': `<h1>${count} files</h1>` };
  for (let i = 0; i < count; i++) files[`files/${String(Math.floor(i / 100)).padStart(2, '0')}/f${i}.txt`] = `file ${i}\n`;
  return files;
}

export function failingBuild(code: number): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name: 'broken', private: true, scripts: { build: 'node build.js' } }),
    'build.js': `console.log('compiling…'); console.error('error: something is broken'); process.exit(${code});`,
  };
}

/** A build that takes `ms` (so a test can act while it runs), then writes dist/index.html. */
export function slowBuild(ms: number): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name: 'slow', private: true, scripts: { build: 'node build.js' } }),
    'build.js': `
const fs = require('fs');
console.log('building for ${ms} ms');
setTimeout(() => {
  fs.mkdirSync('dist', { recursive: true });
  fs.writeFileSync('dist/index.html', '<h1>slow build</h1>');
  console.log('build done');
}, ${ms});
`,
  };
}

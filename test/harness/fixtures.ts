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
    'build.js': `console.log('compiling…'); console.error('\\u001b[31merror\\u001b[39m: something is broken'); console.error('    at build (/build/src/build.js:1:1)'); process.exit(${code});`,
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

/**
 * An npm-workspaces monorepo: apps/web needs packages/ui, which needs packages/tokens; apps/docs,
 * packages/admin and docs/ are not needed by it. The build renders the tokens' brand through ui.
 */
export function workspaceMonorepo(brand: string): Record<string, string> {
  const pkg = (value: object) => JSON.stringify(value, null, 2);
  return {
    'package.json': pkg({ name: 'monorepo', private: true, workspaces: ['apps/*', 'packages/*'] }),
    '.nvmrc': '20\n',
    'README.md': '# monorepo\n',
    'apps/web/package.json': pkg({ name: '@demo/web', private: true, scripts: { build: 'node build.js' }, dependencies: { '@demo/ui': '*' } }),
    'apps/web/build.js': `
const fs = require('fs');
const render = require('@demo/ui');
fs.mkdirSync('dist', { recursive: true });
fs.writeFileSync('dist/index.html', render());
console.log('web built with ui');
`,
    'packages/ui/package.json': pkg({ name: '@demo/ui', version: '1.0.0', main: 'index.js', dependencies: { '@demo/tokens': '*' } }),
    'packages/ui/index.js': `module.exports = () => '<h1>' + require('@demo/tokens').brand + '</h1>';\n`,
    'packages/tokens/package.json': pkg({ name: '@demo/tokens', version: '1.0.0', main: 'index.js' }),
    'packages/tokens/index.js': `module.exports = { brand: ${JSON.stringify(brand)} };\n`,
    'packages/admin/package.json': pkg({ name: '@demo/admin', version: '1.0.0', main: 'src/index.js' }),
    'packages/admin/src/index.js': 'module.exports = "admin";\n',
    'apps/docs/package.json': pkg({ name: '@demo/docs', private: true, dependencies: { '@demo/ui': '*' } }),
    'apps/docs/content/intro.md': '# docs\n',
    'docs/design/notes.md': '# design notes, not part of any package\n',
  };
}

/** A small Vite + React app as `npm create vite` makes it (its lockfile is made by npm, see lockfiles.ts). */
export function viteReactApp(title: string): Record<string, string> {
  return {
    'package.json': JSON.stringify(
      {
        name: 'vite-react-app',
        private: true,
        version: '0.0.0',
        type: 'module',
        scripts: { dev: 'vite', build: 'vite build', preview: 'vite preview' },
        dependencies: { react: '^18.3.1', 'react-dom': '^18.3.1' },
        devDependencies: { '@vitejs/plugin-react': '^4.3.4', vite: '^6.0.0' },
      },
      null,
      2,
    ),
    'vite.config.js': "import { defineConfig } from 'vite';\nimport react from '@vitejs/plugin-react';\n\nexport default defineConfig({ plugins: [react()] });\n",
    'index.html': `<!doctype html>\n<html lang="en">\n  <head>\n    <meta charset="UTF-8" />\n    <title>${title}</title>\n  </head>\n  <body>\n    <div id="root"></div>\n    <script type="module" src="/src/main.jsx"></script>\n  </body>\n</html>\n`,
    'src/main.jsx': "import { StrictMode } from 'react';\nimport { createRoot } from 'react-dom/client';\nimport App from './App.jsx';\nimport './index.css';\n\ncreateRoot(document.getElementById('root')).render(<StrictMode><App /></StrictMode>);\n",
    'src/App.jsx': `import { useState } from 'react';\n\nexport default function App() {\n  const [count, setCount] = useState(0);\n  return <button onClick={() => setCount((c) => c + 1)}>${title}: {count}</button>;\n}\n`,
    'src/index.css': 'body { font-family: system-ui; }\n',
    '.gitignore': 'node_modules\ndist\n',
  };
}

/** A built site as a CDN sees one: an HTML page and a hashed bundle (the serving bench's files). */
export function servingSite(): Record<string, string> {
  const lines = Array.from({ length: 1000 }, (_, i) => `export const value${i} = ${JSON.stringify(`the ${i}th value of a bundle`)};`);
  return {
    'index.html': `<!doctype html><html><head><title>Bench</title><script type="module" src="/assets/index-Ca74PG3G.js"></script></head><body><div id="root"></div>${'<p>A paragraph of the page.</p>'.repeat(60)}</body></html>`,
    'assets/index-Ca74PG3G.js': lines.join('\n'),
  };
}

/** A site whose build logs `building <text>` and publishes `text` as dist/index.html; with `fails`, the build exits 1 instead. */
export function textSite(text: string, fails = false): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name: 'site', private: true, scripts: { build: 'node build.js' } }),
    'build.js': fails
      ? "console.error('error: the build broke'); process.exit(1);"
      : `console.log('building ' + ${JSON.stringify(text)}); require('fs').mkdirSync('dist'); require('fs').writeFileSync('dist/index.html', ${JSON.stringify(text)});`,
  };
}

// The web page at GET /: index.html (markup and style) with the script of client/ (TypeScript,
// type-checked with the rest by `npm run lint`) bundled by esbuild once, when this module loads, and
// inlined. The page's Content-Security-Policy allows that one script by its hash, computed here from
// the bundle that is served. The page deploys a URL, lists and creates projects, shows a project's
// production, aliases and history (deploy, rollback, promote, redeploy, cancel), and one deployment's
// status and live log; when the API asks for a token (401) it asks once and keeps it in the browser.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

const here = (name: string) => fileURLToPath(new URL(name, import.meta.url));

const bundle = buildSync({
  entryPoints: [here('./client/main.ts')],
  bundle: true,
  write: false,
  format: 'iife',
  target: 'es2020',
  legalComments: 'none',
  logLevel: 'silent',
}).outputFiles[0]!.text;

const template = readFileSync(here('./index.html'), 'utf8');
const PLACEHOLDER = '<script>/*SCRIPT*/</script>';
if (!template.includes(PLACEHOLDER) || bundle.includes('</script')) throw new Error('the page cannot be assembled: index.html lacks its script slot, or the bundle holds </script');

export const PAGE_HTML = template.replace(PLACEHOLDER, () => `<script>${bundle}</script>`);
/** The CSP hash of the page's one script (script-src 'sha256-…'). */
export const PAGE_SCRIPT_HASH = createHash('sha256').update(bundle).digest('base64');

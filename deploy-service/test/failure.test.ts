import { describe, expect, it } from 'vitest';
import { failureSummary, stripAnsi } from '../src/deployment/failure';

const lines = (text: string) => text.split('\n');

describe('the line that explains a failed build', () => {
  it.each([
    [
      'Vite: the error after "error during build:", not npm\'s lifecycle lines',
      `vite v5.4.2 building for production...
\u001b[32m✓\u001b[39m 3 modules transformed.
\u001b[31merror during build:
\u001b[31m[vite]: Rollup failed to resolve import "./missing" from "/build/src/src/main.js".\u001b[39m
    at viteWarn (file:///build/src/node_modules/vite/dist/node/chunks/dep.js:65:27)
npm error Lifecycle script \`build\` failed with error:
npm error code 1
npm error path /build/src
npm error command failed
npm error command sh -c vite build`,
      'Rollup failed to resolve import "./missing" from "/build/src/src/main.js".',
    ],
    [
      "npm ci: npm's ERESOLVE summary",
      `npm error code ERESOLVE
npm error ERESOLVE unable to resolve dependency tree
npm error
npm error While resolving: app@1.0.0
npm error Found: react@18.3.1
npm error A complete log of this run can be found in: /build/home/.npm/_logs/x.log`,
      'ERESOLVE unable to resolve dependency tree',
    ],
    [
      'webpack 4 on a new Node: the Error line, not the stack',
      `> react-scripts build
Creating an optimized production build...
Error: error:0308010C:digital envelope routines::unsupported
    at new Hash (node:internal/crypto/hash:69:19)
    at Object.createHash (node:crypto:133:10) {
  opensslErrorStack: [ 'error:03000086:digital envelope routines::initialization error' ],
  code: 'ERR_OSSL_EVP_UNSUPPORTED'
}
Node.js v20.20.2`,
      'Error: error:0308010C:digital envelope routines::unsupported',
    ],
    ['tsc: the first error with its file', `> tsc -b && vite build\nsrc/App.tsx(4,7): error TS2322: Type 'number' is not assignable to type 'string'.\nsrc/App.tsx(9,1): error TS2304: Cannot find name 'foo'.`, "src/App.tsx(4,7): error TS2322: Type 'number' is not assignable to type 'string'."],
    ['pnpm: the frozen lockfile refusal, its thin spaces made plain', ' ERR_PNPM_OUTDATED_LOCKFILE\u2009 Cannot install with "frozen-lockfile" because pnpm-lock.yaml is not up to date with package.json', 'ERR_PNPM_OUTDATED_LOCKFILE Cannot install with "frozen-lockfile" because pnpm-lock.yaml is not up to date with package.json'],
    ['Yarn classic', 'yarn install v1.22.22\n[1/4] Resolving packages...\nerror Your lockfile needs to be updated, but yarn was run with `--frozen-lockfile`.\ninfo Visit https://yarnpkg.com/en/docs/cli/install for documentation about this command.', 'error Your lockfile needs to be updated, but yarn was run with `--frozen-lockfile`.'],
    ['Next.js: the line after "Failed to compile."', "   Creating an optimized production build ...\nFailed to compile.\n\n./app/page.tsx\nModule not found: Can't resolve './missing'", "./app/page.tsx: Module not found: Can't resolve './missing'"],
    ['webpack: the module and the problem', "ERROR in ./src/index.js 3:0-28\nModule not found: Error: Can't resolve './nope' in '/build/src/src'", "ERROR in ./src/index.js 3:0-28: Module not found: Error: Can't resolve './nope' in '/build/src/src'"],
    ['esbuild', '✘ [ERROR] Could not resolve "left-pad"\n\n    src/index.ts:1:20:', 'Could not resolve "left-pad"'],
    ['a script that says nothing like an error: its last line', 'compiling…\nsomething went sideways\n    at main (/build/src/build.js:3:9)', 'something went sideways'],
  ])('%s', (_name, output, expected) => {
    expect(failureSummary(lines(output))).toBe(expected);
  });

  it('is null for a command that printed nothing, and caps a long line', () => {
    expect(failureSummary(['', '   '])).toBeNull();
    expect(failureSummary([`Error: ${'x'.repeat(1000)}`])!.length).toBeLessThanOrEqual(301);
  });

  it('strips colours, cursor moves and terminal links', () => {
    expect(stripAnsi('\u001b[1m\u001b[31mred\u001b[39m\u001b[22m \u001b[2K\u001b[1Gdone \u001b]8;;https://x.dev\u0007link\u001b]8;;\u0007')).toBe('red done link');
  });
});

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
      "Docusaurus: its error and the innermost [cause] under the stack",
      `[INFO] [en] Creating an optimized production build...
[ERROR] Error: Unable to build website for locale en.
    at tryToBuildLocale (/build/src/node_modules/@docusaurus/core/lib/commands/build.js:83:15)
    at async Command.<anonymous> (/build/src/node_modules/@docusaurus/core/lib/commands/cli.js:9:9) {
  [cause]: Error: Docusaurus static site generation failed for 1 paths:
  - "/docs/intro"
      at throwSSGError (/build/src/node_modules/@docusaurus/core/lib/ssg/ssgGlobalResult.js:56:11)
    [cause]: ReferenceError: window is not defined
        at Module.default (/build/src/.docusaurus/client-modules.js:7:3)
  }
}
error Command failed with exit code 1.`,
      '[ERROR] Error: Unable to build website for locale en.; cause: ReferenceError: window is not defined',
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
    [
      'pnpm on a Node its engines refuse: the engine lines, not the stack that follows',
      ` ERR_PNPM_UNSUPPORTED_ENGINE\u2009 Unsupported environment (bad pnpm and/or Node.js version)\n\nYour Node version is incompatible with "/build/src".\n\nExpected version: >=22.13\nGot: v20.20.2\n\nThis is happening because the package's manifest has an engines.node field specified.\nError: boom\n    at x (y.js:1:1)`,
      'ERR_PNPM_UNSUPPORTED_ENGINE Unsupported environment (bad pnpm and/or Node.js version); Your Node version is incompatible with "/build/src".; Expected version: >=22.13; Got: v20.20.2',
    ],
    ['pnpm itself too new for the Node', 'ERROR: This version of pnpm requires at least Node.js v22.13\nThe current Node.js version is v20.20.2\nError [ERR_UNKNOWN_BUILTIN_MODULE]: No such built-in module: node:sqlite\n    at new NodeError', 'ERROR: This version of pnpm requires at least Node.js v22.13; The current Node.js version is v20.20.2'],
    ['npm with engine-strict', 'npm error code EBADENGINE\nnpm error engine Unsupported engine\nnpm error engine Not compatible with your version of node/npm: app@1.0.0\nnpm error notsup Required: {"node":">=22"}', 'engine Unsupported engine; engine Not compatible with your version of node/npm: app@1.0.0'],
    ['Yarn classic engines', 'yarn install v1.22.22\n[1/4] Resolving packages...\nerror vite@7.0.0: The engine "node" is incompatible with this module. Expected version "^20.19.0 || >=22.12.0". Got "18.20.8"\nerror Found incompatible module.', 'error vite@7.0.0: The engine "node" is incompatible with this module. Expected version "^20.19.0 || >=22.12.0". Got "18.20.8"'],
    ['an unresolved import, not the exit line after it', 'vite v7.0.0 building for production...\n[vite]: Failed to resolve import "../shared/theme.css" from "src/main.ts". Does the file exist?\nnpm error Lifecycle script `build` failed with error:\nnpm error code 1', 'Failed to resolve import "../shared/theme.css" from "src/main.ts". Does the file exist?'],
    ['Node: a module that cannot be found', "node:internal/modules/cjs/loader:1228\n  throw err;\nError: Cannot find module '../lib/render.js'\nRequire stack:\n- /build/src/docs/build.js", "Error: Cannot find module '../lib/render.js'"],
    ['a heap that ran out', '<--- Last few GCs --->\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n 1: 0xb8d0a3 node::Abort()', 'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory'],
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

// Slipway's own step after a build, run inside the build's sandbox as the build (plain CommonJS, run
// by the system's node, with none of the build's variables). Paths are resolved here, in the
// sandbox's view, so a link the build left can only lead to what the build itself can see, and only
// a folder inside /build/src counts. What the worker needs leaves as stdout:
//   output — one JSON line of facts (is the app folder still a folder, which output folder, which of
//            the probed folders exist), then, when there is an output folder, a tar stream of it
//            made by tar, which stores links and special files as entries and never follows them;
//   keep   — moves every node_modules folder under /build/src (real folders only, never through a
//            link) into /build/keep/<n> and prints one JSON line: the paths, in order.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');

const params = JSON.parse(process.argv[2] || '{}');
// The sandbox's paths; without a sandbox (BUILD_SANDBOX=off) the worker names the folders.
const SRC = params.src || '/build/src';
const KEEP = params.keep || '/build/keep';

const inside = (p) => p === SRC || p.startsWith(SRC + '/');
/** The real folder `rel` leads to from `from`, or null when it is none or lies outside /build/src. */
function folder(from, rel) {
  try {
    const real = fs.realpathSync(path.join(from, rel));
    return inside(real) && fs.statSync(real).isDirectory() ? real : null;
  } catch {
    return null;
  }
}
function say(facts) {
  fs.writeSync(1, JSON.stringify(facts) + '\n');
}

function output() {
  const app = folder(SRC, params.app);
  if (!app) return say({ app: false });
  const exists = {};
  for (const probe of params.probes) exists[probe] = folder(app, probe) !== null;
  let out = null;
  let requested = null;
  if (params.outputDir !== null) {
    out = folder(app, params.outputDir);
    if (!out) requested = fs.existsSync(path.join(app, params.outputDir)) ? 'outside' : 'missing';
  } else {
    for (const candidate of params.candidates) if ((out = folder(app, candidate))) break;
    if (!out && params.plain) {
      try {
        if (fs.lstatSync(path.join(app, 'index.html')).isFile()) out = app;
      } catch {}
    }
  }
  say({ app: true, output: out === null ? null : path.relative(SRC, out), requested, exists });
  if (out === null) return;
  // Exit 1 is tar's "a file changed as it was read": a warning, the archive is whole.
  const tar = spawn('tar', ['-c', '-f', '-', '--format=posix', '--hard-dereference', '--one-file-system', '-C', out, '.'], { stdio: ['ignore', 'inherit', 'inherit'] });
  tar.on('exit', (code) => process.exit(code === 1 ? 0 : (code ?? 2)));
}

function keep() {
  const found = [];
  const queue = [['', 0]];
  let walked = 0;
  while (queue.length > 0 && walked < 5000) {
    const [rel, depth] = queue.shift();
    walked += 1;
    let entries = [];
    try {
      entries = fs.readdirSync(path.join(SRC, rel), { withFileTypes: true });
    } catch {}
    for (const entry of entries) {
      if (!entry.isDirectory()) continue; // a link is not a folder here: never followed
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.name === 'node_modules') found.push(child);
      else if (depth < 4 && !entry.name.startsWith('.')) queue.push([child, depth + 1]);
    }
  }
  const kept = [];
  for (const rel of found) {
    try {
      fs.renameSync(path.join(SRC, rel), path.join(KEEP, String(kept.length)));
      kept.push(rel);
    } catch {}
  }
  say({ paths: kept });
}

if (params.mode === 'output') output();
else if (params.mode === 'keep') keep();
else {
  console.error(`[slipway] collect: unknown mode ${params.mode}`);
  process.exit(2);
}

// The first process inside a build's sandbox (plain CommonJS, run by the system's node). The
// sandbox has no network but its own loopback; package managers want a proxy at host:port, so this
// listens on 127.0.0.1:3128 and forwards each connection to the egress proxy's unix socket, then
// runs the build command and exits with its status. With `relay` (the worker made the sandbox's
// network namespace), names resolve and connections to them on 80/443 are carried too (relay.cjs).
// When it exits, the sandbox's pid namespace ends and every process the build started ends with
// it. The build's own environment variables arrive as JSON on stdin, so they reach only the command, never the processes that made the sandbox.
'use strict';
const net = require('node:net');
const { spawn } = require('node:child_process');
const { constants } = require('node:os');

const [socketPath, port, mode, ...argv] = process.argv.slice(2);
const server = net.createServer((client) => {
  const upstream = net.connect(socketPath);
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
function readEnv() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on('data', (c) => chunks.push(c));
    process.stdin.on('end', () => {
      try {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve(text ? JSON.parse(text) : {});
      } catch (err) {
        reject(err);
      }
    });
    process.stdin.on('error', reject);
  });
}

const relay = mode === 'relay' ? require('./relay.cjs').startRelay(socketPath) : null;
Promise.all([readEnv(), new Promise((resolve) => server.listen(Number(port), '127.0.0.1', resolve)), relay]).then(([env]) => {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'], env: { ...env, ...process.env } }); // the sandbox's own settings win
  child.on('error', (err) => {
    console.error(err.code === 'ENOENT' ? `[slipway] command not found: ${argv[0]}` : `[slipway] cannot run ${argv[0]}: ${err.code}`);
    process.exit(err.code === 'ENOENT' ? 127 : 126);
  });
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] || 0)));
}, (err) => {
  console.error(`[slipway] the build environment could not be read: ${err.message}`);
  process.exit(125);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(128 + constants.signals[sig]));

// The first process inside a build's sandbox (plain CommonJS, run by the system's node). The
// sandbox has no network but its own loopback; package managers want a proxy at host:port, so this
// listens on 127.0.0.1:3128 and forwards each connection to the egress proxy's unix socket, then
// runs the build command and exits with its status. When it exits, the sandbox's pid namespace
// ends and every process the build started ends with it.
'use strict';
const net = require('node:net');
const { spawn } = require('node:child_process');
const { constants } = require('node:os');

const [socketPath, port, ...argv] = process.argv.slice(2);
const server = net.createServer((client) => {
  const upstream = net.connect(socketPath);
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.listen(Number(port), '127.0.0.1', () => {
  const child = spawn(argv[0], argv.slice(1), { stdio: 'inherit' });
  child.on('error', (err) => {
    console.error(err.code === 'ENOENT' ? `[slipway] command not found: ${argv[0]}` : `[slipway] cannot run ${argv[0]}: ${err.code}`);
    process.exit(err.code === 'ENOENT' ? 127 : 126);
  });
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] || 0)));
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(128 + constants.signals[sig]));

// Inside a build's sandbox, for tools that ignore every proxy variable and resolve and connect by
// themselves: a DNS resolver on 127.0.0.53:53 (the sandbox's /etc/resolv.conf names it) that asks
// the egress proxy whether a name may be reached, and gives each allowed name a loopback address of
// its own (127.100.x.y), where this listens on ports 80 and 443. A connection there is carried to
// <name>:<port> through the egress proxy's CONNECT, under the same policy and log as proxied
// traffic; every other port and address leads nowhere. The address says which name was meant, so
// nothing the build sends (SNI, Host) is parsed here. Ports below 1024 can be bound because the
// worker set ip_unprivileged_port_start to 0 in the network namespace it made for the sandbox (a
// namespace the build has no capability over).
'use strict';
const dgram = require('node:dgram');
const http = require('node:http');
const net = require('node:net');

const RESOLVER = '127.0.0.53';
const PORTS = [80, 443];
/** Names one command may look up (each holds two listeners). */
const MAX_NAMES = 1000;
const LOOKUP_TIMEOUT_MS = 15_000;
const MAX_HEAD_BYTES = 8192;
const TTL_SECONDS = 300;
const A = 1;
const CLASS_IN = 1;
const RCODE = { ok: 0, serverFailure: 2, noSuchName: 3 };

/** Starts the resolver; resolves once it listens (or has said why it cannot). */
function startRelay(socketPath) {
  /** name → Promise of its loopback address, or null when the egress proxy refused it. */
  const names = new Map();
  let given = 0;
  const addressOf = (name) => {
    let known = names.get(name);
    if (known) return known;
    if (names.size >= MAX_NAMES) return Promise.resolve(undefined);
    const n = ++given;
    known = allowed(socketPath, name).then(async (ok) => {
      if (ok === undefined) names.delete(name); // no answer: the next query asks again
      if (!ok) return ok === false ? null : undefined;
      const address = `127.100.${n >> 8}.${n & 255}`;
      await Promise.all(PORTS.map((port) => listen(address, port, (client) => carry(socketPath, client, name, port))));
      return address;
    });
    names.set(name, known);
    return known;
  };

  const server = dgram.createSocket('udp4');
  server.on('message', (msg, peer) => {
    const query = parseQuery(msg);
    if (!query) return;
    const reply = (rcode, address) => server.send(answer(query, rcode, address), peer.port, peer.address);
    if (!query.name) return reply(RCODE.noSuchName);
    addressOf(query.name).then(
      (address) => {
        if (address === undefined) reply(RCODE.serverFailure);
        else if (address === null) reply(RCODE.noSuchName);
        else reply(RCODE.ok, query.type === A && query.klass === CLASS_IN ? address : undefined);
      },
      (err) => {
        console.error(`[slipway] the sandbox's resolver could not serve ${query.name}: ${err.code || err.message}`);
        reply(RCODE.serverFailure);
      },
    );
  });
  return new Promise((resolve) => {
    server.once('error', (err) => {
      console.error(`[slipway] names cannot be looked up in this sandbox (${err.code}); tools must use the proxy variables`);
      resolve();
    });
    server.bind(53, RESOLVER, resolve);
  });
}

/** Whether the egress proxy allows `name`: true, false, or undefined when it did not answer. */
function allowed(socketPath, name) {
  return new Promise((resolve) => {
    const req = http.request({ socketPath, path: `/.slipway/lookup/${encodeURIComponent(name)}`, timeout: LOOKUP_TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode === 204 ? true : res.statusCode === 403 ? false : undefined);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

function listen(address, port, onConnection) {
  return new Promise((resolve, reject) => {
    const server = net.createServer(onConnection);
    server.once('error', reject);
    server.listen(port, address, resolve);
  });
}

/** Carries one connection to name:port through the egress proxy's CONNECT. */
function carry(socketPath, client, name, port) {
  const upstream = net.connect(socketPath);
  const drop = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', drop);
  upstream.on('error', drop);
  client.on('close', () => upstream.destroy());
  upstream.write(`CONNECT ${name}:${port} HTTP/1.1\r\nHost: ${name}:${port}\r\n\r\n`);
  let head = Buffer.alloc(0);
  const onData = (chunk) => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > MAX_HEAD_BYTES) drop();
      return;
    }
    upstream.off('data', onData);
    if (!/^HTTP\/1\.[01] 200 /.test(head.toString('latin1', 0, end))) return drop();
    if (head.length > end + 4) client.write(head.subarray(end + 4));
    client.pipe(upstream);
    upstream.pipe(client);
  };
  upstream.on('data', onData);
}

/** The one question of a DNS query, or null for anything else (responses, several questions, pointers). */
function parseQuery(msg) {
  if (msg.length < 12 || msg.length > 512 || msg[2] & 0x80 || msg.readUInt16BE(4) !== 1) return null;
  const labels = [];
  let at = 12;
  for (;;) {
    const length = msg[at];
    if (length === undefined || length > 63) return null;
    at += 1;
    if (length === 0) break;
    if (at + length > msg.length) return null;
    labels.push(msg.toString('latin1', at, at + length).toLowerCase());
    at += length;
  }
  if (at + 4 > msg.length) return null;
  // A name the egress proxy would not take is answered as unknown without asking it.
  const name = labels.every((l) => /^[a-z0-9-]+$/.test(l)) && labels.length > 0 ? labels.join('.') : '';
  return { id: msg.readUInt16BE(0), recursion: msg[2] & 0x01, name: name.length <= 253 ? name : '', type: msg.readUInt16BE(at), klass: msg.readUInt16BE(at + 2), question: msg.subarray(12, at + 4) };
}

function answer(query, rcode, address) {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.id, 0);
  header[2] = 0x80 | 0x04 | query.recursion; // a response, authoritative, recursion as asked
  header[3] = 0x80 | rcode; // recursion available
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(address ? 1 : 0, 6);
  if (!address) return Buffer.concat([header, query.question]);
  const record = Buffer.alloc(16);
  record.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
  record.writeUInt16BE(A, 2);
  record.writeUInt16BE(CLASS_IN, 4);
  record.writeUInt32BE(TTL_SECONDS, 6);
  record.writeUInt16BE(4, 10);
  address.split('.').forEach((byte, i) => (record[12 + i] = Number(byte)));
  return Buffer.concat([header, query.question, record]);
}

module.exports = { startRelay, parseQuery, answer };

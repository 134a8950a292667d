// The tool cache against a small registry server (a real HTTP server on loopback serving packuments
// and tarballs made here): integrity is checked, launchers are written, the folder stays bounded.
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { create } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToolCache } from '../src/toolchain/tool-cache';

let dir: string;
let server: http.Server;
let registry: string;
const tarballs = new Map<string, Buffer>();
const packuments = new Map<string, object>();

/** Publishes `name@version` with a bin script that prints its version. */
async function publish(name: string, version: string, corrupt = false): Promise<void> {
  const pkgDir = path.join(dir, 'src', `${name}-${version}`, 'package');
  await mkdir(path.join(pkgDir, 'bin'), { recursive: true });
  await writeFile(path.join(pkgDir, 'package.json'), JSON.stringify({ name, version, bin: { [name]: 'bin/cli.js' } }));
  await writeFile(path.join(pkgDir, 'bin/cli.js'), `console.log('${name} ${version}');\n`);
  const file = path.join(dir, 'src', `${name}-${version}.tgz`);
  await create({ gzip: true, file, cwd: path.dirname(pkgDir) }, ['package']);
  const body = await readFile(file);
  tarballs.set(`/${name}/-/${name}-${version}.tgz`, corrupt ? Buffer.concat([body, Buffer.from('x')]) : body);
  const doc = (packuments.get(name) ?? { versions: {} }) as { versions: Record<string, object> };
  doc.versions[version] = { bin: { [name]: 'bin/cli.js' }, dist: { tarball: `${registry}/${name}/-/${name}-${version}.tgz`, integrity: `sha512-${createHash('sha512').update(body).digest('base64')}` } };
  packuments.set(name, doc);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'slipway-tools-test-'));
  server = http.createServer((req, res) => {
    const body = tarballs.get(req.url!) ?? (packuments.has(req.url!.slice(1)) ? Buffer.from(JSON.stringify(packuments.get(req.url!.slice(1)))) : null);
    res.statusCode = body ? 200 : 404;
    res.end(body ?? 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  registry = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('tool cache', () => {
  it('installs a checked package once and writes a launcher that runs it', async () => {
    await publish('fakepm', '1.2.3');
    await publish('fakepm', '1.3.0');
    const tools = new ToolCache(path.join(dir, 'tools-a'), registry);
    expect(await tools.newest('fakepm', '1.x')).toBe('1.3.0');
    const [a, b] = await Promise.all([tools.install('fakepm', '1.2.3'), tools.install('fakepm', '1.2.3')]);
    expect(a).toEqual(b);
    const { stdout } = await promisify(execFile)(path.join(a.bin, 'fakepm'), [], { env: { PATH: process.env.PATH } });
    expect(stdout).toBe('fakepm 1.2.3\n');
    expect(await tools.cachedVersions('fakepm')).toEqual(['1.2.3']);
  });

  it('refuses a tarball that does not match the registry\'s integrity, and keeps nothing of it', async () => {
    await publish('tampered', '1.0.0', true);
    const tools = new ToolCache(path.join(dir, 'tools-b'), registry);
    await expect(tools.install('tampered', '1.0.0')).rejects.toThrow(/does not match the registry's integrity/);
    expect(await readdir(path.join(dir, 'tools-b'))).toEqual([]);
  });

  it('says when a version is not published', async () => {
    const tools = new ToolCache(path.join(dir, 'tools-c'), registry);
    await expect(tools.install('fakepm', '9.9.9')).rejects.toThrow(/fakepm@9.9.9 is not published on the npm registry/);
  });

  it('keeps at most maxTools, removing the least recently used idle ones', async () => {
    for (let i = 0; i < 5; i++) await publish('many', `1.0.${i}`);
    const tools = new ToolCache(path.join(dir, 'tools-d'), registry, { maxTools: 3, inUseMs: 0 });
    for (let i = 0; i < 5; i++) {
      await tools.install('many', `1.0.${i}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await readdir(path.join(dir, 'tools-d'))).sort()).toEqual(['many@1.0.2', 'many@1.0.3', 'many@1.0.4']);
  });
});

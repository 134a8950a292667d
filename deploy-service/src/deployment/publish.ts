// Publishing: each build's output goes to a prefix of its own, dist/<id>/<build>/, and becomes the
// site only when the record's liveBuild pointer switches to it (Queue.finish). Nothing is ever
// overwritten in place, so a half-published or refused build is never served; old builds are removed here.
//
// Beside the files go what serving needs (shared/src/site/manifest.ts): each file's SHA-256 (the
// strong ETag), Brotli and gzip variants of compressible files (made once here, never per request),
// and the output's _redirects and _headers rules, parsed here: a rule Slipway cannot honour is skipped
// and named in the result's warnings (for the build log and the record), never a failed build.
// The deployment's facts (shared/src/recovery/backup.ts: what a Redis that lost it needs to serve it again) go
// just before the manifest, which is written last: a build without one was never completely
// published. It publishes the worker's own copy of the output (received from the build's sandbox,
// see collect.ts).
import { constants, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import {
  COMPRESS_MAX_BYTES,
  backupKeys,
  COMPRESS_MIN_BYTES,
  MANIFEST_VERSION,
  MAX_RULES_FILE_BYTES,
  RuleWarnings,
  contentTypeFor,
  deploymentFacts,
  forEachBounded,
  isCompressible,
  keyUnder,
  parseHeaders,
  parseRedirects,
  siteKeys,
  storageKeys,
  walkFiles,
  writeDeploymentFacts,
  type DeploymentRecord,
  type Encoding,
  type ManifestFile,
  type SiteManifest,
  type Storage,
  type UploadResult,
} from '@slipway/shared';

/** The rule files: read from the output's root, applied by the server, never served as files. */
const RULE_FILES = new Set(['_redirects', '_headers']);
/** Brotli 9 is within a few per cent of 11 at a twentieth of the time (2 MB of JS: 0.14 s vs 3 s). */
const BROTLI_QUALITY = 9;
/** A variant is kept only when it saves at least this share of the file. */
const MIN_SAVING = 0.1;

export interface PublishResult extends UploadResult {
  /** Files stored with a compressed variant. */
  compressed: number;
  redirects: number;
  headerRules: number;
  /** The rule lines (or files) skipped, and why: at most MAX_WARNINGS, each at most MAX_WARNING_CHARS. */
  warnings?: string[];
}

export async function publishOutput(
  storage: Storage,
  record: DeploymentRecord,
  build: string,
  outputDir: string,
  options: { concurrency: number; maxFiles: number; maxBytes: number; tmpDir: string; signal?: AbortSignal },
): Promise<PublishResult> {
  const { signal } = options;
  const id = record.id;
  const warnings = new RuleWarnings();
  const redirects = parseRedirects(await ruleFile(outputDir, '_redirects', warnings), warnings);
  const headers = parseHeaders(await ruleFile(outputDir, '_headers', warnings), warnings);
  const manifest: SiteManifest = { version: MANIFEST_VERSION, files: {}, redirects, headers };
  await mkdir(options.tmpDir, { recursive: true });
  const result: PublishResult = { files: 0, bytes: 0, compressed: 0, redirects: redirects.length, headerRules: headers.length };
  if (warnings.list().length > 0) result.warnings = warnings.list();
  const prefix = storageKeys.build(id, build);
  const walk = walkFiles(outputDir, { maxFiles: options.maxFiles, maxBytes: options.maxBytes, what: 'the output', limitNames: { files: 'MAX_OUTPUT_FILES', bytes: 'MAX_OUTPUT_MB' } });
  let n = 0;
  await forEachBounded(walk, options.concurrency, async (file) => {
    // Cancel (and the publish deadline) stop the next file, and abort the uploads in flight.
    signal?.throwIfAborted();
    if (RULE_FILES.has(file.rel)) return;
    const type = contentTypeFor(file.rel);
    const entry: ManifestFile = { size: file.size, hash: await hashFile(file.abs), type };
    await storage.putFile(keyUnder(prefix, file.rel), file.abs, file.size, { contentType: type, mode: file.mode, signal });
    if (isCompressible(type) && file.size >= COMPRESS_MIN_BYTES && file.size <= COMPRESS_MAX_BYTES) {
      const scratch = path.join(options.tmpDir, String(n++));
      try {
        for (const encoding of ['br', 'gz'] as const) {
          const size = await compressFile(file.abs, scratch, encoding);
          if (size > file.size * (1 - MIN_SAVING)) continue;
          await storage.putFile(siteKeys.variant(id, build, encoding, file.rel), scratch, size, { contentType: type, signal });
          entry[encoding] = size;
        }
      } finally {
        await rm(scratch, { force: true });
      }
      if (entry.br !== undefined || entry.gz !== undefined) result.compressed += 1;
    }
    manifest.files[file.rel] = entry;
    result.files += 1;
    result.bytes += file.size;
  });
  signal?.throwIfAborted();
  if (result.files > 0) await writeDeploymentFacts(storage, deploymentFacts(record, build, result));
  await storage.putText(siteKeys.manifest(id, build), JSON.stringify(manifest), 'application/json');
  return result;
}

/**
 * A rule file's text: '' when there is none, or when it is not a regular file or is over
 * MAX_RULES_FILE_BYTES (then with a warning). Never read past the limit, whatever its size says.
 */
async function ruleFile(outputDir: string, name: string, warnings: RuleWarnings): Promise<string> {
  const file = path.join(outputDir, name);
  const stat = await lstat(file).catch(() => null);
  if (!stat) return '';
  const unused = `${name} in the output is not used`;
  if (!stat.isFile()) {
    warnings.add(`${unused}: it is not a regular file (a link or a folder)`);
    return '';
  }
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buffer = Buffer.alloc(MAX_RULES_FILE_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > MAX_RULES_FILE_BYTES) {
      warnings.add(`${unused}: it is ${Math.max(stat.size, length).toLocaleString('en-US')} bytes; the limit is ${MAX_RULES_FILE_BYTES.toLocaleString('en-US')}`);
      return '';
    }
    return buffer.toString('utf8', 0, length);
  } finally {
    await handle.close();
  }
}

/** The file's SHA-256, base64url. */
async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(await readNoFollow(file), hash);
  return hash.digest('base64url');
}

/** Writes the file's compressed form to `to`; returns its size. */
async function compressFile(file: string, to: string, encoding: Encoding): Promise<number> {
  const compressor =
    encoding === 'br'
      ? zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY } })
      : zlib.createGzip({ level: 9 });
  await pipeline(await readNoFollow(file), compressor, createWriteStream(to));
  return (await lstat(to)).size;
}

/** Opened without following a link that replaced the file after the walk. */
async function readNoFollow(file: string): Promise<NodeJS.ReadableStream> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  return handle.createReadStream(); // closes the handle when it ends or is destroyed
}

/** Removes one build's objects: its facts, files, variants and manifest. */
export async function removeBuild(storage: Storage, id: string, build: string): Promise<number> {
  // The facts first: a removal cut short leaves folders, which the next one finds and removes.
  const facts = await storage.deletePrefix(backupKeys.facts(id, build));
  // Four folders (files, two variants, manifest): a fixed, small number at once.
  const counts = await Promise.all(siteKeys.folders(build).map((folder) => storage.deletePrefix(`${storageKeys.dist(id)}/${folder}/`)));
  return counts.reduce((a, b) => a + b, facts);
}

/**
 * Removes every build of `id` but `keep` (the live one): what attempts that died mid-publish left.
 * Only the id's current owner calls this, so no build it removes can still become live.
 */
export async function removeStaleBuilds(storage: Storage, id: string, keep: string | undefined): Promise<string[]> {
  const stale = new Set<string>();
  for await (const folder of storage.listFolders(`${storageKeys.dist(id)}/`)) {
    const build = siteKeys.buildOf(folder);
    if (build !== keep) stale.add(build);
  }
  for (const build of stale) await removeBuild(storage, id, build);
  return [...stale];
}

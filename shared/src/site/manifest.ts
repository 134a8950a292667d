// A build's site manifest: every file of the output with its size, content hash, type and
// compressed variants, plus the output's _redirects and _headers rules. The worker writes it once,
// after the files, when it publishes a build (deploy-service/src/deployment/publish.ts); the site server reads
// it once per build and answers from it (upload-service/src/sites/sites.ts). Builds never change, so
// neither does a manifest: it is cached without invalidation.
//
// Storage, beside the build's own folder (all under dist/<id>/, so removing a deployment removes them):
//   dist/<id>/<build>/<path>                the output as built
//   dist/<id>/<build>.br/<path>             Brotli variant of a compressible file, when smaller
//   dist/<id>/<build>.gz/<path>             gzip variant, likewise
//   dist/<id>/<build>.meta/manifest.json    this manifest
import path from 'node:path';
import type { HeaderRule } from './headers';
import type { RedirectRule } from './redirects';

export const MANIFEST_VERSION = 1;
export type Encoding = 'br' | 'gz';

export interface ManifestFile {
  size: number;
  /** SHA-256 of the content, base64url: the strong ETag. */
  hash: string;
  type: string;
  /** Sizes of the stored variants. */
  br?: number;
  gz?: number;
}

export interface SiteManifest {
  version: typeof MANIFEST_VERSION;
  files: Record<string, ManifestFile>;
  redirects: RedirectRule[];
  headers: HeaderRule[];
}

export const siteKeys = {
  manifest: (id: string, build: string) => `dist/${id}/${build}.meta/manifest.json`,
  variant: (id: string, build: string, encoding: Encoding, rel: string) => `dist/${id}/${build}.${encoding}/${rel}`,
  /** Every folder a build owns under dist/<id>/ (its own and its variants' and manifest's). */
  folders: (build: string) => [build, `${build}.br`, `${build}.gz`, `${build}.meta`],
  /** The build a folder under dist/<id>/ belongs to. */
  buildOf: (folder: string) => folder.replace(/\.(br|gz|meta)$/, ''),
} as const;

/** Files smaller than this are not worth compressing (headers and a round trip cost more). */
export const COMPRESS_MIN_BYTES = 1024;
/** Files larger than this are stored only as they are: compressing them would hold a build up. */
export const COMPRESS_MAX_BYTES = 16 * 1024 * 1024;

/** Text formats and the binary ones that compress well (wasm, fonts that are not already compressed). */
export function isCompressible(type: string): boolean {
  const base = type.split(';')[0]!.trim().toLowerCase();
  return (
    base.startsWith('text/') ||
    /^application\/(javascript|ecmascript|json|ld\+json|manifest\+json|xml|xhtml\+xml|rss\+xml|atom\+xml|wasm|x-javascript|geo\+json|graphql-response\+json)$/.test(base) ||
    /^image\/(svg\+xml|x-icon|vnd\.microsoft\.icon|bmp)$/.test(base) ||
    /^font\/(ttf|otf)$/.test(base) ||
    base === 'application/vnd.ms-fontobject'
  );
}

/**
 * Whether a file's URL changes whenever its content does, so it may be cached for a year: a content
 * hash in its name (Vite's `index-Ca74PG3G.js`, webpack's `main.3f2a1c9b.js`, esbuild's
 * `chunk-5XQZ2B7K.js`), or a folder frameworks fill only with such files (`_next/static/`,
 * SvelteKit's `_app/immutable/`, Astro's `_astro/`, Nuxt's `_nuxt/`).
 */
export function isImmutableAsset(rel: string): boolean {
  if (/^(_next\/static|_app\/immutable|_astro|_nuxt)\//.test(rel)) return true;
  const name = path.posix.basename(rel);
  if (/\.html?$/i.test(name)) return false;
  // Just before the extension: `.` or `-` and 8+ letters and digits (webpack, esbuild), or `-` and
  // exactly 8 base64url characters (Rollup and Vite); digits and letters both, so words are not hashes.
  const hashed = /[.-]([A-Za-z0-9]{8,})\.[A-Za-z0-9]+$/.exec(name) ?? /-([A-Za-z0-9_-]{8})\.[A-Za-z0-9]+$/.exec(name);
  return hashed !== null && /\d/.test(hashed[1]!) && /[A-Za-z]/.test(hashed[1]!);
}

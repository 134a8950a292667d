// The bucket's layout: where each kind of object lives (docs/architecture.md, Storage layout).

/** Where a deployment's objects live in the bucket. */
export const storageKeys = {
  source: (id: string) => `source/${id}`,
  /** A deployment's source as one archive (a record whose `sourceFormat` is `tar.gz`), inside its source prefix. */
  sourceArchive: (id: string) => `source/${id}/source.tar.gz`,
  dist: (id: string) => `dist/${id}`,
  /** One build's output: each build publishes under its own prefix, so a site never shows a half-published build. */
  build: (id: string, build: string) => `dist/${id}/${build}`,
  log: (id: string) => `logs/${id}.log`,
  /** A repository's build cache (see deploy-service/src/cache/cache.ts). */
  cache: (repo: string) => `cache/${repo}`,
} as const;

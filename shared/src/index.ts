// The shared package's public face: what both services may use, folder by folder.
export * from './config';
export * from './errors';
export * from './keys';
export * from './logger';
export * from './net-policy';
export * from './node-support';
export * from './outage';
// deployment/: what a deployment is (record, request, ids) and how long it is kept.
export * from './deployment/ids';
export * from './deployment/record';
export * from './deployment/request';
export * from './deployment/retention';
// io/: Redis and S3 clients, files and folders, bounded concurrency.
export * from './io/concurrency';
export * from './io/leftovers';
export * from './io/paths';
export * from './io/redis';
export * from './io/s3';
export * from './io/storage-keys';
export * from './io/small-file';
export * from './io/tree';
// projects/: the schema (requests and the stored record) and the store (Redis).
export * from './projects/schema';
export * from './projects/store';
export * from './projects/secrets';
export * from './projects/watch';
// queue/: the protocol.
export * from './queue/queue';
// recovery/: what S3 keeps of Redis's state, and reading it back.
export * from './recovery/backup';
export * from './recovery/reconcile';
// repo/: what a repository holds (npm workspaces).
export * from './repo/workspaces';

export * from './secrets/seal';
export * from './secrets/keyring';
// site/: a build's manifest and its _redirects and _headers rules.
export * from './site/manifest';
export * from './site/redirects';
export * from './site/headers';
export * from './site/warnings';
export { MAX_PATTERN_CHARS, MAX_RULES_FILE_BYTES, MAX_SITE_PATH_BYTES } from './site/lines';

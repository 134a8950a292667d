// Publishing: each build's output goes to a prefix of its own, dist/<id>/<build>/, and becomes the
// site only when the record's liveBuild pointer switches to it (Queue.finish). Nothing is ever
// overwritten in place, so a half-published or refused build is never served; old builds are removed here.
import { storageKeys, uploadTree, type Storage, type UploadResult } from '@slipway/shared';

export async function publishOutput(
  storage: Storage,
  id: string,
  build: string,
  outputDir: string,
  limits: { concurrency: number; maxFiles: number; maxBytes: number },
): Promise<UploadResult> {
  return uploadTree(storage, outputDir, storageKeys.build(id, build), {
    ...limits,
    contentTypes: true,
    what: 'the output',
    limitNames: { files: 'MAX_OUTPUT_FILES', bytes: 'MAX_OUTPUT_MB' },
  });
}

/** Removes one build's objects. */
export async function removeBuild(storage: Storage, id: string, build: string): Promise<number> {
  return storage.deletePrefix(`${storageKeys.build(id, build)}/`);
}

/**
 * Removes every build of `id` but `keep` (the live one): what attempts that died mid-publish left.
 * Only the id's current owner calls this, so no build it removes can still become live.
 */
export async function removeStaleBuilds(storage: Storage, id: string, keep: string | undefined): Promise<string[]> {
  const stale: string[] = [];
  for await (const build of storage.listFolders(`${storageKeys.dist(id)}/`)) if (build !== keep) stale.push(build);
  for (const build of stale) await removeBuild(storage, id, build);
  return stale;
}

// Publishing: the output folder uploaded to dist/<id>/ with content types, replacing what an
// earlier attempt left there. Links and special files in the output are never followed.
import { storageKeys, uploadTree, type Storage, type UploadResult } from '@slipway/shared';

export async function publishOutput(storage: Storage, id: string, outputDir: string, concurrency: number): Promise<UploadResult> {
  // A retried or redeployed build must not serve files from the earlier one.
  await storage.deletePrefix(`${storageKeys.dist(id)}/`);
  return uploadTree(storage, outputDir, storageKeys.dist(id), { concurrency, contentTypes: true, what: 'output' });
}

// Ignored builds (shared/src/projects/watch.ts): what a project deployment records of its watched
// paths, and the step that ends a push `skipped` when they hold what the deployment its alias serves held.
import { UnavailableError, sameWatched, type DeploymentRecord, type Queue, type Watched } from '@slipway/shared';
import { platform } from './steps';

/** What a project deployment records of its watched paths, and whether it may be skipped (projects/watch.ts). */
export interface WatchPlan {
  paths: readonly string[] | 'default';
  settings: string;
  skipUnchanged: boolean;
}

/**
 * The uploading `record`, ended `skipped` when its alias serves a deployed deployment whose watched
 * paths held the same and that built with the same settings; null to build it (nothing to compare
 * with, something changed, or the alias moved meanwhile).
 */
export async function skipUnchanged(queue: Queue, record: DeploymentRecord, watched: Watched): Promise<DeploymentRecord | null> {
  const serving = await platform('Redis', () => queue.projects.aliasTarget(record.project!, record.aliasLabel!));
  const before = serving ? await platform('Redis', () => queue.get(serving)) : null;
  if (!serving || before?.status !== 'deployed' || !sameWatched(before.watched, watched)) return null;
  const paths = watched.paths.length > 6 ? `${watched.paths.slice(0, 6).join(', ')} and ${watched.paths.length - 6} more` : watched.paths.join(', ');
  const skip = {
    serving,
    commit: before.commit,
    compared: watched.paths,
    message: `none of the watched paths (${paths}) changed since commit ${before.commit?.slice(0, 12) ?? '?'}, which deployment ${serving} serves; nothing was built, and the alias stays`,
  };
  const result = await platform('Redis', () => queue.skip(record.id, serving, { skip }));
  if (result === 'moved') return null;
  if (result === 'missing') throw new UnavailableError(`the record of deployment ${record.id} was gone from Redis before it could be skipped (Redis was reset or lost its data meanwhile); try again`);
  return (await platform('Redis', () => queue.get(record.id))) ?? { ...record, status: 'skipped', skip };
}

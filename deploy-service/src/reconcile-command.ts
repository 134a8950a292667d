// `npm run reconcile`: puts back into Redis what S3 says was live (shared/src/recovery/reconcile.ts), with
// the services' own settings (REDIS_URL, S3_*), and prints what it restored and what it could not.
// Safe to run at any time, as often as wanted: it never overwrites what Redis has. Exits 0 when it
// ran (the problems it lists are for the operator), 1 when Redis or S3 could not be reached.
import { Queue, Storage, createLogger, createRedis, createS3Client, describeFailure, loadConfigOrExit, reconcile, withDeadline } from '@slipway/shared';

const CONNECT_MS = 10_000;

const config = loadConfigOrExit('deploy-service');
const logger = createLogger('reconcile', config.logLevel);
const redis = createRedis(config.redisUrl, logger);
const storage = new Storage(createS3Client(config.s3, config.uploadConcurrency), config.s3.bucket);
try {
  await withDeadline(redis.connect(), CONNECT_MS, `Redis did not answer within ${CONNECT_MS / 1000} s`);
  const report = await reconcile({ redis, storage, projects: new Queue(redis).projects });
  const { projects, deployments } = report;
  console.log(`projects: ${projects.restored} restored, ${projects.present} already in Redis`);
  console.log(`deployments: ${deployments.restored} restored, ${deployments.present} already in Redis, ${deployments.unrestorable} not restorable`);
  for (const line of report.problems) console.log(`- ${line}`);
  if (report.moreProblems > 0) console.log(`- and ${report.moreProblems} more`);
  await redis.close();
  process.exit(0);
} catch (err) {
  console.error(`reconcile: ${describeFailure(err)}`);
  process.exit(1);
}

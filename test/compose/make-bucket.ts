// CI's minio-init: makes the bucket the services use (idempotent), with the root credentials, then exits 0.
import { createS3Client, loadConfig, Storage } from '@slipway/shared';

const config = loadConfig();
await new Storage(createS3Client(config.s3, 1), config.s3.bucket).ensureBucket();
console.log(`bucket ${config.s3.bucket} is there`);

// Object storage: the S3 client settings Slipway needs, and the few operations it uses, each
// streaming its body and paging its listings.
import http from 'node:http';
import https from 'node:https';
import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Config } from './config';

export interface StoredObject {
  body: Readable;
  /** Unix permission bits recorded at upload (x-amz-meta-mode), e.g. 0o755 for a script. */
  mode: number | undefined;
  contentType: string | undefined;
  contentLength: number | undefined;
  etag: string | undefined;
}

/**
 * `transfers`: how many requests the caller runs at once (UPLOAD_CONCURRENCY). The kept-alive
 * sockets are sized to it, so a burst of uploads reuses connections instead of queueing for the
 * SDK's default 50 or opening ones it then drops.
 */
export function createS3Client(s3: Config['s3'], transfers = DEFAULT_SOCKETS): S3Client {
  const agent = { keepAlive: true, maxSockets: Math.max(DEFAULT_SOCKETS, transfers), maxFreeSockets: Math.max(DEFAULT_SOCKETS, transfers) };
  return new S3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    // MinIO, s3rver and R2 serve buckets by path; AWS by host name (S3_FORCE_PATH_STYLE overrides).
    forcePathStyle: s3.forcePathStyle,
    credentials: s3.accessKeyId && s3.secretAccessKey ? { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } : undefined,
    // Without these, a streamed PutObject to s3rver stores the SDK's chunk framing inside the object
    // (corrupt data reported as success). MinIO and AWS accept them too.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    // Without these a silent S3 hangs a build (with a live heartbeat) for ever.
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000, httpAgent: new http.Agent(agent), httpsAgent: new https.Agent(agent) },
  });
}

/** The SDK's own socket limit, kept as the floor: site serving shares the client with uploads. */
const DEFAULT_SOCKETS = 50;

/** Tries of one streamed upload before its error is the caller's. */
const PUT_FILE_ATTEMPTS = 3;

export class Storage {
  constructor(
    readonly client: S3Client,
    readonly bucket: string,
  ) {}

  /** Creates the bucket when it does not exist (local stacks and tests; compose has an init step). */
  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    }
  }

  async ping(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  /**
   * Streams a local file to `key`. The file is opened with O_NOFOLLOW, so a path that was swapped for
   * a symbolic link after the walk is refused rather than followed.
   */
  async putFile(key: string, filePath: string, size: number, options: { contentType?: string; mode?: number; signal?: AbortSignal } = {}): Promise<void> {
    // The SDK cannot retry a streamed body it has consumed, so a failure on the way (a kept-alive
    // socket the server closed just then, a 5xx) is retried here, with the file opened afresh.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.putFileOnce(key, filePath, size, options);
      } catch (err) {
        if (attempt >= PUT_FILE_ATTEMPTS || !isS3Unavailable(err) || options.signal?.aborted) throw err;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  }

  private async putFileOnce(key: string, filePath: string, size: number, options: { contentType?: string; mode?: number; signal?: AbortSignal }): Promise<void> {
    const handle = await open(filePath, constants.O_RDONLY | constants.O_NOFOLLOW);
    const body = handle.createReadStream(); // closes the handle when it ends or is destroyed
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentLength: size,
          ContentType: options.contentType,
          Metadata: options.mode === undefined ? undefined : { mode: (options.mode & 0o777).toString(8) },
        }),
        { abortSignal: options.signal },
      );
    } finally {
      body.destroy();
    }
  }

  async putText(key: string, text: string, contentType = 'text/plain; charset=utf-8'): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: text, ContentType: contentType }));
  }

  /** The object's body as a stream (or the bytes `start`–`end` of it, inclusive), or null when there is no such key. */
  async get(key: string, range?: { start: number; end: number }, signal?: AbortSignal): Promise<StoredObject | null> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range ? `bytes=${range.start}-${range.end}` : undefined }), { abortSignal: signal });
      const mode = res.Metadata?.mode ? parseInt(res.Metadata.mode, 8) : undefined;
      return { body: res.Body as Readable, mode: Number.isInteger(mode) ? mode : undefined, contentType: res.ContentType, contentLength: res.ContentLength, etag: res.ETag };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** Every object under `prefix`, a page (at most 1,000) at a time. */
  async *list(prefix: string): AsyncGenerator<{ key: string; size: number }> {
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const obj of page.Contents ?? []) {
        if (obj.Key) yield { key: obj.Key, size: obj.Size ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** The names of the "folders" directly under `prefix` (which ends with `/`), a page at a time. */
  async *listFolders(prefix: string): AsyncGenerator<string> {
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
      for (const common of page.CommonPrefixes ?? []) {
        if (common.Prefix) yield common.Prefix.slice(prefix.length).replace(/\/$/, '');
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Deletes every object under `prefix`, 1,000 keys per request. */
  async deletePrefix(prefix: string): Promise<number> {
    let deleted = 0;
    let batch: string[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      await this.deleteKeys(batch);
      deleted += batch.length;
      batch = [];
    };
    for await (const { key } of this.list(prefix)) {
      batch.push(key);
      if (batch.length === 1000) await flush();
    }
    await flush();
    return deleted;
  }

  private async deleteKeys(keys: string[]): Promise<void> {
    // s3rver sometimes answers 500 to DeleteObjects on keys under a `/` prefix (a race inside it); retry.
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
        );
        const failed = res.Errors ?? [];
        if (failed.length === 0) return;
        if (attempt >= 3) throw new Error(`could not delete ${failed.length} objects, e.g. ${failed[0]?.Key}: ${failed[0]?.Message}`);
      } catch (err) {
        if (attempt >= 3) throw err;
      }
    }
  }
}

export function isNotFound(err: unknown): boolean {
  if (err instanceof S3ServiceException) {
    return err.$metadata.httpStatusCode === 404 || err.name === 'NoSuchKey' || err.name === 'NotFound' || err.name === 'NoSuchBucket';
  }
  return false;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'EPIPE', 'EAI_AGAIN']);

/** True for errors that mean "S3 is not reachable or not well right now". */
export function isS3Unavailable(err: unknown): boolean {
  if (err instanceof S3ServiceException) return (err.$metadata.httpStatusCode ?? 500) >= 500;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && NETWORK_CODES.has(code);
}

/** Where a deployment's objects live in the bucket. */
export const storageKeys = {
  source: (id: string) => `source/${id}`,
  dist: (id: string) => `dist/${id}`,
  /** One build's output: each build publishes under its own prefix, so a site never shows a half-published build. */
  build: (id: string, build: string) => `dist/${id}/${build}`,
  log: (id: string) => `logs/${id}.log`,
  /** A repository's build cache (see deploy-service/src/cache.ts). */
  cache: (repo: string) => `cache/${repo}`,
} as const;

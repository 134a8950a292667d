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
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
// Before any client is made: the SDK's own Node version warning is said once elsewhere (node-support.ts).
import '../node-support';
import type { Config } from '../config';
import { UnavailableError, describeError } from '../errors';

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
/** Where S3 is and how to talk to it: what every client of Slipway's (and the bench's) starts from. */
export function s3ClientSettings(s3: Config['s3']): S3ClientConfig {
  return {
    region: s3.region,
    endpoint: s3.endpoint,
    // MinIO, s3rver and R2 serve buckets by path; AWS by host name (S3_FORCE_PATH_STYLE overrides).
    forcePathStyle: s3.forcePathStyle,
    credentials: s3.accessKeyId && s3.secretAccessKey ? { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } : undefined,
    // Without these, a streamed PutObject to s3rver stores the SDK's chunk framing inside the object
    // (corrupt data reported as success). MinIO and AWS accept them too.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

export function createS3Client(s3: Config['s3'], transfers = DEFAULT_SOCKETS): S3Client {
  // A silent S3 must end every request: connecting within 5 s, then no socket idle longer than
  // S3_TIMEOUT_SECONDS (an upload or download that makes progress goes on), and at most 15 minutes
  // whole. requestTimeout without throwOnRequestTimeout only logs a warning (@smithy/node-http-handler 4.14).
  const timeouts = { connectionTimeout: 5_000, socketTimeout: s3.timeoutMs, requestTimeout: 15 * 60_000, throwOnRequestTimeout: true };
  const agent = { keepAlive: true, maxSockets: Math.max(DEFAULT_SOCKETS, transfers), maxFreeSockets: Math.max(DEFAULT_SOCKETS, transfers) };
  return new S3Client({
    ...s3ClientSettings(s3),
    maxAttempts: 3,
    requestHandler: { ...timeouts, httpAgent: new http.Agent(agent), httpsAgent: new https.Agent(agent) },
  });
}

/** The SDK's own socket limit, kept as the floor: site serving shares the client with uploads. */
const DEFAULT_SOCKETS = 50;

/** putStream's parts: S3's smallest (but the last) is 5 MB; 2 in flight keep a far S3 busy, and hold ~15 MB. */
const STREAM_PART_BYTES = 5 * 1024 * 1024;
const STREAM_PARTS_IN_FLIGHT = 2;

/** Tries of one streamed upload before its error is the caller's. */
const PUT_FILE_ATTEMPTS = 3;

/**
 * S3 did not answer, or answered that it is not well: the error names object storage, whatever the
 * SDK said, and only the kind of failure (its address, say, stays in the cause, for the logs).
 */
export class S3UnavailableError extends UnavailableError {
  constructor(cause: unknown) {
    super(`object storage (S3) is unavailable (${failureKind(cause)})`, cause);
    this.name = 'S3UnavailableError';
  }
}

/** A word for how a call failed: its code, an HTTP status, or its error's name. */
export function failureKind(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown; $metadata?: { httpStatusCode?: number } } | null;
  if (typeof e?.code === 'string') return e.code;
  if (e?.$metadata?.httpStatusCode) return `HTTP ${e.$metadata.httpStatusCode}`;
  if (e?.name === 'TimeoutError') return 'no answer in time';
  return typeof e?.name === 'string' ? e.name : describeError(err).slice(0, 60);
}

export class Storage {
  constructor(
    readonly client: S3Client,
    readonly bucket: string,
  ) {}

  /**
   * One request; an unavailable S3 becomes S3UnavailableError, and so does a caller's deadline (a
   * signal aborted with a TimeoutError, as AbortSignal.timeout does); any other abort (a cancel) is the caller's.
   */
  private async call<T>(request: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    try {
      return await request();
    } catch (err) {
      if (err instanceof S3UnavailableError) throw err;
      if (signal?.aborted) throw (signal.reason as { name?: unknown } | undefined)?.name === 'TimeoutError' ? new S3UnavailableError(signal.reason) : err;
      if (isS3Unavailable(err)) throw new S3UnavailableError(err);
      throw err;
    }
  }

  /** Creates the bucket when it does not exist (local stacks and tests; compose has an init step). */
  async ensureBucket(): Promise<void> {
    try {
      await this.call(() => this.client.send(new HeadBucketCommand({ Bucket: this.bucket })));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.call(() => this.client.send(new CreateBucketCommand({ Bucket: this.bucket })));
    }
  }

  /** One cheap request (readiness); `signal` bounds it. */
  async ping(signal?: AbortSignal): Promise<void> {
    await this.call(() => this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: signal }), signal);
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
      const command = new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ContentLength: size,
        ContentType: options.contentType,
        Metadata: options.mode === undefined ? undefined : { mode: (options.mode & 0o777).toString(8) },
      });
      await this.call(() => this.client.send(command, { abortSignal: options.signal }), options.signal);
    } finally {
      body.destroy();
    }
  }

  /**
   * Streams `body`, whose length is not known ahead (an archive being made), to `key` as one multipart
   * upload (one PutObject when it is under a part): parts of 5 MB, at most 2 in flight, so about 15 MB
   * is held at once whatever the size. A failure, of the body or of S3, aborts the upload: no parts are
   * left behind.
   */
  async putStream(key: string, body: Readable, options: { contentType?: string; signal?: AbortSignal } = {}): Promise<void> {
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: options.contentType },
      partSize: STREAM_PART_BYTES,
      queueSize: STREAM_PARTS_IN_FLIGHT,
      leavePartsOnError: false,
    });
    const stop = () => void upload.abort().catch(() => undefined);
    options.signal?.addEventListener('abort', stop, { once: true });
    try {
      await this.call(() => upload.done(), options.signal);
    } catch (err) {
      body.destroy();
      throw err;
    } finally {
      options.signal?.removeEventListener('abort', stop);
    }
  }

  async putText(key: string, text: string, contentType = 'text/plain; charset=utf-8'): Promise<void> {
    await this.call(() => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: text, ContentType: contentType })));
  }

  /** The object's body as a stream (or the bytes `start`–`end` of it, inclusive), or null when there is no such key. */
  async get(key: string, range?: { start: number; end: number }, signal?: AbortSignal): Promise<StoredObject | null> {
    try {
      const res = await this.call(() => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range ? `bytes=${range.start}-${range.end}` : undefined }), { abortSignal: signal }), signal);
      const mode = res.Metadata?.mode ? parseInt(res.Metadata.mode, 8) : undefined;
      return { body: res.Body as Readable, mode: Number.isInteger(mode) ? mode : undefined, contentType: res.ContentType, contentLength: res.ContentLength, etag: res.ETag };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** A small object's text (JSON written by Slipway), or null when there is none; over `maxBytes` is an error. */
  async getText(key: string, maxBytes: number, signal?: AbortSignal): Promise<string | null> {
    const object = await this.get(key, undefined, signal);
    if (!object) return null;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of object.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) {
        object.body.destroy();
        throw new Error(`${key} is over ${maxBytes} bytes`);
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  /** Every object under `prefix`, a page (at most 1,000) at a time, or only the first `limit`. */
  async *list(prefix: string, limit?: number): AsyncGenerator<{ key: string; size: number; lastModified: Date | undefined }> {
    let token: string | undefined;
    do {
      const page = await this.call(() => this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token, MaxKeys: limit })));
      for (const obj of page.Contents ?? []) {
        if (obj.Key) yield { key: obj.Key, size: obj.Size ?? 0, lastModified: obj.LastModified };
      }
      token = page.IsTruncated && limit === undefined ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /**
   * The names of the "folders" directly under `prefix` (which ends with `/`), a page at a time; with
   * `startAfter`, only those after that name.
   */
  async *listFolders(prefix: string, startAfter?: string): AsyncGenerator<string> {
    let token: string | undefined;
    do {
      const page = await this.call(() =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token, StartAfter: token ? undefined : startAfter && `${prefix}${startAfter}/\u{10FFFF}` })),
      );
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
        const res = await this.call(() => this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } })));
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

/** True for errors that mean "S3 is not reachable or not well right now" (a timeout included). */
export function isS3Unavailable(err: unknown): boolean {
  if (err instanceof S3UnavailableError) return true;
  if (err instanceof S3ServiceException) return (err.$metadata.httpStatusCode ?? 500) >= 500;
  // The HTTP handler's own timeouts (connection, idle socket, whole request).
  if ((err as { name?: unknown } | null)?.name === 'TimeoutError') return true;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && NETWORK_CODES.has(code);
}

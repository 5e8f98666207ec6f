import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetBucketLifecycleConfigurationCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  paginateListObjectsV2,
  PutBucketLifecycleConfigurationCommand,
  PutObjectTaggingCommand,
  S3Client,
  type HeadObjectCommandOutput,
  type LifecycleRule,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import { addAbortSignal, pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import { writeFileAtomically } from './atomic-file.js';
import { assertDigest, sameDigest, Sha256Meter, sha256OfBytes, sha256OfStream, type Digest } from './hash.js';
import {
  assertSafeKey,
  assertSafePrefix,
  IntegrityError,
  ObjectNotFoundError,
  storageFailure,
  type GetOptions,
  type ObjectInfo,
  type PutOptions,
  type Repository,
} from './repository.js';

/** S11: every object is encrypted at rest, with a KMS key (SSE_KMS_KEY_ID) or S3-managed keys (SSE_S3=AES256). */
export type ServerSideEncryption = { kind: 'aws:kms'; kmsKeyId: string } | { kind: 'AES256' };

export interface S3RepositoryOptions {
  /** Defaults to `s3`; a second S3 repository gets its configured name. */
  name?: string;
  bucket: string;
  /** Keys map under `<prefix>/` (S3_PREFIX, e.g. `erp4/prod`); empty for the bucket root. */
  prefix: string;
  region: string;
  /** For S3-compatible stores (S3_ENDPOINT_URL). */
  endpoint?: string;
  forcePathStyle?: boolean;
  /** Omitted: the SDK's default chain (environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  sse: ServerSideEncryption;
  /**
   * Multipart part size for objects up to 10,000 parts of it; a larger object gets larger parts
   * (see partSizeFor). Memory use is up to queueSize * the part size.
   */
  partSizeBytes: number;
  /** Parts uploaded in parallel; default 4. */
  queueSize?: number;
  /**
   * Credentials that may put but not read (the S15 writer role, deploy/iam/writer.json): AWS
   * authorizes HeadObject as s3:GetObject, so a put cannot be read back. Puts then skip the
   * "already stored?" check (re-uploading the same bytes is harmless) and verify with what the
   * upload itself returns: the server's SHA256 checksum of the stored parts and its encryption
   * mode. A mismatch throws IntegrityError; the object cannot be deleted by this role, but no
   * manifest ever names it and Prune reaps it.
   */
  writeOnly?: boolean;
  /**
   * Tags for a put that names none (PutOptions.tags), by key: how objects get the lifecycle
   * tier their key implies (src/lifecycle.ts objectTagsForKey). Undefined: no tags.
   */
  objectTags?: (key: string) => Record<string, string> | undefined;
  /**
   * Immutable objects (S3_OBJECT_LOCK_MODE; the bucket must have Object Lock, hence versioning):
   * every put carries the lock `mode` and `retainUntil(key)`, and refuses to replace an existing
   * key (`If-None-Match: *`, and a HeadObject first where the role may read) unless the put says
   * `overwrite`; delete removes every version of a key (what Prune does once the lock ended).
   */
  objectLock?: { mode: 'GOVERNANCE' | 'COMPLIANCE'; retainUntil: (key: string) => Date };
}

/**
 * A put that would replace an existing object of an immutable (Object Lock) repository, or an
 * upload that failed verification where it cannot be replaced: retrying cannot help.
 */
export class ImmutableObjectError extends Error {
  override readonly name = 'ImmutableObjectError';
}

/** A multipart upload that was started and never completed nor aborted (it costs storage). */
export interface IncompleteUpload {
  key: string;
  uploadId: string;
  initiatedAt: Date | undefined;
}

const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
const MAX_PARTS = 10_000;
const DEFAULT_QUEUE_SIZE = 4;
/** Metadata key holding the sha256 (hex) of the object's content, set on every put. */
const SHA256_METADATA = 'sha256';
const METADATA_KEY = /^[a-z0-9][a-z0-9_-]*$/;
const METADATA_VALUE = /^[\x20-\x7e]*$/;
/** S3 object tags: at most 10, keys 1-128 and values 0-256 of these characters. */
const MAX_TAGS = 10;
const TAG_TEXT = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

const MiB = 1024 * 1024;

/**
 * The part size for an object of `size` bytes: `configured`, or for an object larger than
 * 10,000 such parts (S3's limit) the smallest whole number of MiB that fits it in 10,000 parts.
 * The configured size stays small (memory: queueSize parts are buffered) without capping the
 * object size.
 */
export function partSizeFor(size: number, configured: number): number {
  if (size <= configured * MAX_PARTS) return configured;
  const needed = Math.ceil(size / MAX_PARTS / MiB) * MiB;
  if (needed > MAX_PART_SIZE) throw new Error(`${size} bytes exceed S3's limit of ${MAX_PARTS} parts of 5 GiB`);
  return needed;
}

function isNotFound(error: unknown): boolean {
  const name = (error as { name?: string } | undefined)?.name;
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  return name === 'NoSuchKey' || name === 'NotFound' || status === 404;
}

function validatedOptions(options: S3RepositoryOptions): S3RepositoryOptions & { prefix: string; queueSize: number } {
  if (!options.bucket) throw new Error('S3Repository bucket must not be empty');
  if (!options.region) throw new Error('S3Repository region must not be empty');
  const prefix = options.prefix.replace(/\/+$/, '');
  try {
    if (prefix !== '') assertSafeKey(prefix);
  } catch {
    throw new Error(`S3Repository prefix must be a relative path without '..' or '//', got ${JSON.stringify(options.prefix)}`);
  }
  if (!Number.isSafeInteger(options.partSizeBytes) || options.partSizeBytes < MIN_PART_SIZE || options.partSizeBytes > MAX_PART_SIZE) {
    throw new Error(`S3Repository partSizeBytes must be an integer from ${MIN_PART_SIZE} (5 MiB) to ${MAX_PART_SIZE} (5 GiB), got ${options.partSizeBytes}`);
  }
  const queueSize = options.queueSize ?? DEFAULT_QUEUE_SIZE;
  if (!Number.isSafeInteger(queueSize) || queueSize < 1) throw new Error(`S3Repository queueSize must be a positive integer, got ${queueSize}`);
  if (options.sse.kind === 'aws:kms' && !options.sse.kmsKeyId) throw new Error('S3Repository sse.kmsKeyId must not be empty');
  return { ...options, prefix, queueSize };
}

function validatedMetadata(key: string, metadata: Record<string, string> = {}): Record<string, string> {
  for (const [name, value] of Object.entries(metadata)) {
    if (!METADATA_KEY.test(name)) throw new Error(`${key}: metadata key ${JSON.stringify(name)} must be lower-case letters, digits, '_' or '-'`);
    if (name === SHA256_METADATA) throw new Error(`${key}: metadata key ${JSON.stringify(name)} is reserved (the backend sets it)`);
    if (!METADATA_VALUE.test(value)) throw new Error(`${key}: metadata ${name} must be printable ASCII`);
  }
  return metadata;
}

function validatedTags(key: string, tags: Record<string, string> | undefined): { Key: string; Value: string }[] {
  const entries = Object.entries(tags ?? {});
  if (entries.length > MAX_TAGS) throw new Error(`${key}: at most ${MAX_TAGS} tags, got ${entries.length}`);
  for (const [name, value] of entries) {
    if (name.length < 1 || name.length > 128 || !TAG_TEXT.test(name)) throw new Error(`${key}: tag key ${JSON.stringify(name)} is not a valid S3 tag key`);
    if (value.length > 256 || !TAG_TEXT.test(value)) throw new Error(`${key}: tag ${name} value ${JSON.stringify(value)} is not a valid S3 tag value`);
  }
  return entries.map(([Key, Value]) => ({ Key, Value }));
}

function isPreconditionFailed(error: unknown): boolean {
  const name = (error as { name?: string } | undefined)?.name;
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  return name === 'PreconditionFailed' || status === 412;
}

function isNoLifecycleConfiguration(error: unknown): boolean {
  return (error as { name?: string } | undefined)?.name === 'NoSuchLifecycleConfiguration';
}

/**
 * Sha256 of each part at the part-size boundaries lib-storage cuts, to compute the SHA256
 * checksum S3 reports for the object: the plain digest of a single PutObject (up to one
 * part), or for a multipart upload the digest of the parts' digests, written `<base64>-<parts>`.
 */
class PartChecksums extends Transform {
  private readonly partDigests: Buffer[] = [];
  private hash: Hash = createHash('sha256');
  private bytesInPart = 0;
  private bytes = 0;

  constructor(private readonly partSize: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    for (let offset = 0; offset < chunk.length; ) {
      const take = Math.min(this.partSize - this.bytesInPart, chunk.length - offset);
      this.hash.update(chunk.subarray(offset, offset + take));
      this.bytesInPart += take;
      offset += take;
      if (this.bytesInPart === this.partSize) {
        this.partDigests.push(this.hash.digest());
        this.hash = createHash('sha256');
        this.bytesInPart = 0;
      }
    }
    this.bytes += chunk.length;
    callback(null, chunk);
  }

  /** Both spellings S3 servers use for the object's checksum (with and without the part count). */
  objectChecksums(): string[] {
    const digests = this.bytesInPart > 0 || this.partDigests.length === 0 ? [...this.partDigests, this.hash.digest()] : this.partDigests;
    if (this.bytes <= this.partSize) return [digests[0]!.toString('base64')];
    const composite = createHash('sha256').update(Buffer.concat(digests)).digest('base64');
    return [composite, `${composite}-${digests.length}`];
  }
}

/**
 * A view of `client` that sends every request with `signal`, except AbortMultipartUpload.
 * lib-storage's Upload sends its requests without a signal (Upload.abort() only stops new
 * parts, and rejects before the multipart upload is cleaned up); with this view an abort stops
 * the parts in flight at once, the upload fails, and lib-storage's cleanup still runs.
 */
function clientWithSignal(client: S3Client, signal: AbortSignal): S3Client {
  const view = Object.create(client) as S3Client;
  const send = (command: Parameters<S3Client['send']>[0], options?: Record<string, unknown>) =>
    client.send(command, command instanceof AbortMultipartUploadCommand ? options : { ...options, abortSignal: signal });
  view.send = send as S3Client['send'];
  return view;
}

/**
 * An S3 bucket (or S3-compatible store) under a key prefix.
 *
 * Verification of a put, in layers:
 * - the bytes are hashed as they are read; unless size and sha256 equal `expected` the body
 *   stream fails before its end, so the upload is never completed (the multipart upload is
 *   aborted) and no object appears;
 * - every request carries a SHA256 checksum (ChecksumAlgorithm, per part for multipart): AWS S3
 *   rejects a part whose bytes differ. moto 5 (the test server) does not reject but computes the
 *   checksum itself and reports it, so
 * - after the upload, HeadObject must show the expected size, the `sha256` metadata, the SSE
 *   mode and, when the server reports one, the SHA256 checksum computed over the parts it stored,
 *   equal to the one computed locally; otherwise the object is deleted and IntegrityError thrown.
 * A put of content already stored (same size and `sha256` metadata, encrypted) is skipped.
 */
export class S3Repository implements Repository {
  readonly name: string;
  private readonly client: S3Client;
  private readonly options: ReturnType<typeof validatedOptions>;

  constructor(options: S3RepositoryOptions) {
    this.options = validatedOptions(options);
    this.name = options.name ?? 's3';
    this.client = new S3Client({
      region: options.region,
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle,
      credentials: options.credentials,
      // S3-compatible stores do not all accept the SDK's default CRC32 checksums; the puts
      // below ask for SHA256 explicitly.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  private objectKey(key: string): string {
    assertSafeKey(key);
    return this.options.prefix ? `${this.options.prefix}/${key}` : key;
  }

  private get keyPrefixLength(): number {
    return this.options.prefix ? this.options.prefix.length + 1 : 0;
  }

  private sseParams(): { ServerSideEncryption: 'aws:kms' | 'AES256'; SSEKMSKeyId?: string } {
    const sse = this.options.sse;
    return sse.kind === 'aws:kms' ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: sse.kmsKeyId } : { ServerSideEncryption: 'AES256' };
  }

  private async head(objectKey: string, signal?: AbortSignal): Promise<HeadObjectCommandOutput | undefined> {
    try {
      return await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: objectKey, ChecksumMode: 'ENABLED' }), {
        abortSignal: signal,
      });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** True when the object exists with this content (by size and `sha256` metadata) and is encrypted as configured. */
  private holds(head: HeadObjectCommandOutput | undefined, expected: Digest): boolean {
    return (
      head?.ContentLength === expected.size &&
      head.Metadata?.[SHA256_METADATA] === expected.sha256 &&
      head.ServerSideEncryption === this.options.sse.kind
    );
  }

  async putFile(key: string, sourcePath: string, options: PutOptions): Promise<void> {
    const objectKey = this.objectKey(key);
    assertDigest(key, options.expected);
    const metadata = validatedMetadata(key, options.metadata);
    const tags = validatedTags(key, options.tags ?? this.options.objectTags?.(key));
    try {
      options.signal?.throwIfAborted();
      const partSize = partSizeFor(options.expected.size, this.options.partSizeBytes);
      if (await this.needsUpload(key, objectKey, options.expected, options)) {
        await this.upload(key, objectKey, createReadStream(sourcePath), options.expected, partSize, { ...options, metadata, tags });
      }
      options.onProgress?.(options.expected.size);
    } catch (error) {
      throw storageFailure(this.name, 'putFile', key, error);
    }
  }

  async putBytes(key: string, body: Uint8Array, options: Omit<PutOptions, 'expected' | 'onProgress'> = {}): Promise<void> {
    const objectKey = this.objectKey(key);
    const metadata = validatedMetadata(key, options.metadata);
    const tags = validatedTags(key, options.tags ?? this.options.objectTags?.(key));
    try {
      options.signal?.throwIfAborted();
      const digest = sha256OfBytes(body);
      if (await this.needsUpload(key, objectKey, digest, options)) {
        await this.upload(key, objectKey, Readable.from([body]), digest, this.options.partSizeBytes, { ...options, metadata, tags });
      }
    } catch (error) {
      throw storageFailure(this.name, 'putBytes', key, error);
    }
  }

  /**
   * False when the object already holds this content. An immutable repository refuses other
   * content under an existing key here, before any byte is sent (a write-only role cannot
   * look: the conditional put refuses it instead).
   */
  private async needsUpload(key: string, objectKey: string, expected: Digest, options: { signal?: AbortSignal; overwrite?: boolean }): Promise<boolean> {
    if (this.options.writeOnly) return true;
    const head = await this.head(objectKey, options.signal);
    if (this.holds(head, expected)) return false;
    if (head !== undefined && this.options.objectLock && !options.overwrite) throw this.overwriteRefused(key);
    return true;
  }

  private overwriteRefused(key: string): ImmutableObjectError {
    return new ImmutableObjectError(
      `${this.name}: refusing to overwrite ${key}: it exists with other content, and this repository is immutable (Object Lock); a backup never replaces a stored object`,
    );
  }

  private async upload(
    key: string,
    objectKey: string,
    source: Readable,
    expected: Digest,
    partSize: number,
    options: Omit<PutOptions, 'expected' | 'tags'> & { metadata: Record<string, string>; tags: { Key: string; Value: string }[] },
  ): Promise<void> {
    const partChecksums = new PartChecksums(partSize);
    let bodyError: unknown;
    const body = pipeline(source, new Sha256Meter({ expect: { key, digest: expected } }), partChecksums, (error) => {
      bodyError ??= error;
    });
    const upload = new Upload({
      client: options.signal ? clientWithSignal(this.client, options.signal) : this.client,
      params: {
        Bucket: this.options.bucket,
        Key: objectKey,
        Body: body,
        ContentType: 'application/octet-stream',
        Metadata: { ...options.metadata, [SHA256_METADATA]: expected.sha256 },
        ChecksumAlgorithm: 'SHA256',
        ...this.sseParams(),
        ...this.lockParams(key, options.overwrite === true),
      },
      partSize,
      queueSize: this.options.queueSize,
      leavePartsOnError: false,
      // Set by PutObjectTagging right after the upload completes: until then the object has
      // no tier, which no lifecycle rule expires.
      tags: options.tags,
    });
    upload.on('httpUploadProgress', ({ loaded }) => {
      if (loaded !== undefined) options.onProgress?.(loaded);
    });
    let stored: { ChecksumSHA256?: string; ServerSideEncryption?: string };
    try {
      stored = await upload.done();
    } catch (error) {
      if (bodyError === undefined && isPreconditionFailed(error)) return this.alreadyStored(key, objectKey, expected);
      // An integrity failure of the body surfaces in lib-storage as whatever failed first.
      throw bodyError ?? error;
    } finally {
      body.destroy();
    }
    if (!this.options.writeOnly) {
      await this.verifyStored(key, objectKey, expected, partChecksums.objectChecksums(), expected.size <= partSize);
      return;
    }
    try {
      this.verifyUploadResponse(key, expected, stored, partChecksums.objectChecksums());
    } catch (error) {
      // The writer can neither delete nor (conditional put) replace the bad object: a retry would
      // take it for its own earlier put. The backup fails here; no manifest will name the object.
      if (this.options.objectLock) throw new ImmutableObjectError(`${(error as Error).message}; the object is immutable and stays as it is`);
      throw error;
    }
  }

  /** Object Lock parameters of a put, and `If-None-Match: *` unless it replaces on purpose. */
  private lockParams(key: string, overwrite: boolean) {
    const lock = this.options.objectLock;
    if (!lock) return {};
    return { ObjectLockMode: lock.mode, ObjectLockRetainUntilDate: lock.retainUntil(key), ...(overwrite ? {} : { IfNoneMatch: '*' }) };
  }

  /**
   * The conditional put found the key taken (412). With a role that may read, it is this put's
   * content (a retry after a put that completed) or a refusal. A write-only role cannot look:
   * it accepts the object as its own earlier put, as it accepts every put it cannot read back;
   * the manifest's sha256, `verify` and every restore check the content.
   */
  private async alreadyStored(key: string, objectKey: string, expected: Digest): Promise<void> {
    if (this.options.writeOnly) return;
    if (!this.holds(await this.head(objectKey), expected)) throw this.overwriteRefused(key);
  }

  /** Write-only verification: what PutObject / CompleteMultipartUpload answered. */
  private verifyUploadResponse(key: string, expected: Digest, stored: { ChecksumSHA256?: string; ServerSideEncryption?: string }, checksums: string[]): void {
    if (stored.ChecksumSHA256 !== undefined && !checksums.includes(stored.ChecksumSHA256)) {
      throw new IntegrityError(key, expected, { size: expected.size }, `the server's SHA256 checksum ${stored.ChecksumSHA256} differs from ${checksums[0]} computed while uploading`);
    }
    if (stored.ServerSideEncryption !== undefined && stored.ServerSideEncryption !== this.options.sse.kind) {
      throw new Error(`the server stored the object with encryption ${stored.ServerSideEncryption}, not ${this.options.sse.kind}`);
    }
  }

  private async verifyStored(key: string, objectKey: string, expected: Digest, checksums: string[], singlePart: boolean): Promise<void> {
    const head = await this.head(objectKey);
    let problem: Error | undefined;
    if (head?.ContentLength !== expected.size || head.Metadata?.[SHA256_METADATA] !== expected.sha256) {
      problem = new IntegrityError(key, expected, { size: head?.ContentLength ?? 0, sha256: head?.Metadata?.[SHA256_METADATA] });
    } else if (head.ChecksumSHA256 !== undefined && !checksums.includes(head.ChecksumSHA256)) {
      problem = new IntegrityError(
        key,
        expected,
        { size: head.ContentLength },
        `the server's SHA256 checksum ${head.ChecksumSHA256} differs from ${checksums[0]} computed while uploading`,
      );
    } else if (head.ServerSideEncryption !== this.options.sse.kind) {
      problem = new Error(`the server stored the object with encryption ${String(head.ServerSideEncryption)}, not ${this.options.sse.kind}`);
    } else if (singlePart) {
      // The checksum of a single PutObject may be the request's header echoed back (moto does
      // that; AWS S3 validates it): read the object back, at most one part's bytes.
      const stored = await sha256OfStream((await this.getObject(key, objectKey)).body);
      if (!sameDigest(stored, expected)) problem = new IntegrityError(key, expected, stored, 'read back after the upload');
    }
    if (problem) {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: objectKey }));
      throw problem;
    }
  }

  private async getObject(key: string, objectKey: string, signal?: AbortSignal) {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: objectKey }), { abortSignal: signal });
      if (!(response.Body instanceof Readable)) throw new Error('GetObject returned no readable body');
      return { body: response.Body, size: response.ContentLength };
    } catch (error) {
      throw isNotFound(error) ? new ObjectNotFoundError(this.name, key) : error;
    }
  }

  async getFile(key: string, destPath: string, options: GetOptions = {}): Promise<void> {
    const objectKey = this.objectKey(key);
    try {
      options.signal?.throwIfAborted();
      const { body, size } = await this.getObject(key, objectKey, options.signal);
      try {
        await writeFileAtomically(resolve(destPath), body, {
          onProgress: options.onProgress,
          signal: options.signal,
          verify: (written) => {
            if (size !== undefined && written.size !== size) throw new Error(`download ended after ${written.size} of ${size} bytes`);
          },
        });
      } finally {
        body.destroy();
      }
    } catch (error) {
      throw storageFailure(this.name, 'getFile', key, error, options.signal);
    }
  }

  async getBytes(key: string): Promise<Buffer> {
    const objectKey = this.objectKey(key);
    try {
      const { body } = await this.getObject(key, objectKey);
      return Buffer.concat(await body.toArray());
    } catch (error) {
      throw storageFailure(this.name, 'getBytes', key, error);
    }
  }

  async openRead(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    const objectKey = this.objectKey(key);
    try {
      options.signal?.throwIfAborted();
      const { body } = await this.getObject(key, objectKey, options.signal);
      // The request's signal stops waiting for the response; this one stops the body too.
      return options.signal ? addAbortSignal(options.signal, body) : body;
    } catch (error) {
      throw storageFailure(this.name, 'openRead', key, error, options.signal);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const objectKey = this.objectKey(key);
    try {
      const head = await this.head(objectKey);
      return head ? { key, size: head.ContentLength ?? 0, modifiedAt: head.LastModified ?? new Date(0) } : undefined;
    } catch (error) {
      throw storageFailure(this.name, 'stat', key, error);
    }
  }

  /**
   * The server-side encryption S3 reports for `key` (HeadObject: the mode and, for SSE-KMS, the
   * key's ARN); undefined when the object does not exist. `erp4-backup check` compares it with
   * SSE_KMS_KEY_ID / SSE_S3.
   */
  async encryptionOf(key: string): Promise<{ serverSideEncryption: string | undefined; kmsKeyId: string | undefined } | undefined> {
    const objectKey = this.objectKey(key);
    try {
      const head = await this.head(objectKey);
      return head ? { serverSideEncryption: head.ServerSideEncryption, kmsKeyId: head.SSEKMSKeyId } : undefined;
    } catch (error) {
      throw storageFailure(this.name, 'encryptionOf', key, error);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    assertSafePrefix(prefix);
    const found: ObjectInfo[] = [];
    try {
      const pages = paginateListObjectsV2(
        { client: this.client },
        { Bucket: this.options.bucket, Prefix: this.listPrefix(prefix) },
      );
      for await (const page of pages) {
        for (const object of page.Contents ?? []) {
          if (object.Key === undefined) continue;
          found.push({ key: object.Key.slice(this.keyPrefixLength), size: object.Size ?? 0, modifiedAt: object.LastModified ?? new Date(0) });
        }
      }
    } catch (error) {
      throw storageFailure(this.name, 'list', prefix, error);
    }
    return found;
  }

  private listPrefix(prefix: string): string {
    return this.options.prefix ? `${this.options.prefix}/${prefix}` : prefix;
  }

  async delete(key: string): Promise<void> {
    const objectKey = this.objectKey(key);
    try {
      if (this.options.objectLock) {
        await this.deleteEveryVersion(objectKey);
        return;
      }
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: objectKey }));
    } catch (error) {
      if (isNotFound(error)) return;
      throw storageFailure(this.name, 'delete', key, error);
    }
  }

  /**
   * An Object Lock bucket is versioned: a plain delete only adds a delete marker and keeps the
   * bytes. Deleting each version (and marker) frees them; S3 refuses a version still locked.
   */
  private async deleteEveryVersion(objectKey: string): Promise<void> {
    let markers: { KeyMarker?: string; VersionIdMarker?: string } = {};
    for (;;) {
      const page = await this.client.send(new ListObjectVersionsCommand({ Bucket: this.options.bucket, Prefix: objectKey, ...markers }));
      const versions = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].filter((version) => version.Key === objectKey && version.VersionId !== undefined);
      for (const version of versions) {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: objectKey, VersionId: version.VersionId }));
      }
      if (!page.IsTruncated) return;
      markers = { KeyMarker: page.NextKeyMarker, VersionIdMarker: page.NextVersionIdMarker };
    }
  }

  /**
   * When the Object Lock of `key` ends; undefined when it has none (or the object is gone).
   * GetObjectRetention needs only s3:GetObjectRetention (the pruner may not read artifacts,
   * deploy/iam/pruner.json). A store that does not implement it (moto 5 answers with the
   * object itself) is asked with HeadObject, which carries the same date.
   */
  async lockedUntil(key: string): Promise<Date | undefined> {
    const objectKey = this.objectKey(key);
    try {
      const { Retention } = await this.client.send(new GetObjectRetentionCommand({ Bucket: this.options.bucket, Key: objectKey }));
      return Retention?.RetainUntilDate;
    } catch (error) {
      const name = (error as { name?: string }).name;
      if (isNotFound(error) || name === 'NoSuchObjectLockConfiguration' || name === 'ObjectLockConfigurationNotFoundError') return undefined;
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status !== 200 && status !== 501) throw storageFailure(this.name, 'lockedUntil', key, error);
    }
    try {
      return (await this.head(objectKey))?.ObjectLockRetainUntilDate;
    } catch (error) {
      throw storageFailure(this.name, 'lockedUntil', key, error);
    }
  }

  /** Whether this repository puts immutable objects (S3_OBJECT_LOCK_MODE). */
  get immutable(): boolean {
    return this.options.objectLock !== undefined;
  }

  /** Whether the bucket was created with Object Lock enabled (it cannot be turned on later for existing buckets without versioning). */
  async bucketHasObjectLock(): Promise<boolean> {
    try {
      const { ObjectLockConfiguration } = await this.client.send(new GetObjectLockConfigurationCommand({ Bucket: this.options.bucket }));
      return ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
    } catch (error) {
      if ((error as { name?: string }).name === 'ObjectLockConfigurationNotFoundError') return false;
      throw storageFailure(this.name, 'bucketHasObjectLock', this.options.bucket, error);
    }
  }

  /** Multipart uploads under `prefix` that were started and never completed nor aborted (prune reaps them). */
  async listIncompleteUploads(prefix = ''): Promise<IncompleteUpload[]> {
    assertSafePrefix(prefix);
    const found: IncompleteUpload[] = [];
    try {
      let markers: { KeyMarker?: string; UploadIdMarker?: string } = {};
      for (;;) {
        const page = await this.client.send(
          new ListMultipartUploadsCommand({ Bucket: this.options.bucket, Prefix: this.listPrefix(prefix), ...markers }),
        );
        for (const upload of page.Uploads ?? []) {
          if (upload.Key === undefined || upload.UploadId === undefined) continue;
          found.push({ key: upload.Key.slice(this.keyPrefixLength), uploadId: upload.UploadId, initiatedAt: upload.Initiated });
        }
        if (!page.IsTruncated) return found;
        markers = { KeyMarker: page.NextKeyMarker, UploadIdMarker: page.NextUploadIdMarker };
      }
    } catch (error) {
      throw storageFailure(this.name, 'listIncompleteUploads', prefix, error);
    }
  }

  /** Aborts an incomplete multipart upload (its parts are deleted); one already gone is fine. */
  async abortIncompleteUpload(upload: Pick<IncompleteUpload, 'key' | 'uploadId'>): Promise<void> {
    const objectKey = this.objectKey(upload.key);
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: objectKey, UploadId: upload.uploadId }));
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchUpload') return;
      throw storageFailure(this.name, 'abortIncompleteUpload', upload.key, error);
    }
  }

  /** The object's tags (S16 lifecycle tiers). */
  async getObjectTags(key: string): Promise<Record<string, string>> {
    const objectKey = this.objectKey(key);
    try {
      const { TagSet } = await this.client.send(new GetObjectTaggingCommand({ Bucket: this.options.bucket, Key: objectKey }));
      return Object.fromEntries((TagSet ?? []).flatMap((tag) => (tag.Key === undefined ? [] : [[tag.Key, tag.Value ?? '']])));
    } catch (error) {
      throw storageFailure(this.name, 'getObjectTags', key, isNotFound(error) ? new ObjectNotFoundError(this.name, key) : error);
    }
  }

  /** Replaces the object's tags (its bytes and metadata stay as they are). */
  async putObjectTags(key: string, tags: Record<string, string>): Promise<void> {
    const objectKey = this.objectKey(key);
    const tagSet = validatedTags(key, tags);
    try {
      await this.client.send(new PutObjectTaggingCommand({ Bucket: this.options.bucket, Key: objectKey, Tagging: { TagSet: tagSet } }));
    } catch (error) {
      throw storageFailure(this.name, 'putObjectTags', key, isNotFound(error) ? new ObjectNotFoundError(this.name, key) : error);
    }
  }

  /** The bucket key prefix of a repository key prefix (`<S3 prefix>/<prefix>`): what a lifecycle rule filter names. */
  bucketKeyPrefix(prefix: string): string {
    assertSafePrefix(prefix);
    return this.listPrefix(prefix);
  }

  /** The bucket's lifecycle rules (all of them, not only this repository's); none configured: []. */
  async getLifecycleRules(): Promise<LifecycleRule[]> {
    try {
      const { Rules } = await this.client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: this.options.bucket }));
      return Rules ?? [];
    } catch (error) {
      if (isNoLifecycleConfiguration(error)) return [];
      throw storageFailure(this.name, 'getLifecycleRules', this.options.bucket, error);
    }
  }

  /** Replaces the bucket's whole lifecycle configuration with `rules`. */
  async putLifecycleRules(rules: LifecycleRule[]): Promise<void> {
    try {
      await this.client.send(new PutBucketLifecycleConfigurationCommand({ Bucket: this.options.bucket, LifecycleConfiguration: { Rules: rules } }));
    } catch (error) {
      throw storageFailure(this.name, 'putLifecycleRules', this.options.bucket, error);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

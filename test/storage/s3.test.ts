import {
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../../src/storage/hash.js';
import { IntegrityError } from '../../src/storage/repository.js';
import { S3Repository, type S3RepositoryOptions } from '../../src/storage/s3.js';
import { testS3Client } from '../helpers/s3-server.js';
import { services } from '../helpers/services.js';
import { BIG_FILE_SIZE, CONTRACT_METADATA, corruptedSha256, repositoryContract, writeRandomFile } from './contract.js';

const PART_SIZE = 5 * 1024 * 1024;
const KMS_KEY = 'alias/erp4-backup';
const s3 = services().s3;
/** Every repository of this run lives under its own prefix in the shared bucket. */
const runPrefix = `storage-test/${Date.now()}-${randomBytes(4).toString('hex')}`;
let repositories = 0;

function makeRepository(overrides: Partial<S3RepositoryOptions> = {}): S3Repository {
  return new S3Repository({
    bucket: s3.bucket,
    prefix: `${runPrefix}/repository-${++repositories}`,
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    sse: { kind: 'aws:kms', kmsKeyId: KMS_KEY },
    partSizeBytes: PART_SIZE,
    ...overrides,
  });
}

repositoryContract('s3', async () => makeRepository());

describe('S3Repository', () => {
  let client: S3Client;
  let workDir: string;
  let bigFile: { path: string; digest: Digest };

  beforeAll(async () => {
    client = testS3Client(s3);
    workDir = await mkdtemp(join(tmpdir(), 'erp4-s3-repository-'));
    bigFile = { path: join(workDir, 'big.dump'), digest: await writeRandomFile(join(workDir, 'big.dump'), BIG_FILE_SIZE) };
  });

  afterAll(async () => {
    client?.destroy();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  async function objectKeysUnder(prefix: string): Promise<string[]> {
    const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
    return (page.Contents ?? []).map((object) => object.Key ?? '').sort();
  }

  it('stores keys under the prefix, every object encrypted and carrying the metadata', async () => {
    const prefix = `${runPrefix}/sse-kms`;
    const repository = makeRepository({ prefix });
    await repository.putFile('prod/db/big.dump', bigFile.path, { expected: bigFile.digest, metadata: CONTRACT_METADATA });
    await repository.putBytes('prod/meta/manifest.json', Buffer.from('{"id":"x"}'), { metadata: CONTRACT_METADATA });
    await repository.close();

    const keys = await objectKeysUnder(`${prefix}/`);
    expect(keys).toEqual([`${prefix}/prod/db/big.dump`, `${prefix}/prod/meta/manifest.json`]);
    for (const key of keys) {
      const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
      expect(head.ServerSideEncryption, key).toBe('aws:kms');
      expect(head.SSEKMSKeyId, key).toBe(KMS_KEY);
      expect(head.Metadata, key).toMatchObject(CONTRACT_METADATA);
      expect(head.Metadata?.sha256, key).toMatch(/^[0-9a-f]{64}$/);
    }
    const bigHead = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: keys[0] }));
    expect(bigHead.Metadata?.sha256).toBe(bigFile.digest.sha256);
    // Uploaded in parts (an ETag of a multipart upload ends in -<parts>).
    expect(bigHead.ETag).toMatch(/-3"$/);
  });

  it('verifies objects whose size is exactly one or two parts against the checksum the server computed', async () => {
    const repository = makeRepository();
    for (const size of [PART_SIZE, 2 * PART_SIZE, 0]) {
      const path = join(workDir, `exact-${size}.dump`);
      const digest = await writeRandomFile(path, size);
      await repository.putFile(`exact/${size}.dump`, path, { expected: digest });
      expect(await repository.stat(`exact/${size}.dump`)).toMatchObject({ size });
    }
    await repository.close();
  });

  it('uses SSE-S3 (AES256) when configured so', async () => {
    const prefix = `${runPrefix}/sse-s3`;
    const repository = makeRepository({ prefix, sse: { kind: 'AES256' } });
    await repository.putBytes('prod/meta/a.json', Buffer.from('{}'), { metadata: CONTRACT_METADATA });
    await repository.close();
    const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/prod/meta/a.json` }));
    expect(head.ServerSideEncryption).toBe('AES256');
    expect(head.Metadata).toMatchObject(CONTRACT_METADATA);
  });

  it('re-uploads an object with the right content that is not encrypted as configured', async () => {
    const prefix = `${runPrefix}/unencrypted`;
    const body = Buffer.from('{"manifest":true}');
    const sha256 = createHash('sha256').update(body).digest('hex');
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/m.json`, Body: body, Metadata: { sha256 } }));
    const repository = makeRepository({ prefix });
    await repository.putBytes('m.json', body);
    await repository.close();
    const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/m.json` }));
    expect(head.ServerSideEncryption).toBe('aws:kms');
  });

  it('an aborted or refused multipart upload leaves no incomplete upload behind', async () => {
    const prefix = `${runPrefix}/aborted`;
    const repository = makeRepository({ prefix });
    const controller = new AbortController();
    const error = await repository
      .putFile('prod/db/big.dump', bigFile.path, {
        expected: bigFile.digest,
        signal: controller.signal,
        onProgress: (bytes) => {
          if (bytes < BIG_FILE_SIZE) controller.abort();
        },
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'AbortError' });
    const wrong = { size: bigFile.digest.size, sha256: corruptedSha256(bigFile.digest.sha256) };
    await expect(repository.putFile('prod/db/wrong.dump', bigFile.path, { expected: wrong })).rejects.toBeInstanceOf(IntegrityError);
    expect(await repository.listIncompleteUploads()).toEqual([]);
    expect(await objectKeysUnder(`${prefix}/`)).toEqual([]);
    await repository.close();
  });

  it('lists and aborts incomplete multipart uploads under its prefix only', async () => {
    const prefix = `${runPrefix}/incomplete`;
    const repository = makeRepository({ prefix });
    const started = await client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: `${prefix}/prod/db/left.dump` }));
    await client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: `${runPrefix}/elsewhere/other.dump` }));

    const incomplete = await repository.listIncompleteUploads();
    expect(incomplete).toEqual([{ key: 'prod/db/left.dump', uploadId: started.UploadId, initiatedAt: expect.any(Date) }]);
    await repository.abortIncompleteUpload(incomplete[0]!);
    await repository.abortIncompleteUpload(incomplete[0]!);
    expect(await repository.listIncompleteUploads()).toEqual([]);
    const all = await client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: `${runPrefix}/elsewhere/` }));
    expect(all.Uploads?.map((upload) => upload.Key)).toEqual([`${runPrefix}/elsewhere/other.dump`]);
    await repository.close();
  });

  it('rejects bad options and metadata, naming them', async () => {
    expect(() => makeRepository({ partSizeBytes: 1024 })).toThrow(/partSizeBytes/);
    expect(() => makeRepository({ bucket: '' })).toThrow(/bucket/);
    expect(() => makeRepository({ sse: { kind: 'aws:kms', kmsKeyId: '' } })).toThrow(/kmsKeyId/);
    expect(() => makeRepository({ prefix: '../escape' })).toThrow(/prefix must be a relative path.*\.\.\/escape/);
    expect(() => makeRepository({ prefix: '/abs' })).toThrow(/prefix/);
    const repository = makeRepository();
    await expect(repository.putBytes('a.json', Buffer.from('{}'), { metadata: { 'Bad Key': 'x' } })).rejects.toThrow(/metadata key "Bad Key"/);
    await expect(repository.putBytes('a.json', Buffer.from('{}'), { metadata: { sha256: 'x' } })).rejects.toThrow(/reserved/);
    await expect(repository.putBytes('a.json', Buffer.from('{}'), { metadata: { env: 'caf\u00e9' } })).rejects.toThrow(/metadata env/);
    expect(await repository.list('')).toEqual([]);
    await repository.close();
  });
});

import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketLifecycleConfigurationCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCatalog } from '../../src/catalog.js';
import { manifestKey } from '../../src/layout.js';
import { loadToolPaths } from '../../src/tools.js';
import { S3Repository } from '../../src/storage/s3.js';
import { copyBackups } from '../../src/copy.js';
import { tierTags } from '../../src/lifecycle.js';
import { LocalRepository } from '../../src/storage/local.js';
import { writeSyntheticBackup } from '../helpers/synthetic-backups.js';
import { createTestBucket, startS3Server, testS3Client, type S3Server } from '../helpers/s3-server.js';
import { createIamUsers } from '../helpers/iam-s3.js';
import { services } from '../helpers/services.js';

const root = resolve(import.meta.dirname, '../..');
const ROLES = ['writer', 'reader', 'pruner', 'offsite-copy'] as const;
type Role = (typeof ROLES)[number];

const BUCKET = 'erp4-iam';
const PLACEHOLDERS = {
  S3_BUCKET: BUCKET,
  S3_PREFIX: 'erp4',
  BACKUP_ENV: 'prod',
  SSE_KMS_KEY_ARN: 'arn:aws:kms:ap-northeast-1:123456789012:key/11111111-2222-3333-4444-555555555555',
  // deploy/iam/offsite-copy.json: here the copy lives in the same test bucket.
  S3_COPY_BUCKET: BUCKET,
  S3_COPY_PREFIX: 'erp4',
  S3_COPY_SSE_KMS_KEY_ARN: 'arn:aws:kms:ap-northeast-3:210987654321:key/11111111-2222-3333-4444-555555555555',
};

/** deploy/iam/<role>.json with its ${...} placeholders filled in, as `envsubst` would. */
function renderPolicy(role: Role): string {
  const template = readFileSync(join(root, 'deploy', 'iam', `${role}.json`), 'utf8');
  const rendered = template.replace(/\$\{([A-Z0-9_]+)\}/g, (whole, name: string) => {
    const value = (PLACEHOLDERS as Record<string, string>)[name];
    if (value === undefined) throw new Error(`deploy/iam/${role}.json uses an undocumented placeholder ${whole}`);
    return value;
  });
  JSON.parse(rendered);
  return rendered;
}


/** The HTTP status of an S3 call: 200 when it succeeded, else the error's status (403: denied). */
async function status(call: Promise<unknown>): Promise<number> {
  try {
    await call;
    return 200;
  } catch (error) {
    return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? -1;
  }
}

// S15 against a private moto server that enforces IAM (the shared one must not: every other
// test uses it with dummy credentials). moto evaluates Action, Resource and Effect of the
// policies but no S3 condition keys (the s3:prefix conditions are not exercised here).
describe('deploy/iam policies (S15), enforced by moto', () => {
  const s = services();
  let server: S3Server;
  let keys: Record<Role, { accessKeyId: string; secretAccessKey: string }>;
  const clients = new Map<Role, S3Client>();
  const as = (role: Role) => clients.get(role)!;
  const key = (rest: string) => `erp4/prod/${rest}`;
  const sse = { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'alias/erp4-backup' } as const;
  const manifest = manifestKey({ env: 'prod', prefix: 'erp4' }, '20261126T170000Z-daily');

  beforeAll(async () => {
    const { motoServerPath } = loadToolPaths();
    server = await startS3Server({ motoServerPath, logPath: join(s.workDir, 'logs', 'moto-iam.log') });
    await createTestBucket(server, BUCKET);
    const admin = testS3Client(server);
    await admin.send(new PutObjectCommand({ Bucket: BUCKET, Key: key('db/erp4-20261126T170000Z-daily.dump'), Body: 'dump', ...sse }));
    await admin.send(new PutObjectCommand({ Bucket: BUCKET, Key: `erp4/${manifest}`, Body: 'not a manifest', ...sse }));
    admin.destroy();
    keys = await createIamUsers(server.endpoint, motoServerPath, Object.fromEntries(ROLES.map((role) => [role, renderPolicy(role)])) as Record<Role, string>);
    // From here on every request must be signed by a user whose policies allow it.
    const response = await fetch(`${server.endpoint}/moto-api/reset-auth`, { method: 'POST', body: '0' });
    expect(response.ok).toBe(true);
    for (const role of ROLES) clients.set(role, testS3Client({ ...server, ...keys[role] }));
  });
  afterAll(async () => {
    for (const client of clients.values()) client.destroy();
    await server?.stop();
  });

  it('enforces: an unknown access key is refused', async () => {
    const stranger = testS3Client(server);
    expect(await status(stranger.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'erp4/prod/' })))).toBe(403);
    stranger.destroy();
  });

  it('writer: puts objects (single and multipart) under its env, and can neither read, list nor delete', async () => {
    const writer = as('writer');
    const fresh = key('db/erp4-20261127T170000Z-daily.dump');
    expect(await status(writer.send(new PutObjectCommand({ Bucket: BUCKET, Key: fresh, Body: 'new dump', ...sse })))).toBe(200);
    const multipart = key('assets/erp4-20261127T170000Z-daily.tar');
    const { UploadId } = await writer.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: multipart, ...sse }));
    const part = await writer.send(new UploadPartCommand({ Bucket: BUCKET, Key: multipart, UploadId, PartNumber: 1, Body: 'tar bytes' }));
    expect(
      await status(
        writer.send(
          new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: multipart, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }),
        ),
      ),
    ).toBe(200);

    expect(await status(writer.send(new GetObjectCommand({ Bucket: BUCKET, Key: fresh })))).toBe(403);
    expect(await status(writer.send(new HeadObjectCommand({ Bucket: BUCKET, Key: fresh })))).toBe(403);
    expect(await status(writer.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: fresh })))).toBe(403);
    expect(await status(writer.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'erp4/prod/' })))).toBe(403);
    // Another env's backups are out of reach, and so is the rest of the bucket.
    expect(await status(writer.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'erp4/staging/db/x.dump', Body: 'x', ...sse })))).toBe(403);
    expect(await status(writer.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'elsewhere/x', Body: 'x', ...sse })))).toBe(403);
  });

  it("writer: the product's uploads (single part and multipart) work with the write-only credentials", async () => {
    const repository = (writeOnly: boolean) =>
      new S3Repository({
        bucket: BUCKET,
        prefix: 'erp4',
        region: server.region,
        endpoint: server.endpoint,
        forcePathStyle: true,
        credentials: keys.writer,
        sse: { kind: 'aws:kms', kmsKeyId: 'alias/erp4-backup' },
        partSizeBytes: 5 * 1024 * 1024,
        writeOnly,
      });
    const dir = await mkdtemp(join(tmpdir(), 'iam-writer-'));
    const file = join(dir, 'dump');
    const bytes = randomBytes(11 * 1024 * 1024);
    await writeFile(file, bytes);
    const expected = { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
    const writer = repository(true);
    const readBack = repository(false);
    try {
      await writer.putFile('prod/db/erp4-20261127T170000Z-daily.dump', file, { expected });
      await writer.putBytes('prod/globals/erp4-20261127T170000Z-daily.sql', Buffer.from('CREATE ROLE x;'));
      // Without write-only mode the same role fails: it may not read back (HeadObject is s3:GetObject).
      await expect(readBack.putBytes('prod/globals/erp4-20261128T170000Z-daily.sql', Buffer.from('CREATE ROLE y;'))).rejects.toThrow(/putBytes/);
    } finally {
      await writer.close();
      await readBack.close();
      await rm(dir, { recursive: true, force: true });
    }
    // Enforcement is on: read back with the reader role.
    const head = await as('reader').send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'erp4/prod/db/erp4-20261127T170000Z-daily.dump' }));
    expect(head.ContentLength).toBe(bytes.length);
    expect(head.ServerSideEncryption).toBe('aws:kms');
  });

  it('reader: lists and reads, and can neither write nor delete', async () => {
    const reader = as('reader');
    const dump = key('db/erp4-20261126T170000Z-daily.dump');
    expect(await status(reader.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'erp4/prod/' })))).toBe(200);
    const body = await reader.send(new GetObjectCommand({ Bucket: BUCKET, Key: dump }));
    expect(await body.Body?.transformToString()).toBe('dump');
    expect(await status(reader.send(new HeadObjectCommand({ Bucket: BUCKET, Key: dump })))).toBe(200);
    expect(await status(reader.send(new PutObjectCommand({ Bucket: BUCKET, Key: dump, Body: 'overwritten', ...sse })))).toBe(403);
    expect(await status(reader.send(new PutObjectCommand({ Bucket: BUCKET, Key: key('meta/x.manifest.json'), Body: '{}', ...sse })))).toBe(403);
    expect(await status(reader.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: dump })))).toBe(403);
  });

  it("reader: the product's catalog and freshness reads work with the read-only credentials", async () => {
    const repository = new S3Repository({
      bucket: BUCKET,
      prefix: 'erp4',
      region: server.region,
      endpoint: server.endpoint,
      forcePathStyle: true,
      credentials: keys.reader,
      sse: { kind: 'aws:kms', kmsKeyId: 'alias/erp4-backup' },
      partSizeBytes: 5 * 1024 * 1024,
    });
    try {
      const catalog = await readCatalog(repository, 'prod');
      // The seeded manifest is not valid JSON: read (allowed) and refused by the schema, not by IAM.
      expect(catalog.invalid).toEqual([{ key: manifest, error: expect.stringContaining('not JSON') }]);
    } finally {
      await repository.close();
    }
  });

  it('copy: brings a backup into S3 with the write-only role and reads it back with the read-only one', async () => {
    const s3 = (role: 'writer' | 'reader') =>
      new S3Repository({
        bucket: BUCKET,
        prefix: 'erp4',
        region: server.region,
        endpoint: server.endpoint,
        forcePathStyle: true,
        credentials: keys[role],
        sse: { kind: 'aws:kms', kmsKeyId: 'alias/erp4-backup' },
        partSizeBytes: 5 * 1024 * 1024,
        writeOnly: role === 'writer',
      });
    const layout = { env: 'prod', prefix: 'erp4' };
    const dir = await mkdtemp(join(tmpdir(), 'iam-copy-'));
    const source = new LocalRepository({ root: dir });
    const [writer, reader] = [s3('writer'), s3('reader')];
    try {
      const backup = await writeSyntheticBackup(source, layout, { id: '20261129T170000Z-daily', kind: 'daily', generatedAt: '2026-11-29T17:00:00Z', pinned: false });
      const outcomes = await copyBackups({
        env: 'prod',
        source,
        target: { writer, reader },
        stagingRoot: join(dir, '.staging'),
        manifestKeyOf: (m) => manifestKey(layout, m.id),
        // As `copy` tags them: the lifecycle tier (PutObject with tags needs s3:PutObjectTagging).
        tagsOf: (m, object) => tierTags(m.kind, object),
      });
      expect(outcomes).toEqual([{ backupId: backup.id, status: 'copied', bytes: expect.any(Number) }]);
      expect((await readCatalog(reader, 'prod')).backups).toEqual([backup]);
    } finally {
      await Promise.all([writer.close(), reader.close()]);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('pruner: lists, reads manifests only, deletes, and cannot write', async () => {
    const pruner = as('pruner');
    const dump = key('db/erp4-20261126T170000Z-daily.dump');
    expect(await status(pruner.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'erp4/prod/' })))).toBe(200);
    expect(await status(pruner.send(new GetObjectCommand({ Bucket: BUCKET, Key: `erp4/${manifest}` })))).toBe(200);
    expect(await status(pruner.send(new GetObjectCommand({ Bucket: BUCKET, Key: dump })))).toBe(403);
    expect(await status(pruner.send(new PutObjectCommand({ Bucket: BUCKET, Key: dump, Body: 'x', ...sse })))).toBe(403);
    expect(await status(pruner.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: dump })))).toBe(200);
    expect(await status(pruner.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'erp4/staging/db/x.dump' })))).toBe(403);
  });

  it('offsite-copy: production hosts put and read the off-site copy, and can neither delete it (any version) nor change its bucket', async () => {
    const copy = as('offsite-copy');
    const fresh = key('db/erp4-20261129T170000Z-daily.dump');
    expect(await status(copy.send(new PutObjectCommand({ Bucket: BUCKET, Key: fresh, Body: 'copied dump', ...sse })))).toBe(200);
    expect(await status(copy.send(new GetObjectCommand({ Bucket: BUCKET, Key: fresh })))).toBe(200);
    expect(await status(copy.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'erp4/prod/' })))).toBe(200);
    expect(await status(copy.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: fresh })))).toBe(403);
    expect(await status(copy.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: fresh, VersionId: 'null' })))).toBe(403);
    expect(await status(copy.send(new PutBucketLifecycleConfigurationCommand({ Bucket: BUCKET, LifecycleConfiguration: { Rules: [] } })))).toBe(403);
  });
});

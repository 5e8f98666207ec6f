import { createHash } from 'node:crypto';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  type BucketLocationConstraint,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCatalog, verifyBackup } from '../../src/catalog.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { backupIdFor, manifestKey } from '../../src/layout.js';
import { parseManifest } from '../../src/manifest.js';
import { pinCommand } from '../../src/commands/pin.js';
import { createRepositories } from '../../src/repositories.js';
import { createBackupRuntime } from '../../src/runtime.js';
import type { Repository } from '../../src/storage/repository.js';
import { ImmutableObjectError, S3Repository } from '../../src/storage/s3.js';
import { NightlyBackup, Prune } from '../../workflows/index.js';
import type { NightlyBackupResult } from '../../workflows/messages.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { testS3Client } from '../helpers/s3-server.js';
import { services } from '../helpers/services.js';
import { syntheticKeys, writeSyntheticBackup } from '../helpers/synthetic-backups.js';
import { recordResult } from './reliability.js';

const DAY_MS = 86_400_000;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

// Immutable backups (issue 14 item 4) in moto, which enforces S3 Object Lock retention: a bucket
// created with Object Lock, S3_OBJECT_LOCK_MODE=compliance. Every object of a backup is locked
// for as long as S3_RETENTION may keep it; overwriting and deleting are refused and nothing is lost.
describe('immutable backups (S3 Object Lock)', () => {
  const s = services();
  const lockedBucket = `erp4-locked-${process.pid}`;
  const plainBucket = `erp4-unlocked-${process.pid}`;
  let raw: S3Client;
  let product: RunningProduct;
  let backup: NightlyBackupResult;
  let s3: S3Repository;
  let readers: Map<string, Repository>;
  /** The S3 key of a repository key in the locked bucket. */
  let bucketKey: (key: string) => string;

  const versionsOf = async (key: string) => {
    const page = await raw.send(new ListObjectVersionsCommand({ Bucket: lockedBucket, Prefix: bucketKey(key) }));
    return (page.Versions ?? []).filter((v) => v.Key === bucketKey(key));
  };

  beforeAll(async () => {
    raw = testS3Client(s.s3);
    const location = { LocationConstraint: s.s3.region as BucketLocationConstraint };
    await raw.send(new CreateBucketCommand({ Bucket: lockedBucket, ObjectLockEnabledForBucket: true, CreateBucketConfiguration: location }));
    await raw.send(new CreateBucketCommand({ Bucket: plainBucket, CreateBucketConfiguration: location }));
    const env = await productEnv(s, 'immutable', {
      s3: true,
      assets: false,
      env: {
        S3_BUCKET: lockedBucket,
        S3_OBJECT_LOCK_MODE: 'compliance',
        S3_PRUNER_ACCESS_KEY_ID: s.s3.accessKeyId,
        S3_PRUNER_SECRET_ACCESS_KEY: s.s3.secretAccessKey,
      },
    });
    product = await startProduct(s, env);
    s3 = product.runtime.repositories.get('s3') as S3Repository;
    bucketKey = (key) => `${env.S3_PREFIX}/${key}`;
    readers = createRepositories(product.config, 'reader');
    backup = await product.client.workflow.execute(NightlyBackup, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId: `immutable-backup-${process.pid}-${Date.now()}`,
      args: [{ kind: 'daily' }],
    });
  });

  afterAll(async () => {
    await Promise.all([...(readers?.values() ?? [])].map((repository) => repository.close()));
    await product?.close();
    raw?.destroy();
  });

  it('locks every artifact and the manifest for as long as S3_RETENTION (gfs) may keep a daily backup: 372 days', async () => {
    const manifest = parseManifest(await readers.get('s3')!.getBytes(backup.manifestKey), 'm');
    const keys = [backup.manifestKey, ...Object.values(manifest.artifacts).map((artifact) => artifact!.key)];
    expect(keys).toHaveLength(3);
    for (const key of keys) {
      // moto 5 implements no GetObjectRetention; HeadObject shows the same lock.
      const head = await raw.send(new HeadObjectCommand({ Bucket: lockedBucket, Key: bucketKey(key) }));
      expect(head.ObjectLockMode, key).toBe('COMPLIANCE');
      expect(Math.abs(head.ObjectLockRetainUntilDate!.getTime() - (Date.now() + 372 * DAY_MS)), key).toBeLessThan(DAY_MS);
      expect((await s3.lockedUntil(key))?.getTime(), key).toBe(head.ObjectLockRetainUntilDate!.getTime());
    }
  });

  it('overwriting a locked backup: refused, nothing lost', async () => {
    const key = backup.manifestKey;
    const original = await readers.get('s3')!.getBytes(key);
    const before = await versionsOf(key);
    expect(before).toHaveLength(1);
    // A role that may read (S3_WRITER_* unset, SDK chain): refused before a byte is sent.
    const readable = new S3Repository({
      bucket: lockedBucket,
      prefix: product.config.s3!.prefix,
      region: s.s3.region,
      endpoint: s.s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: s.s3.accessKeyId, secretAccessKey: s.s3.secretAccessKey },
      sse: { kind: 'aws:kms', kmsKeyId: 'alias/erp4-backup' },
      partSizeBytes: 5 * 1024 * 1024,
      objectLock: { mode: 'COMPLIANCE', retainUntil: () => new Date(Date.now() + DAY_MS) },
    });
    try {
      const refusal = await readable.putBytes(key, Buffer.from('{"forged": true}\n')).then(() => undefined, (error: unknown) => error);
      expect(refusal).toBeInstanceOf(ImmutableObjectError);
      expect((refusal as Error).message).toContain(`refusing to overwrite ${key}`);
      // A retry of a put that completed: the same content is found, nothing is written.
      await readable.putBytes(key, original);
      expect(await versionsOf(key)).toHaveLength(1);
    } finally {
      await readable.close();
    }
    // The write-only writer: its conditional put (If-None-Match: *) is refused by the store (412).
    await s3.putBytes(key, Buffer.from('{"forged": true}\n'));
    expect(await versionsOf(key)).toHaveLength(1);

    // A compromised host sending a plain PutObject gets a new version; the locked one stays.
    await raw.send(new PutObjectCommand({ Bucket: lockedBucket, Key: bucketKey(key), Body: 'forged' }));
    const after = await versionsOf(key);
    expect(after).toHaveLength(2);
    const kept = await raw.send(new GetObjectCommand({ Bucket: lockedBucket, Key: bucketKey(key), VersionId: before[0]!.VersionId }));
    const keptBytes = Buffer.from(await kept.Body!.transformToByteArray());
    expect(sha256(keptBytes)).toBe(sha256(original));
    expect(parseManifest(keptBytes, key).id).toBe(backup.backupId);
    recordResult({
      id: '45-overwrite-locked-backup',
      fault: 'Overwriting a backup in an Object Lock bucket (S3_OBJECT_LOCK_MODE): refused, nothing lost',
      trials: 3,
      survived: 3,
      dataLost: 0,
      notes:
        'a role that may read: ImmutableObjectError before a byte is sent; the write-only writer: If-None-Match: * answered 412, no new version; ' +
        'a plain PutObject (a compromised host): a new version, the locked original still readable by its version id',
      test: 'test/chaos/immutable.test.ts',
    });
  });

  it('deleting a locked backup: Prune reports it and leaves it whole; a direct version delete is refused; nothing lost', async () => {
    const layout = product.runtime.layout;
    // Three backups of one day, 30 days ago: GFS keeps the day's newest and (fewer periods than
    // it may keep) the oldest, so Prune wants the middle one gone.
    const at = Date.now() - 30 * DAY_MS;
    const record = (offsetMs: number) => ({ id: backupIdFor('daily', new Date(at + offsetMs)), kind: 'daily' as const, generatedAt: new Date(at + offsetMs).toISOString(), pinned: false });
    const older = record(3_600_000);
    for (const backupRecord of [record(0), older, record(2 * 3_600_000)]) await writeSyntheticBackup(s3, layout, backupRecord);

    const result = await product.client.workflow.execute(Prune, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId: `immutable-prune-${process.pid}-${Date.now()}`,
      args: [{ repositories: ['s3'] }],
    });
    const plan = result.plans[0]!;
    expect(plan.backups.find((b) => b.id === older.id), JSON.stringify(plan.backups)).toMatchObject({ action: 'delete' });
    const done = result.results[0]!;
    expect(done.deletedBackups).toEqual([]);
    expect(done.skipped).toEqual([{ backupId: older.id, reason: expect.stringMatching(/^locked until \d{4}-.*\(S3 Object Lock\): not deleted before the lock ends$/) }]);

    const reader = readers.get('s3')!;
    const catalog = await readCatalog(reader, layout.env);
    expect(catalog.backups.map((b) => b.id)).toContain(older.id);
    const olderManifest = catalog.backups.find((b) => b.id === older.id)!;
    expect((await verifyBackup(reader, olderManifest)).every((check) => check.ok)).toBe(true);

    // The pruner's own credentials, deleting a version directly: S3 refuses while the lock holds.
    const manifestVersion = (await versionsOf(manifestKey(layout, older.id)))[0]!;
    const refused = await raw
      .send(new DeleteObjectCommand({ Bucket: lockedBucket, Key: bucketKey(manifestKey(layout, older.id)), VersionId: manifestVersion.VersionId }))
      .then(() => undefined, (error: unknown) => error);
    expect((refused as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode).toBe(403);
    for (const key of syntheticKeys(layout, older.id)) expect(await versionsOf(key), key).toHaveLength(1);
    recordResult({
      id: '46-delete-locked-backup',
      fault: 'Deleting a backup in an Object Lock bucket before its lock ends (Prune, or a direct version delete): refused, nothing lost',
      trials: 2,
      survived: 2,
      dataLost: 0,
      notes: `Prune planned the deletion and skipped it: ${done.skipped[0]?.reason ?? '-'}; DeleteObject with the version id: HTTP 403; the backup still verifies`,
      test: 'test/chaos/immutable.test.ts',
    });
  });

  it('pin rewrites a manifest on purpose: a new version, the replaced one stays stored and locked', async () => {
    const [, , newest] = (await readCatalog(readers.get('s3')!, product.runtime.layout.env)).backups.filter((b) => b.schemaVersion === 'synthetic');
    expect(newest).toBeDefined();
    const key = manifestKey(product.runtime.layout, newest!.id);
    const out = { write: () => true } as unknown as NodeJS.WritableStream;
    expect(await pinCommand(product.config, newest!.id, true, out)).toBe(true);
    const versions = await versionsOf(key);
    expect(versions).toHaveLength(2);
    expect(parseManifest(await readers.get('s3')!.getBytes(key), key).pinned).toBe(true);
    for (const version of versions) {
      const head = await raw.send(new HeadObjectCommand({ Bucket: lockedBucket, Key: bucketKey(key), VersionId: version.VersionId }));
      expect(head.ObjectLockMode).toBe('COMPLIANCE');
    }
  });

  it('deletes every version of a key once it is not locked (what Prune does when the lock has ended)', async () => {
    const key = `${product.runtime.layout.env}/db/erp4-${backupIdFor('daily', new Date(Date.now() - 400 * DAY_MS))}.dump`;
    // Put without a lock (as if it had ended): two versions.
    await raw.send(new PutObjectCommand({ Bucket: lockedBucket, Key: bucketKey(key), Body: 'one' }));
    await raw.send(new PutObjectCommand({ Bucket: lockedBucket, Key: bucketKey(key), Body: 'two' }));
    expect(await versionsOf(key)).toHaveLength(2);
    const pruner = createRepositories(product.config, 'pruner').get('s3') as S3Repository;
    try {
      expect(await pruner.lockedUntil(key)).toBeUndefined();
      await pruner.delete(key);
      const page = await raw.send(new ListObjectVersionsCommand({ Bucket: lockedBucket, Prefix: bucketKey(key) }));
      expect([...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]).toEqual([]);
      await pruner.delete(key); // idempotent
    } finally {
      await pruner.close();
    }
  });

  it('S3_OBJECT_LOCK_MODE on a bucket created without Object Lock: the worker refuses to start, naming it', async () => {
    const env = await productEnv(s, 'immutable-unlocked', { s3: true, assets: false, env: { S3_BUCKET: plainBucket, S3_OBJECT_LOCK_MODE: 'governance' } });
    const error = await createBackupRuntime(loadConfig(env)).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([{ variable: 'S3_OBJECT_LOCK_MODE', message: expect.stringContaining(`the bucket ${plainBucket} was created without Object Lock`) }]);
    // The off-site copy's setting is checked the same way (here the primary bucket has Object Lock).
    const copyEnv = {
      ...env,
      S3_BUCKET: lockedBucket,
      S3_COPY_BUCKET: plainBucket,
      S3_COPY_PREFIX: env.S3_PREFIX!,
      S3_COPY_REGION: s.s3.region,
      S3_COPY_ENDPOINT_URL: s.s3.endpoint,
      S3_COPY_SSE_S3: 'AES256',
      S3_COPY_ACCESS_KEY_ID: s.s3.accessKeyId,
      S3_COPY_SECRET_ACCESS_KEY: s.s3.secretAccessKey,
      S3_COPY_OBJECT_LOCK_MODE: 'compliance',
    };
    const copyError = await createBackupRuntime(loadConfig(copyEnv)).then(() => undefined, (e: unknown) => e);
    expect((copyError as ConfigError).issues).toEqual([{ variable: 'S3_COPY_OBJECT_LOCK_MODE', message: expect.stringContaining(`the bucket ${plainBucket} was created without Object Lock`) }]);
    recordResult({
      id: '47-object-lock-without-bucket-lock',
      fault: 'S3_OBJECT_LOCK_MODE set for a bucket created without Object Lock: the worker refuses to start, naming the setting',
      trials: 1,
      survived: 1,
      dataLost: 0,
      notes: (error as Error).message.split('\n')[1]?.trim() ?? '',
      test: 'test/chaos/immutable.test.ts',
    });
  });
});

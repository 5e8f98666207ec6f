import { CreateBucketCommand, CreateMultipartUploadCommand, type BucketLocationConstraint } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPruneActivities } from '../../activities/prune.js';
import { readCatalog, verifyBackup } from '../../src/catalog.js';
import { pruneCommand } from '../../src/commands/prune.js';
import { backupIdFor, manifestKey, type BackupKind } from '../../src/layout.js';
import type { RepositoryPrunePlan } from '../../src/prune-plan.js';
import type { BackupRecord } from '../../src/retention.js';
import type { Repository } from '../../src/storage/repository.js';
import { S3Repository } from '../../src/storage/s3.js';
import { listBackupsInUse } from '../../src/temporal/backups-in-use.js';
import { NightlyBackup, Prune } from '../../workflows/index.js';
import { backupEnvSearchAttribute, backupIdSearchAttribute, type PruneResult } from '../../workflows/messages.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { testS3Client } from '../helpers/s3-server.js';
import { services } from '../helpers/services.js';
import { syntheticArtifacts, syntheticKeys, writeSyntheticBackup } from '../helpers/synthetic-backups.js';

const s = services();
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
// The history is dated before the real clock and pruned two days later, so the objects written
// now are old enough (PRUNE_ABANDONED_AFTER 24h) to count as abandoned when they lack a manifest.
const T0 = Math.floor(Date.now() / 1000) * 1000;
const NOW = new Date(T0 + 2 * DAY_MS).toISOString();

function record(kind: BackupKind, daysAgo: number, extra: Partial<BackupRecord> = {}): BackupRecord {
  const at = new Date(T0 - daysAgo * DAY_MS);
  return { id: backupIdFor(kind, at), kind, generatedAt: at.toISOString(), pinned: false, ...extra };
}

async function keysOf(repository: Repository, env: string): Promise<string[]> {
  return (await repository.list(`${env}/`)).map((object) => object.key).sort();
}

/** `[action, repository, id]` of the table rows and result lines the prune command printed. */
function printed(output: string, word: 'delete' | 'deleted'): string[] {
  const lines = output.split('\n').map((line) => line.trim().split(/\s+/));
  return word === 'delete'
    ? lines.filter((cells) => cells[4] === 'delete').map((cells) => `${cells[0]} ${cells[1]}`).sort()
    : lines.filter((cells) => cells[0] === 'deleted').map((cells) => `${cells[1]} ${cells[2]}`).sort();
}

/** Runs an activity function in an activity context whose client is the test's Temporal client. */
function runActivity<A extends unknown[], R>(environment: MockActivityEnvironment, activity: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return environment.run(activity, ...args) as Promise<R>;
}

const capture = () => {
  let text = '';
  return { stream: { write: (chunk: string) => ((text += chunk), true) } as NodeJS.WritableStream, text: () => text };
};

/** Fails the first artifact delete: a worker killed after the manifest went and before the artifacts did. */
function killedAfterManifestDelete(repository: Repository): Repository {
  let killed = false;
  return new Proxy(repository, {
    get(target, property, receiver) {
      if (property === 'delete') {
        return async (key: string) => {
          if (!killed && !key.includes('/meta/')) {
            killed = true;
            throw new Error('worker killed between the manifest delete and the artifact deletes (simulated)');
          }
          return target.delete(key);
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe('Prune on S3 with an off-site copy, through Temporal', () => {
  const copyBucket = `erp4-prune-copy-${randomBytes(4).toString('hex')}`;
  let product: RunningProduct;
  let s3: S3Repository;
  let copy: S3Repository;
  const env = 'test';

  // 20 nightly backups, one of them pinned; two critical ones; the copy stopped receiving dailies 18 days ago.
  const dailies = Array.from({ length: 20 }, (_, i) => record('daily', 20 - i, i === 1 ? { pinned: true, label: 'quarter close' } : {}));
  const criticals = [record('critical', 5), record('critical', 3)];
  const orphan = record('daily', 2.5);

  const runPrune = (args: Parameters<typeof Prune>[0]) =>
    product.client.workflow.execute(Prune, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId: `prune-test-${randomBytes(4).toString('hex')}`,
      args: [args],
    });

  beforeAll(async () => {
    const client = testS3Client(s.s3);
    await client.send(new CreateBucketCommand({ Bucket: copyBucket, CreateBucketConfiguration: { LocationConstraint: s.s3.region as BucketLocationConstraint } }));
    const envVars = await productEnv(s, 'prune', {
      s3: true,
      assets: false,
      env: {
        S3_COPY_BUCKET: copyBucket,
        S3_COPY_ENDPOINT_URL: s.s3.endpoint,
        S3_COPY_REGION: s.s3.region,
        S3_COPY_SSE_S3: 'AES256',
        S3_COPY_ACCESS_KEY_ID: s.s3.accessKeyId,
        S3_COPY_SECRET_ACCESS_KEY: s.s3.secretAccessKey,
        // Prune's own role (S15); the harness's moto accepts any credentials.
        S3_PRUNER_ACCESS_KEY_ID: s.s3.accessKeyId,
        S3_PRUNER_SECRET_ACCESS_KEY: s.s3.secretAccessKey,
        LOCAL_RETENTION: '3d',
        S3_RETENTION: 'gfs',
      },
    });
    product = await startProduct(s, envVars);
    s3 = product.runtime.repositories.get('s3') as S3Repository;
    copy = product.runtime.repositories.get('s3-copy') as S3Repository;
    const layout = product.runtime.layout;
    for (const backup of [...dailies, ...criticals]) await writeSyntheticBackup(s3, layout, backup);
    for (const backup of [...dailies.slice(0, 3), ...criticals]) await writeSyntheticBackup(copy, layout, backup);
    for (const backup of dailies.slice(-5)) await writeSyntheticBackup(product.runtime.repositories.get('local')!, layout, backup);
    // An upload that died before its manifest, and a multipart upload never completed.
    await writeSyntheticBackup(s3, layout, orphan, { withManifest: false });
    await client.send(
      new CreateMultipartUploadCommand({ Bucket: s.s3.bucket, Key: `${product.config.s3!.prefix}/${env}/db/erp4-${orphan.id}.dump.gpg`, ServerSideEncryption: 'AES256' }),
    );
    client.destroy();
  });
  afterAll(async () => {
    await product?.close();
  });

  it('--dry-run prints every backup with keep/delete and why, and the real run then deletes exactly that', async () => {
    const dry = capture();
    const plan = await pruneCommand(product.config, { dryRun: true, now: NOW }, dry.stream);
    const s3Plan = plan.plans.find((p) => p.repository === 's3')!;
    const before = await keysOf(s3, env);

    // The table: each backup of each repository, with its reasons.
    expect(plan.plans.map((p) => p.repository)).toEqual(['local', 's3', 's3-copy']);
    for (const backup of [...dailies, ...criticals]) expect(dry.text()).toContain(backup.id);
    expect(dry.text()).toMatch(new RegExp(`s3\\s+${dailies[1]!.id}\\s+daily\\s+\\S+\\s+keep\\s+pinned`));
    expect(dry.text()).toMatch(new RegExp(`s3\\s+${dailies[19]!.id}\\s+daily\\s+\\S+\\s+keep\\s+newest, daily 1/14`));
    expect(dry.text()).toMatch(new RegExp(`s3\\s+${criticals[0]!.id}\\s+critical\\s+\\S+\\s+delete\\s+-`));
    // S8: the copy lacks every daily after 18 days ago, so the primary keeps what the policy would drop after that.
    const newestInCopy = Date.parse(dailies[2]!.generatedAt);
    const held = s3Plan.backups.filter((b) => b.reasons.includes('not yet in s3-copy'));
    const deletedDailies = s3Plan.backups.filter((b) => b.kind === 'daily' && b.action === 'delete');
    expect(deletedDailies.length).toBeGreaterThan(0);
    expect(deletedDailies.every((b) => Date.parse(b.generatedAt) <= newestInCopy)).toBe(true);
    expect(held.length).toBeGreaterThan(0);
    expect(held.every((b) => Date.parse(b.generatedAt) > newestInCopy)).toBe(true);
    // Abandoned objects, an unfinished upload, and the pinned backup's lifecycle tier.
    expect(s3Plan.abandoned.map((a) => a.key)).toEqual(syntheticArtifacts(product.runtime.layout, orphan.id).map((a) => a.key).sort());
    expect(s3Plan.abandonedUploads).toHaveLength(1);
    expect(s3Plan.retag).toEqual([expect.objectContaining({ backupId: dailies[1]!.id, tier: 'pinned' })]);
    expect(dry.text()).toContain(`reap    s3 ${s3Plan.abandoned[0]!.key}: no manifest`);
    expect(await keysOf(s3, env)).toEqual(before);

    const real = capture();
    const result = await pruneCommand(product.config, { dryRun: false, now: NOW }, real.stream);
    expect(result.plans).toEqual(plan.plans);
    expect(printed(real.text(), 'deleted')).toEqual(printed(dry.text(), 'delete'));
    expect(printed(dry.text(), 'delete').length).toBeGreaterThan(3);

    // What is gone from the bucket is exactly what the plan listed, and nothing else.
    const planned = s3Plan.backups.filter((b) => b.action === 'delete').flatMap((b) => [b.manifestKey, ...b.artifactKeys]);
    expect(await keysOf(s3, env)).toEqual(before.filter((key) => !planned.includes(key) && !s3Plan.abandoned.some((a) => a.key === key)));
    expect(await s3.listIncompleteUploads(`${env}/`)).toEqual([]);
    for (const key of syntheticKeys(product.runtime.layout, dailies[1]!.id)) expect(await s3.getObjectTags(key), key).toMatchObject({ tier: 'pinned' });
    for (const key of syntheticKeys(product.runtime.layout, dailies[19]!.id)) expect((await s3.getObjectTags(key)).tier, key).toBe('daily');
    // The local repository followed LOCAL_RETENTION=3d.
    expect((await readCatalog(product.runtime.repositories.get('local')!, env)).backups.map((b) => b.id)).toEqual(dailies.slice(-3).map((b) => b.id));
  });

  it('never deletes a backup a running RestoreDrill uses (the drill records BackupId), checked again right before deleting', async () => {
    const layout = product.runtime.layout;
    const drilled = record('critical', 5.5);
    await writeSyntheticBackup(s3, layout, drilled);
    const drillId = `RestoreDrill-prune-test-${randomBytes(4).toString('hex')}`;
    // A RestoreDrill nobody works on stays Running; it carries the search attributes a real drill upserts.
    const drill = await product.client.workflow.start('RestoreDrill', {
      taskQueue: `nobody-polls-${drillId}`,
      workflowId: drillId,
      args: [{ backupId: drilled.id }],
      typedSearchAttributes: [
        { key: backupIdSearchAttribute, value: drilled.id },
        { key: backupEnvSearchAttribute, value: env },
      ],
    });
    try {
      await expect.poll(async () => (await listBackupsInUse(product.client, env)).restoreDrills[drilled.id], { timeout: 15_000 }).toEqual([drillId]);
      const whileDrilled = await runPrune({ dryRun: true, now: NOW, repositories: ['s3'] });
      expect(whileDrilled.plans[0]!.backups.find((b) => b.id === drilled.id)).toMatchObject({ action: 'keep', reasons: [`in use by RestoreDrill ${drillId}`] });

      // A plan made before the drill started: the deleting activity asks Temporal again and skips it.
      const staleplan: RepositoryPrunePlan = {
        ...whileDrilled.plans[0]!,
        backups: whileDrilled.plans[0]!.backups.map((b) => (b.id === drilled.id ? { ...b, action: 'delete' as const, reasons: [] } : b)),
      };
      const activities = createPruneActivities(product.runtime);
      const applied = await runActivity(new MockActivityEnvironment(undefined, { client: product.client }), activities.applyPrune, { plan: staleplan });
      expect(applied.skipped).toEqual([{ backupId: drilled.id, reason: `in use by RestoreDrill ${drillId}` }]);
      expect(await s3.stat(manifestKey(layout, drilled.id))).toBeDefined();
    } finally {
      await drill.terminate('test over');
    }
    await expect.poll(async () => (await listBackupsInUse(product.client, env)).restoreDrills[drilled.id], { timeout: 15_000 }).toBeUndefined();
    const afterDrill = await runPrune({ now: NOW, repositories: ['s3'] });
    expect(afterDrill.results[0]!.deletedBackups).toEqual([drilled.id]);
  });

  it('a prune killed between the manifest delete and the artifact deletes leaves no complete-looking backup missing files; the next run cleans up', async () => {
    const layout = product.runtime.layout;
    const victim = record('critical', 6.5);
    await writeSyntheticBackup(s3, layout, victim);
    const activities = createPruneActivities({
      ...product.runtime,
      prune: {
        ...product.runtime.prune,
        openRepository: (name) => {
          const repository = product.runtime.prune.openRepository(name);
          return repository && killedAfterManifestDelete(repository);
        },
      },
    });
    const environment = new MockActivityEnvironment(undefined, { client: product.client });
    const { plans } = await runActivity(environment, activities.planPrune, { now: NOW, repositories: ['s3'] });
    expect(plans[0]!.backups.find((b) => b.id === victim.id)?.action).toBe('delete');
    await expect(runActivity(environment, activities.applyPrune, { plan: plans[0]! })).rejects.toThrow(/worker killed/);

    // The manifest went first: the victim no longer exists for readers, its files are still there,
    // and every backup that does look complete has all its files, byte for byte.
    const catalog = await readCatalog(s3, env);
    expect(catalog.backups.map((b) => b.id)).not.toContain(victim.id);
    const leftovers = syntheticArtifacts(layout, victim.id).map((a) => a.key);
    for (const key of leftovers) expect(await s3.stat(key), key).toBeDefined();
    for (const backup of catalog.backups) {
      const checks = await verifyBackup(s3, backup);
      expect(checks.every((c) => c.ok), `${backup.id}: ${JSON.stringify(checks)}`).toBe(true);
    }

    const next = await runPrune({ now: NOW, repositories: ['s3'] });
    expect(next.results[0]!.reapedKeys).toEqual(leftovers.sort());
    expect((await keysOf(s3, env)).filter((key) => key.includes(victim.id))).toEqual([]);
    // Settled: a further run deletes nothing.
    const settled: PruneResult = await runPrune({ now: NOW, repositories: ['s3'] });
    expect(settled.results[0]).toMatchObject({ deletedBackups: [], reapedKeys: [], abortedUploads: [], retagged: [] });
  });

  it('NightlyBackup also uploads to the off-site copy, every object tagged with its lifecycle tier', async () => {
    const result = await product.client.workflow.execute(NightlyBackup, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId: `prune-test-nightly-${randomBytes(4).toString('hex')}`,
      args: [{ kind: 'manual', label: 'before release 4.2' }],
    });
    expect(result.repositories).toContain('s3-copy');
    const manifest = (await readCatalog(copy, env)).backups.find((b) => b.id === result.backupId)!;
    expect((await verifyBackup(copy, manifest)).every((c) => c.ok)).toBe(true);
    for (const key of [manifestKey(product.runtime.layout, manifest.id), ...Object.values(manifest.artifacts).map((a) => a!.key)]) {
      expect(await copy.getObjectTags(key), key).toEqual({ tier: 'manual', object: key.includes('/meta/') ? 'manifest' : 'artifact' });
    }
  });
});

import {
  CreateBucketCommand,
  GetBucketLifecycleConfigurationCommand,
  PutBucketLifecycleConfigurationCommand,
  type BucketLocationConstraint,
  type LifecycleRule,
  type S3Client,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lifecycleApplyCommand, lifecycleShowCommand } from '../../src/commands/lifecycle.js';
import { pinCommand } from '../../src/commands/pin.js';
import { loadConfig, type Config } from '../../src/config.js';
import { backupIdFor, manifestKey } from '../../src/layout.js';
import { desiredTier, describeRule, lifecycleRules, RETAG_LEAD_DAYS, tierTags } from '../../src/lifecycle.js';
import { parseManifest } from '../../src/manifest.js';
import { retentionPolicyOf } from '../../src/prune-policy.js';
import { planRetention, type BackupRecord } from '../../src/retention.js';
import { createRepositories } from '../../src/repositories.js';
import type { Repository } from '../../src/storage/repository.js';
import type { S3Repository } from '../../src/storage/s3.js';
import { productEnv } from '../helpers/product.js';
import { expiringRule } from '../helpers/s3-lifecycle.js';
import { testS3Client } from '../helpers/s3-server.js';
import { services } from '../helpers/services.js';
import { syntheticKeys, writeSyntheticBackup } from '../helpers/synthetic-backups.js';
import { simulateSchedule } from '../unit/retention-simulation.js';

const s = services();
const DAY_MS = 86_400_000;
const suffix = randomBytes(4).toString('hex');
// Lifecycle configuration is per bucket: these tests have buckets of their own.
const bucket = `erp4-lifecycle-${suffix}`;
const copyBucket = `erp4-lifecycle-copy-${suffix}`;
const foreignRule: LifecycleRule = { ID: 'another-team-logs', Status: 'Enabled', Filter: { Prefix: 'logs/' }, Expiration: { Days: 30 } };

const capture = () => {
  let text = '';
  return { stream: { write: (chunk: string) => ((text += chunk), true) } as NodeJS.WritableStream, text: () => text };
};

describe('S3 lifecycle rules (S16) against the S3 server', () => {
  let client: S3Client;
  let config: Config;
  let prefix: string;

  const bucketRules = async (name: string): Promise<LifecycleRule[]> =>
    (await client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: name }))).Rules ?? [];

  beforeAll(async () => {
    client = testS3Client(s.s3);
    for (const name of [bucket, copyBucket]) {
      await client.send(new CreateBucketCommand({ Bucket: name, CreateBucketConfiguration: { LocationConstraint: s.s3.region as BucketLocationConstraint } }));
    }
    await client.send(new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: [foreignRule] } }));
    const env = await productEnv(s, 'lifecycle', {
      s3: true,
      assets: false,
      env: {
        S3_BUCKET: bucket,
        S3_PRUNER_ACCESS_KEY_ID: s.s3.accessKeyId,
        S3_PRUNER_SECRET_ACCESS_KEY: s.s3.secretAccessKey,
        S3_COPY_BUCKET: copyBucket,
        S3_COPY_ENDPOINT_URL: s.s3.endpoint,
        S3_COPY_REGION: s.s3.region,
        S3_COPY_SSE_S3: 'AES256',
        S3_COPY_ACCESS_KEY_ID: s.s3.accessKeyId,
        S3_COPY_SECRET_ACCESS_KEY: s.s3.secretAccessKey,
        S3_RETENTION: 'gfs',
      },
    });
    config = loadConfig(env);
    prefix = `${config.s3!.prefix}/test/`;
  });
  afterAll(() => client?.destroy());

  it('`lifecycle apply` writes the policy rules next to the bucket own; GetBucketLifecycleConfiguration shows them', async () => {
    const before = capture();
    expect(await lifecycleShowCommand(config, {}, before.stream)).toBe(false);
    expect(before.text()).toContain(`WRONG   erp4-backup:${prefix}:daily:manifest: wants ${prefix} tier=daily object=manifest: expire after 402 days (MISSING)`);

    const applied = capture();
    await lifecycleApplyCommand(config, {}, applied.stream);
    expect(applied.text()).toContain(`s3: applied 7 lifecycle rule(s) for ${prefix} (other rules of the bucket kept: 1)`);
    expect(applied.text()).toContain(`s3-copy: applied 7 lifecycle rule(s) for ${config.s3Copy!.prefix}/test/`);

    const wanted = lifecycleRules(retentionPolicyOf({ kind: 'gfs' }, 'Asia/Tokyo'), prefix);
    const stored = await bucketRules(bucket);
    expect(stored.map((rule) => rule.ID).sort()).toEqual([foreignRule.ID, ...wanted.map((rule) => rule.ID)].sort());
    for (const rule of wanted) expect(describeRule(stored.find((r) => r.ID === rule.ID)!)).toBe(describeRule(rule));
    expect(stored.map(describeRule).sort()).toEqual(
      [
        'logs/: expire after 30 days',
        `${prefix} tier=daily object=manifest: expire after 402 days`,
        `${prefix} tier=daily object=artifact: expire after 404 days`,
        `${prefix} tier=critical object=manifest: expire after 32 days`,
        `${prefix} tier=critical object=artifact: expire after 34 days`,
        `${prefix} tier=weekly-full object=manifest: expire after 402 days`,
        `${prefix} tier=weekly-full object=artifact: expire after 404 days`,
        `${prefix}: abort incomplete multipart uploads after 1 day(s)`,
      ].sort(),
    );
    expect((await bucketRules(copyBucket)).map((rule) => rule.ID)).toEqual(
      lifecycleRules(retentionPolicyOf({ kind: 'gfs' }, 'Asia/Tokyo'), `${config.s3Copy!.prefix}/test/`).map((rule) => rule.ID),
    );

    const after = capture();
    expect(await lifecycleShowCommand(config, {}, after.stream)).toBe(true);
    expect(after.text()).toContain('s3: in sync with the policy');
    expect(after.text()).toContain('other   another-team-logs: logs/: expire after 30 days (not managed by erp4-backup)');
  });

  it('the rules read back from the bucket never expire what the policy keeps, over 400 days of production backups', async () => {
    const rules = await bucketRules(bucket);
    const policy = retentionPolicyOf(config.prune.s3Retention, config.timeZone);
    const days = simulateSchedule({ firstDate: '2025-10-01', days: 400, pinnedManual: { 30: 'before release 4.1' }, pinnedNightly: { 89: 'quarter close' } });
    let kept: BackupRecord[] = [];
    let checked = 0;
    for (const day of days) {
      kept = planRetention([...kept, ...day.backups], day.pruneAt, policy)
        .decisions.filter((d) => d.action === 'keep')
        .map((d) => d.backup);
      for (const backup of kept) {
        const ageDays = (day.pruneAt.getTime() - Date.parse(backup.generatedAt)) / DAY_MS;
        const tier = desiredTier(backup, day.pruneAt, policy);
        for (const [key, object] of [[manifestKey({ env: 'test', prefix: 'erp4' }, backup.id), 'manifest'], [`test/db/erp4-${backup.id}.dump`, 'artifact']] as const) {
          const rule = expiringRule(rules, `${config.s3!.prefix}/${key}`, tierTags(tier, object), ageDays + RETAG_LEAD_DAYS);
          expect(rule, `${backup.id} on ${day.date}`).toBeUndefined();
          checked += 1;
        }
      }
    }
    expect(checked).toBeGreaterThan(30_000);
    // And the rules are not vacuous: a daily backup the policy let go a year ago is expired.
    const old = backupIdFor('daily', new Date('2025-10-10T17:00:00Z'));
    expect(expiringRule(rules, `${config.s3!.prefix}/${manifestKey({ env: 'test', prefix: 'erp4' }, old)}`, tierTags('daily', 'manifest'), 410)).toBeDefined();
  });

  it('`lifecycle show` reports a missing and a stale own rule; `apply` puts them right', async () => {
    const wanted = await bucketRules(bucket);
    const stale: LifecycleRule = { ID: `erp4-backup:${prefix}:old`, Status: 'Enabled', Filter: { Prefix: prefix }, Expiration: { Days: 3 } };
    const tampered = [...wanted.filter((rule) => rule.ID !== `erp4-backup:${prefix}:critical:manifest`), stale];
    await client.send(new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: tampered } }));
    const shown = capture();
    expect(await lifecycleShowCommand(config, { repo: 's3' }, shown.stream)).toBe(false);
    expect(shown.text()).toContain(`critical:manifest: wants ${prefix} tier=critical object=manifest: expire after 32 days (MISSING)`);
    expect(shown.text()).toContain(`STALE   erp4-backup:${prefix}:old: ${prefix}: expire after 3 days`);
    expect(shown.text()).not.toContain('s3-copy');
    await lifecycleApplyCommand(config, { repo: 's3' }, capture().stream);
    expect(await lifecycleShowCommand(config, {}, capture().stream)).toBe(true);
  });

  describe('pin and unpin', () => {
    let repositories: Map<string, Repository>;
    const made = new Date(Math.floor((Date.now() - 3 * DAY_MS) / 1000) * 1000);
    const backup: BackupRecord = { id: backupIdFor('daily', made), kind: 'daily', generatedAt: made.toISOString(), pinned: false };

    beforeAll(async () => {
      repositories = createRepositories(config, 'writer');
      for (const name of ['local', 's3']) await writeSyntheticBackup(repositories.get(name)!, { env: 'test', prefix: 'erp4' }, backup);
    });
    afterAll(async () => {
      await Promise.all([...(repositories?.values() ?? [])].map((repository) => repository.close()));
    });

    const pinnedIn = async (name: string) => {
      const repository = repositories.get(name)!;
      return parseManifest(await repository.getBytes(manifestKey({ env: 'test', prefix: 'erp4' }, backup.id)), name).pinned;
    };
    const tiers = async () => {
      const s3 = repositories.get('s3') as S3Repository;
      return Promise.all(syntheticKeys({ env: 'test', prefix: 'erp4' }, backup.id).map(async (key) => (await s3.getObjectTags(key)).tier));
    };

    it('rewrite the manifest in every repository holding the backup, and move its S3 objects out of every expiry rule', async () => {
      expect(await tiers()).toEqual(['daily', 'daily', 'daily']);
      const pinned = capture();
      expect(await pinCommand(config, backup.id, true, pinned.stream)).toBe(true);
      expect(pinned.text()).toContain(`local: pinned ${backup.id}\n`);
      expect(pinned.text()).toContain(`s3: pinned ${backup.id} (3 objects tagged tier=pinned)`);
      expect(pinned.text()).toContain(`s3-copy: does not hold ${backup.id}`);
      expect([await pinnedIn('local'), await pinnedIn('s3')]).toEqual([true, true]);
      expect(await tiers()).toEqual(['pinned', 'pinned', 'pinned']);
      const rules = await bucketRules(bucket);
      const s3 = repositories.get('s3') as S3Repository;
      for (const key of syntheticKeys({ env: 'test', prefix: 'erp4' }, backup.id)) {
        expect(expiringRule(rules, `${config.s3!.prefix}/${key}`, await s3.getObjectTags(key), 100_000), key).toBeUndefined();
      }

      expect(await pinCommand(config, backup.id, false, capture().stream)).toBe(true);
      expect([await pinnedIn('local'), await pinnedIn('s3')]).toEqual([false, false]);
      expect(await tiers()).toEqual(['daily', 'daily', 'daily']);
    });

    it('refuses a backup no repository holds', async () => {
      await expect(pinCommand(config, backupIdFor('daily', new Date('2020-01-01T00:00:00Z')), true, capture().stream)).rejects.toThrow(
        /backup "20200101T000000Z-daily" is in no configured repository/,
      );
    });
  });
});

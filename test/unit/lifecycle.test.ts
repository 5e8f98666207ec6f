import type { LifecycleRule } from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BACKUP_KINDS, artifactKey, manifestKey } from '../../src/layout.js';
import {
  desiredTier,
  describeRule,
  lifecycleRules,
  mergedRules,
  objectTagsForKey,
  RETAG_LEAD_DAYS,
  tierTags,
  type TaggedObject,
} from '../../src/lifecycle.js';
import { retentionPolicyOf } from '../../src/prune-policy.js';
import { defaultProductionPolicy, planRetention, pocLocalPolicy, remotePolicy, type BackupRecord, type RetentionPolicy } from '../../src/retention.js';
import { expiringRule } from '../helpers/s3-lifecycle.js';
import { simulateSchedule } from './retention-simulation.js';

const DAY_MS = 86_400_000;
const BUCKET_PREFIX = 'erp4/prod/';
const layout = { env: 'prod', prefix: 'erp4' };

/** Both kinds of object of a backup, as the bucket holds them, with the tags Prune gives a kept backup. */
function keptObjects(backup: BackupRecord, now: Date, policy: RetentionPolicy) {
  const tier = desiredTier(backup, now, policy);
  const objects: Array<[string, TaggedObject]> = [
    [manifestKey(layout, backup.id), 'manifest'],
    [artifactKey(layout, 'db', backup.id, true), 'artifact'],
  ];
  return objects.map(([key, object]) => ({ bucketKey: `erp4/${key}`, tags: tierTags(tier, object) }));
}

describe('lifecycle rules from the retention policy', () => {
  it('expire each pruned tier after the longest span its rule keeps plus a margin, artifacts after manifests; never manual', () => {
    const rules = lifecycleRules(defaultProductionPolicy, BUCKET_PREFIX);
    expect(rules.map(describeRule)).toEqual([
      'erp4/prod/ tier=daily object=manifest: expire after 402 days',
      'erp4/prod/ tier=daily object=artifact: expire after 404 days',
      'erp4/prod/ tier=critical object=manifest: expire after 32 days',
      'erp4/prod/ tier=critical object=artifact: expire after 34 days',
      'erp4/prod/ tier=weekly-full object=manifest: expire after 402 days',
      'erp4/prod/ tier=weekly-full object=artifact: expire after 404 days',
      'erp4/prod/: abort incomplete multipart uploads after 1 day(s)',
    ]);
    expect(rules.every((rule) => rule.ID?.startsWith('erp4-backup:erp4/prod/:'))).toBe(true);
    expect(lifecycleRules(pocLocalPolicy, BUCKET_PREFIX).map(describeRule).filter((rule) => rule.includes('expire'))).toEqual([
      'erp4/prod/ tier=daily object=manifest: expire after 37 days',
      'erp4/prod/ tier=daily object=artifact: expire after 39 days',
      'erp4/prod/ tier=critical object=manifest: expire after 37 days',
      'erp4/prod/ tier=critical object=artifact: expire after 39 days',
      'erp4/prod/ tier=weekly-full object=manifest: expire after 37 days',
      'erp4/prod/ tier=weekly-full object=artifact: expire after 39 days',
    ]);
  });

  it('do expire what the policy let go, and never pinned, retained or manual objects', () => {
    const rules = lifecycleRules(defaultProductionPolicy, BUCKET_PREFIX);
    const key = `erp4/${manifestKey(layout, '20250101T170000Z-daily')}`;
    expect(expiringRule(rules, key, tierTags('daily', 'manifest'), 500)?.ID).toBe('erp4-backup:erp4/prod/:daily:manifest');
    expect(expiringRule(rules, key, tierTags('daily', 'manifest'), 401)).toBeUndefined();
    expect(expiringRule(rules, `erp4/staging/meta/x.manifest.json`, tierTags('daily', 'manifest'), 500)).toBeUndefined();
    for (const tier of ['pinned', 'retained', 'manual'] as const) {
      expect(expiringRule(rules, key, tierTags(tier, 'manifest'), 100_000), tier).toBeUndefined();
    }
    expect(expiringRule(rules, key, {}, 100_000)).toBeUndefined();
  });

  it('tag objects at put time by their key: tier = kind, manifest or artifact; nothing for other objects', () => {
    expect(objectTagsForKey('prod/db/erp4-20260330T170000Z-critical.dump.gpg')).toEqual({ tier: 'critical', object: 'artifact' });
    expect(objectTagsForKey('prod/meta/erp4-20260330T170000Z-manual.manifest.json')).toEqual({ tier: 'manual', object: 'manifest' });
    expect(objectTagsForKey('prod/meta/drills/20260330T170000Z-daily/drill.json')).toBeUndefined();
  });

  it('replace only this prefix own rules when merged into a bucket configuration', () => {
    const foreign: LifecycleRule = { ID: 'logs', Status: 'Enabled', Filter: { Prefix: 'logs/' }, Expiration: { Days: 30 } };
    const otherEnv = lifecycleRules(defaultProductionPolicy, 'erp4/staging/');
    const stale: LifecycleRule = { ID: 'erp4-backup:erp4/prod/:old-rule', Status: 'Enabled', Filter: { Prefix: BUCKET_PREFIX }, Expiration: { Days: 1 } };
    const wanted = lifecycleRules(defaultProductionPolicy, BUCKET_PREFIX);
    expect(mergedRules([foreign, ...otherEnv, stale], wanted, BUCKET_PREFIX)).toEqual([foreign, ...otherEnv, ...wanted]);
  });
});

describe('nothing the policy keeps is expired by the lifecycle rules', () => {
  const START = Date.parse('2024-01-01T00:00:00Z');
  const historyArb = fc
    .uniqueArray(
      fc.record({
        kind: fc.constantFrom(...BACKUP_KINDS),
        // Up to three years, so gaps of months and backups that stopped long ago occur.
        minute: fc.integer({ min: 0, max: 3 * 365 * 24 * 60 }),
        pinned: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      }),
      { selector: (raw) => `${raw.kind}@${raw.minute}`, minLength: 1, maxLength: 60 },
    )
    .map((raws) =>
      raws.map(({ kind, minute, pinned }): BackupRecord => {
        const at = new Date(START + minute * 60_000 - ((START + minute * 60_000) % 1000));
        return { id: `${at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z')}-${kind}`, kind, generatedAt: at.toISOString(), pinned };
      }),
    );
  const policyArb = fc.oneof(
    fc.constant(defaultProductionPolicy),
    fc.constant(pocLocalPolicy),
    fc.integer({ min: 1, max: 90 }).map((days) => remotePolicy(days)),
    fc.constant(retentionPolicyOf({ kind: 'gfs' }, 'America/New_York')),
  );

  it('for 1,000 random histories, policies and clocks, even with Prune missing RETAG_LEAD_DAYS of runs', () => {
    fc.assert(
      fc.property(historyArb, policyArb, fc.integer({ min: 0, max: 800 * 24 * 60 }), (history, policy, minutesAfterLast) => {
        const last = Math.max(...history.map((b) => Date.parse(b.generatedAt)));
        const now = new Date(last + minutesAfterLast * 60_000);
        const rules = lifecycleRules(policy, BUCKET_PREFIX);
        for (const decision of planRetention(history, now, policy).decisions) {
          if (decision.action !== 'keep') continue;
          // The object was written after the backup's generated_at: by S3's count it is younger still.
          const ageDays = (now.getTime() - Date.parse(decision.backup.generatedAt)) / DAY_MS;
          for (const { bucketKey, tags } of keptObjects(decision.backup, now, policy)) {
            const rule = expiringRule(rules, bucketKey, tags, ageDays + RETAG_LEAD_DAYS);
            if (rule) throw new Error(`${decision.backup.id} (${decision.reasons.join(', ')}) tagged ${JSON.stringify(tags)} would be expired by ${rule.ID}`);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('in 400 days of the production schedule pruned daily, no kept backup ever needs moving out of its tier', () => {
    const days = simulateSchedule({ firstDate: '2025-10-01', days: 400, pinnedManual: { 30: 'before release 4.1' }, pinnedNightly: { 89: 'quarter close' } });
    let kept: BackupRecord[] = [];
    let oldestKeptDaily = 0;
    for (const day of days) {
      kept = planRetention([...kept, ...day.backups], day.pruneAt, defaultProductionPolicy)
        .decisions.filter((d) => d.action === 'keep')
        .map((d) => d.backup);
      for (const backup of kept) {
        expect(desiredTier(backup, day.pruneAt, defaultProductionPolicy), backup.id).toBe(backup.pinned ? 'pinned' : backup.kind);
        if (backup.kind === 'daily' && !backup.pinned) {
          oldestKeptDaily = Math.max(oldestKeptDaily, (day.pruneAt.getTime() - Date.parse(backup.generatedAt)) / DAY_MS);
        }
      }
    }
    // Twelve monthly slots reach back a little less than a year; the daily tier expires after 402 days.
    expect(oldestKeptDaily).toBeGreaterThan(330);
    expect(oldestKeptDaily).toBeLessThan(402 - RETAG_LEAD_DAYS);
  });
});

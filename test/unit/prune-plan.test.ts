import { describe, expect, it } from 'vitest';
import { backupObjectOf } from '../../src/backup-objects.js';
import { artifactKey, backupIdFor, manifestKey, type BackupKind } from '../../src/layout.js';
import type { Manifest } from '../../src/manifest.js';
import { planRepositoryPrune, type BackupsInUse, type RepositoryPlanInput } from '../../src/prune-plan.js';
import { describePolicy, retentionPolicyOf, type RepositoryRetention } from '../../src/prune-policy.js';
import { defaultProductionPolicy, RetentionRefusedError, type BackupRecord, type RetentionPolicy } from '../../src/retention.js';
import { syntheticManifest } from '../helpers/synthetic-backups.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const layout = { env: 'prod', prefix: 'erp4' };
const NOW = new Date('2026-03-31T14:30:00Z'); // 23:30 in Tokyo
const noneInUse: BackupsInUse = { restoreDrills: {}, inProgress: [] };

const retention = (policy: RetentionPolicy, lifecycle = false): RepositoryRetention => ({ policy, description: describePolicy('test', policy), lifecycle });
const threeDays = retention(retentionPolicyOf({ kind: 'days', days: 3 }, 'Asia/Tokyo'));

function record(kind: BackupKind, at: Date, extra: Partial<BackupRecord> = {}): BackupRecord {
  return { id: backupIdFor(kind, at), kind, generatedAt: at.toISOString(), pinned: false, ...extra };
}

/** Nightly backups at 02:00 Tokyo (17:00Z) for the `days` days before NOW, oldest first. */
function nightlies(days: number): BackupRecord[] {
  return Array.from({ length: days }, (_, i) => record('daily', new Date(Date.parse('2026-03-30T17:00:00Z') - (days - 1 - i) * DAY_MS)));
}

/** The stored objects of complete backups: their manifests and artifacts, written when the backup was made. */
function storedObjects(manifests: Manifest[]): Array<{ key: string; modifiedAt: string }> {
  return manifests.flatMap((manifest) =>
    [manifestKey(layout, manifest.id), ...Object.values(manifest.artifacts).map((a) => a!.key)].map((key) => ({ key, modifiedAt: manifest.generatedAt })),
  );
}

function plan(overrides: Partial<RepositoryPlanInput> & { manifests?: Manifest[] } = {}) {
  const manifests = overrides.manifests ?? [];
  return planRepositoryPrune({
    layout,
    now: NOW,
    inventory: { repository: 'local', backups: manifests, invalidManifests: [], objects: storedObjects(manifests), incompleteUploads: [] },
    retention: threeDays,
    abandonedAfterMs: 24 * HOUR_MS,
    inUse: noneInUse,
    ...overrides,
  });
}

const deleted = (p: ReturnType<typeof plan>) => p.backups.filter((b) => b.action === 'delete').map((b) => b.id);

describe('backupObjectOf', () => {
  it('reads the backup id, kind and object type from layout keys of any prefix, and nothing else', () => {
    expect(backupObjectOf('prod/db/erp4-20260330T170000Z-daily.dump.gpg')).toEqual({
      env: 'prod',
      backupId: '20260330T170000Z-daily',
      kind: 'daily',
      object: 'artifact',
      artifact: 'db',
    });
    expect(backupObjectOf('prod/meta/old.prefix-20260330T170000Z-weekly-full.manifest.json')).toMatchObject({ object: 'manifest', kind: 'weekly-full' });
    expect(backupObjectOf('prod/assets/erp4-20260330T170000Z-manual.tar')).toMatchObject({ object: 'artifact', artifact: 'assets' });
    for (const other of [
      'prod/meta/drills/20260330T170000Z-daily/drill-1.json',
      'prod/db/erp4-20260330T170000Z-daily.sql',
      'prod/meta/erp4-20260330T170000Z-daily.dump',
      'prod/db/notes.txt',
      'prod/db/erp4-20260330T170000Z-hourly.dump',
      'erp4-20260330T170000Z-daily.dump',
    ]) {
      expect(backupObjectOf(other), other).toBeUndefined();
    }
  });
});

describe('planRepositoryPrune', () => {
  it('deletes what the policy drops, manifest key and every artifact of the backup id, newest first', () => {
    const manifests = nightlies(6).map((r) => syntheticManifest(layout, r));
    const oldest = manifests[0]!;
    // A stray artifact of the same backup from an earlier attempt (unencrypted beside the encrypted one).
    const stray = artifactKey(layout, 'db', oldest.id, true);
    const result = plan({
      manifests,
      inventory: {
        repository: 'local',
        backups: manifests,
        invalidManifests: [],
        objects: [...storedObjects(manifests), { key: stray, modifiedAt: oldest.generatedAt }],
        incompleteUploads: [],
      },
    });
    expect(result.backups.map((b) => b.id)).toEqual(manifests.map((m) => m.id).reverse());
    expect(deleted(result)).toEqual(manifests.slice(0, 3).map((m) => m.id).reverse());
    const first = result.backups.find((b) => b.id === oldest.id)!;
    expect(first).toMatchObject({ action: 'delete', reasons: [], manifestKey: manifestKey(layout, oldest.id) });
    expect(first.artifactKeys).toEqual([oldest.artifacts.db!.key, stray, oldest.artifacts.globals!.key].sort());
    expect(result.backups.filter((b) => b.action === 'keep').map((b) => b.reasons[0])).toEqual(['newest', 'within 3d', 'within 3d']);
    expect(result.abandoned).toEqual([]);
  });

  it('never deletes an artifact a manifest names outside its own backup (a hand-edited manifest)', () => {
    const [old, ...others] = nightlies(6).map((r) => syntheticManifest(layout, r));
    const kept = others.at(-1);
    const edited: Manifest = { ...old!, artifacts: { ...old!.artifacts, db: { ...old!.artifacts.db!, key: kept!.artifacts.db!.key } } };
    const result = plan({ manifests: [edited, ...others] });
    const decision = result.backups.find((b) => b.id === old!.id)!;
    expect(decision.action).toBe('delete');
    expect(decision.artifactKeys).not.toContain(kept!.artifacts.db!.key);
    expect(result.warnings.join('\n')).toContain(`names artifact ${kept!.artifacts.db!.key}, which is not one of its own objects`);
  });

  it('keeps a backup a running RestoreDrill uses, naming the drill', () => {
    const manifests = nightlies(6).map((r) => syntheticManifest(layout, r));
    const drilled = manifests[0]!.id;
    const result = plan({ manifests, inUse: { restoreDrills: { [drilled]: ['drill-7'] }, inProgress: [] } });
    expect(result.backups.find((b) => b.id === drilled)).toMatchObject({ action: 'keep', reasons: ['in use by RestoreDrill drill-7'] });
    expect(deleted(result)).toHaveLength(2);
  });

  it('keeps on the primary what the off-site copy has not got yet (S8), and deletes what it has', () => {
    const manifests = nightlies(8).map((r) => syntheticManifest(layout, r));
    // The copy stopped receiving four days ago: it holds days 0-3 (and a critical backup of today).
    const copy = [...manifests.slice(0, 4), syntheticManifest(layout, record('critical', new Date(NOW.getTime() - HOUR_MS)))];
    const result = plan({ manifests, offsiteCopy: { repository: 's3-copy', backups: copy } });
    expect(deleted(result)).toEqual(manifests.slice(0, 4).map((m) => m.id).reverse());
    expect(result.backups.find((b) => b.id === manifests[4]!.id)).toMatchObject({ action: 'keep', reasons: ['not yet in s3-copy'] });
    expect(result.warnings.join('\n')).toContain('1 backup(s) the policy would delete are kept: s3-copy does not hold them');

    const emptyCopy = plan({ manifests, offsiteCopy: { repository: 's3-copy', backups: [] } });
    expect(deleted(emptyCopy)).toEqual([]);
  });

  it('reaps artifacts without a manifest once they are older than the limit, by their id and their write time', () => {
    const complete = nightlies(2).map((r) => syntheticManifest(layout, r));
    const orphanOf = (hoursAgo: number, writtenHoursAgo = hoursAgo) => {
      const id = backupIdFor('daily', new Date(NOW.getTime() - hoursAgo * HOUR_MS));
      return { id, key: artifactKey(layout, 'db', id, true), modifiedAt: new Date(NOW.getTime() - writtenHoursAgo * HOUR_MS).toISOString() };
    };
    const old = orphanOf(30);
    const young = orphanOf(20);
    const rewritten = orphanOf(40, 2); // an old id, but uploaded two hours ago: maybe a retry of that backup
    const running = orphanOf(50);
    const withInvalidManifest = orphanOf(60);
    const result = plan({
      manifests: complete,
      inventory: {
        repository: 'local',
        backups: complete,
        invalidManifests: [{ key: manifestKey(layout, withInvalidManifest.id), error: 'truncated' }],
        objects: [
          ...storedObjects(complete),
          ...[old, young, rewritten, running, withInvalidManifest].map(({ key, modifiedAt }) => ({ key, modifiedAt })),
          { key: manifestKey(layout, withInvalidManifest.id), modifiedAt: NOW.toISOString() },
        ],
        incompleteUploads: [],
      },
      inUse: { restoreDrills: {}, inProgress: [running.id] },
    });
    expect(result.abandoned).toEqual([{ key: old.key, backupId: old.id, reason: 'no manifest, last written 30h ago' }]);
    expect(result.warnings.join('\n')).toContain(`manifest ${manifestKey(layout, withInvalidManifest.id)} is invalid`);
  });

  it('aborts unfinished multipart uploads older than the limit only', () => {
    const result = plan({
      inventory: {
        repository: 's3',
        backups: [],
        invalidManifests: [],
        objects: [],
        incompleteUploads: [
          { key: 'prod/db/a.dump', uploadId: 'old', initiatedAt: new Date(NOW.getTime() - 25 * HOUR_MS).toISOString() },
          { key: 'prod/db/b.dump', uploadId: 'young', initiatedAt: new Date(NOW.getTime() - 23 * HOUR_MS).toISOString() },
          { key: 'prod/db/c.dump', uploadId: 'unknown' },
        ],
      },
    });
    expect(result.abandonedUploads.map((u) => u.uploadId)).toEqual(['old']);
    expect(result.warnings.join('\n')).toContain('multipart upload unknown of prod/db/c.dump reports no start time');
  });

  it('lists kept backups whose lifecycle tier must change: pinned ones, and old ones the policy still keeps', () => {
    const pinned = syntheticManifest(layout, record('daily', new Date(NOW.getTime() - 3 * DAY_MS), { pinned: true }));
    // Backups stopped a year ago: the policy keeps the last ones, which the tier's expiry would soon reach.
    const stale = syntheticManifest(layout, record('critical', new Date(NOW.getTime() - 400 * DAY_MS)));
    const fresh = syntheticManifest(layout, record('daily', new Date(NOW.getTime() - DAY_MS)));
    const manifests = [pinned, stale, fresh];
    const s3 = retention(defaultProductionPolicy, true);
    const result = plan({ manifests, retention: s3 });
    expect(result.retag).toEqual([
      {
        backupId: pinned.id,
        tier: 'pinned',
        objects: [
          { key: manifestKey(layout, pinned.id), object: 'manifest' },
          ...[pinned.artifacts.db!.key, pinned.artifacts.globals!.key].sort().map((key) => ({ key, object: 'artifact' })),
        ],
      },
      expect.objectContaining({ backupId: stale.id, tier: 'retained' }),
    ]);
    expect(plan({ manifests, retention: { ...s3, lifecycle: false } }).retag).toEqual([]);
  });

  it('refuses, deleting nothing, when the policy keeps none of a kind', () => {
    const empty: RetentionPolicy = { ...defaultProductionPolicy, rules: { ...defaultProductionPolicy.rules, daily: {} } };
    expect(() => plan({ manifests: nightlies(3).map((r) => syntheticManifest(layout, r)), retention: retention(empty) })).toThrow(RetentionRefusedError);
  });
});

import { describe, expect, it } from 'vitest';
import {
  evaluateFreshness,
  formatAge,
  reconcileIncidents,
  type BackupFact,
  type DrillFact,
  type FreshnessFacts,
  type FreshnessPolicy,
  type OpenIncident,
  type RepositoryFacts,
} from '../../src/freshness.js';
import { backupIdFor, type BackupKind } from '../../src/layout.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const now = new Date('2026-12-01T03:00:00Z');
const policy: FreshnessPolicy = { rpoDailyMs: 24 * HOUR, rpoCriticalMs: 6 * HOUR, drillMaxAgeMs: 35 * DAY, offsiteMaxLagMs: 2 * HOUR };

function backup(kind: BackupKind, ageMs: number): BackupFact {
  const at = new Date(now.getTime() - ageMs);
  return { id: backupIdFor(kind, at), kind, generatedAt: at.toISOString() };
}

function drill(outcome: string, ageMs: number, cause?: string): DrillFact {
  const at = new Date(now.getTime() - ageMs).toISOString();
  return { key: `test/meta/drills/x/${at}.json`, outcome, finishedAt: at, ...(cause ? { cause } : {}) };
}

const passedDrill = drill('passed', 3 * DAY);

function repo(name: string, backups: BackupFact[], drills: DrillFact[] = []): RepositoryFacts {
  return { name, backups, drills };
}

function facts(repositories: RepositoryFacts[], overrides: Partial<FreshnessPolicy> = {}): FreshnessFacts {
  return { env: 'test', policy: { ...policy, ...overrides }, repositories };
}

const ids = (f: FreshnessFacts, at = now) => evaluateFreshness(f, at).map((finding) => finding.id);

describe('evaluateFreshness: RPO (S9)', () => {
  it('finds nothing wrong with a fresh daily and critical backup and a recent passed drill', () => {
    expect(ids(facts([repo('local', [backup('daily', 1 * HOUR), backup('critical', 5 * HOUR)], [passedDrill])]))).toEqual([]);
  });

  it('alerts when the newest whole-database backup is older than RPO_DAILY, and says how old', () => {
    const stale = backup('daily', 25 * HOUR);
    const [finding, ...rest] = evaluateFreshness(facts([repo('local', [backup('daily', 49 * HOUR), stale], [passedDrill])], { rpoCriticalMs: undefined }), now);
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({ id: 'backup-stale:daily', check: 'backup-stale', details: { newest_backup: stale.id, age: '1d01h', rpo: '1d00h' } });
    expect(finding?.summary).toContain(`newest whole-database backup ${stale.id} is 1d01h old`);
  });

  it('is not stale at exactly the RPO, stale one minute later', () => {
    const f = facts([repo('local', [backup('daily', 24 * HOUR)], [passedDrill])], { rpoCriticalMs: undefined });
    expect(ids(f)).toEqual([]);
    expect(ids(f, new Date(now.getTime() + 60_000))).toEqual(['backup-stale:daily']);
  });

  it('alerts when there is no backup at all', () => {
    const [finding] = evaluateFreshness(facts([repo('local', [], [passedDrill])], { rpoCriticalMs: undefined }), now);
    expect(finding).toMatchObject({ id: 'backup-stale:daily', summary: expect.stringContaining('no complete whole-database backup') });
  });

  it('counts a manual backup as a whole-database backup, but not a critical or weekly-full one', () => {
    const only = (b: BackupFact) => ids(facts([repo('local', [b], [passedDrill])], { rpoCriticalMs: undefined }));
    expect(only(backup('manual', 2 * HOUR))).toEqual([]);
    expect(only(backup('critical', 2 * HOUR))).toEqual(['backup-stale:daily']);
    expect(only(backup('weekly-full', 2 * HOUR))).toEqual(['backup-stale:daily']);
  });

  it('checks the important tables against RPO_CRITICAL, covered by critical, weekly-full, daily and manual backups', () => {
    const daily = backup('daily', 7 * HOUR);
    expect(ids(facts([repo('local', [daily], [passedDrill])]))).toEqual(['backup-stale:critical']);
    for (const kind of ['critical', 'weekly-full', 'daily', 'manual'] as const) {
      expect(ids(facts([repo('local', [daily, backup(kind, 5 * HOUR)], [passedDrill])])), kind).toEqual([]);
    }
  });

  it('does not check RPO_CRITICAL without CRITICAL_TABLES', () => {
    expect(ids(facts([repo('local', [backup('daily', 20 * HOUR)], [passedDrill])], { rpoCriticalMs: undefined }))).toEqual([]);
  });

  it('takes the newest backup from any readable repository', () => {
    const f = facts([repo('local', [backup('daily', 30 * HOUR)], [passedDrill]), repo('s3', [backup('daily', 30 * HOUR), backup('daily', 2 * HOUR)])], {
      rpoCriticalMs: undefined,
    });
    expect(ids(f)).toEqual([]);
  });
});

describe('evaluateFreshness: restore drills (S25)', () => {
  const withDrills = (drills: DrillFact[]) => evaluateFreshness(facts([repo('local', [backup('daily', HOUR)], drills)], { rpoCriticalMs: undefined }), now);

  it('alerts when no drill was ever recorded', () => {
    expect(withDrills([])).toMatchObject([{ id: 'drill-stale', summary: expect.stringContaining('no restore drill recorded') }]);
  });

  it('alerts when the newest drill failed, with its cause, even if an older one passed', () => {
    const findings = withDrills([drill('passed', 10 * DAY), drill('failed', 2 * DAY, 'fingerprint of public.invoices differs')]);
    expect(findings).toMatchObject([{ id: 'drill-failed', details: { cause: 'fingerprint of public.invoices differs', outcome: 'failed' } }]);
    expect(findings[0]?.summary).toContain('fingerprint of public.invoices differs');
  });

  it('treats a drill that was never approved as not passed', () => {
    expect(withDrills([drill('not-approved', 2 * DAY)]).map((f) => f.id)).toEqual(['drill-failed']);
  });

  it('is satisfied by a newer passed drill after a failure', () => {
    expect(withDrills([drill('failed', 9 * DAY), drill('passed', 1 * DAY)])).toEqual([]);
  });

  it('alerts when the newest passed drill is older than DRILL_MAX_AGE', () => {
    expect(withDrills([drill('passed', 35 * DAY)])).toEqual([]);
    expect(withDrills([drill('passed', 36 * DAY)])).toMatchObject([{ id: 'drill-stale', details: { age: '36d00h' } }]);
  });
});

describe('evaluateFreshness: off-site copies', () => {
  const oldest = backup('daily', 26 * HOUR);
  const newest = backup('daily', 3 * HOUR);
  const local = repo('local', [oldest, newest], [passedDrill]);
  const check = (offsite: RepositoryFacts) => evaluateFreshness(facts([local, offsite], { rpoCriticalMs: undefined }), now);

  it('is quiet when the off-site repository holds the newest local backup', () => {
    expect(check(repo('s3', [newest]))).toEqual([]);
  });

  it('alerts when the off-site repository lacks a local backup for longer than OFFSITE_MAX_LAG', () => {
    expect(check(repo('sftp', [oldest]))).toMatchObject([
      { id: 'offsite-lag:sftp', details: { repository: 'sftp', missing_backups: newest.id, newest_offsite: oldest.id, lag: '3h00m' } },
    ]);
  });

  it('points the alert at the copy command that brings the off-site repository up to date', () => {
    expect(check(repo('sftp', [oldest]))[0]?.details.remedy).toBe('erp4-backup copy --from local --to sftp');
  });

  it('measures the lag from the oldest missing backup, and stays quiet within OFFSITE_MAX_LAG', () => {
    const recent = repo('local', [oldest, backup('daily', 90 * 60_000)], [passedDrill]);
    expect(evaluateFreshness(facts([recent, repo('s3', [oldest])], { rpoCriticalMs: undefined }), now)).toEqual([]);
    expect(check(repo('s3', []))).toMatchObject([{ id: 'offsite-lag:s3', details: { lag: '1d02h', newest_offsite: 'none' } }]);
  });

  it("names the host whose local repository it read (each host has its own)", () => {
    const onHost = { ...local, host: 'backup-2-0a1b2c3d' };
    const [finding] = evaluateFreshness(facts([onHost, repo('s3', [oldest])], { rpoCriticalMs: undefined }), now);
    expect(finding).toMatchObject({ id: 'offsite-lag:s3', details: { local_host: 'backup-2-0a1b2c3d' } });
    expect(finding!.summary).toContain('the local repository of host backup-2-0a1b2c3d holds');
  });

  it('ignores old backups an off-site copy never had when it holds a newer one', () => {
    const added = repo('s3', [newest]);
    expect(check(added)).toEqual([]);
  });
});

describe('evaluateFreshness: unreadable repositories', () => {
  it('reports each unreadable repository and judges the rest', () => {
    const f = facts(
      [repo('local', [backup('daily', 30 * HOUR)], [passedDrill]), { name: 's3', error: 'AccessDenied', backups: [], drills: [] }],
      { rpoCriticalMs: undefined },
    );
    expect(ids(f)).toEqual(['repository-unreadable:s3', 'backup-stale:daily']);
  });

  it('judges nothing else when no repository can be read', () => {
    const f = facts([{ name: 'local', error: 'EACCES', backups: [], drills: [] }]);
    expect(ids(f)).toEqual(['repository-unreadable:local']);
  });
});

describe('reconcileIncidents: alert once per incident', () => {
  const finding = (id: string) => ({ id, check: 'backup-stale' as const, summary: id, details: {} });
  const incident = (id: string): OpenIncident => ({ id, check: 'backup-stale', summary: id, openedAt: now.toISOString() });

  it('opens new findings, keeps announced ones quiet, and recovers the ones that are gone', () => {
    const changes = reconcileIncidents([incident('a'), incident('b')], [finding('b'), finding('c')]);
    expect(changes.opened.map((f) => f.id)).toEqual(['c']);
    expect(changes.recovered.map((i) => i.id)).toEqual(['a']);
  });

  it('changes nothing when the same problems persist', () => {
    expect(reconcileIncidents([incident('a')], [finding('a')])).toEqual({ opened: [], recovered: [] });
  });
});

describe('formatAge', () => {
  it.each([
    [59_000, '0h00m'],
    [90 * 60_000, '1h30m'],
    [25 * HOUR, '1d01h'],
    [36 * DAY, '36d00h'],
  ])('%d ms is %s', (ms, text) => {
    expect(formatAge(ms)).toBe(text);
  });
});

import { describe, expect, it } from 'vitest';
import type { BackupKind } from '../../src/layout.js';
import {
  defaultProductionPolicy,
  planRetention,
  pocLocalPolicy,
  remotePolicy,
  RetentionInputError,
  RetentionRefusedError,
  type BackupRecord,
  type KindRule,
  type RetentionPlan,
  type RetentionPolicy,
} from '../../src/retention.js';
import { simulateSchedule } from './retention-simulation.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

function backup(kind: BackupKind, generatedAt: string, extra: Partial<BackupRecord> = {}): BackupRecord {
  return { id: `${generatedAt}-${kind}`, kind, generatedAt, pinned: false, ...extra };
}

/** A policy that prunes only `daily` with `rule`; every other kind is kept whole. */
function dailyOnly(rule: KindRule, timeZone = 'Asia/Tokyo'): RetentionPolicy {
  const keepAll = { keepAll: 'not under test' };
  return { timeZone, rules: { daily: rule, critical: keepAll, 'weekly-full': keepAll, manual: keepAll } };
}

function keptReasons(plan: RetentionPlan): Record<string, string[]> {
  return Object.fromEntries(plan.decisions.filter((d) => d.action === 'keep').map((d) => [d.backup.id, d.reasons]));
}

function deletedIds(plan: RetentionPlan): string[] {
  return plan.decisions.filter((d) => d.action === 'delete').map((d) => d.backup.id);
}

/** `count` nightly backups at 02:00 Tokyo (17:00Z the day before), the first on `firstDate`. */
function nightlies(firstDate: string, count: number, skip: string[] = []): BackupRecord[] {
  const first = Date.parse(`${firstDate}T00:00:00Z`);
  return Array.from({ length: count }, (_, i) => new Date(first + i * DAY_MS))
    .filter((day) => !skip.includes(day.toISOString().slice(0, 10)))
    .map((day) => backup('daily', new Date(day.getTime() - 7 * HOUR_MS).toISOString()));
}

describe('calendar rules (restic semantics)', () => {
  it("reproduces restic's documented example: 12 Sundays, --keep-daily 4 keeps the last four", () => {
    const sundays = Array.from({ length: 12 }, (_, i) => new Date(Date.parse('2019-09-01T11:00:00Z') + i * 7 * DAY_MS));
    const history = sundays.map((time) => backup('daily', time.toISOString()));
    const plan = planRetention(history, new Date('2019-11-18T00:00:00Z'), dailyOnly({ keepDaily: 4 }, 'UTC'));
    expect(keptReasons(plan)).toEqual({
      '2019-11-17T11:00:00.000Z-daily': ['newest', 'daily 1/4'],
      '2019-11-10T11:00:00.000Z-daily': ['daily 2/4'],
      '2019-11-03T11:00:00.000Z-daily': ['daily 3/4'],
      '2019-10-27T11:00:00.000Z-daily': ['daily 4/4'],
    });
    expect(deletedIds(plan)).toHaveLength(8);
  });

  it("matches restic's documented daily-backup example: 7 daily, 4 more end-of-week, month ends", () => {
    // One backup a day for two years, the newest on a Sunday (2026-10-25), so that the seven
    // dailies are exactly one week; --keep-daily 7 --keep-weekly 5 --keep-monthly 12.
    const history = nightlies('2024-10-26', 2 * 365);
    const now = new Date('2026-10-26T00:00:00Z');
    const plan = planRetention(history, now, dailyOnly({ keepDaily: 7, keepWeekly: 5, keepMonthly: 12 }));
    const kept = plan.decisions.filter((d) => d.action === 'keep');
    const withReason = (prefix: string) => kept.filter((d) => d.reasons.some((r) => r.startsWith(prefix)));
    const tokyoDate = (d: { backup: BackupRecord }) => new Date(Date.parse(d.backup.generatedAt) + 9 * HOUR_MS);
    const newestId = kept[0]?.backup.id;

    expect(withReason('daily ')).toHaveLength(7);
    expect(withReason('weekly ')).toHaveLength(5);
    expect(withReason('monthly ')).toHaveLength(12);
    // Besides the newest, weekly ones are the last day of their week and monthly ones the last of their month.
    for (const d of withReason('weekly ').filter((d) => d.backup.id !== newestId)) {
      expect(tokyoDate(d).getUTCDay()).toBe(0);
    }
    for (const d of withReason('monthly ').filter((d) => d.backup.id !== newestId)) {
      expect(new Date(tokyoDate(d).getTime() + DAY_MS).getUTCDate()).toBe(1);
    }
    // The dailies already include one weekly: 7 + 4 weekly + 12 or 11 monthly (overlaps with the dailies).
    const dailyIds = new Set(withReason('daily ').map((d) => d.backup.id));
    const weeklyOutsideDaily = withReason('weekly ').filter((d) => !dailyIds.has(d.backup.id));
    expect(weeklyOutsideDaily).toHaveLength(4);
    // No month end (2026-09-30 is a Wednesday) falls among them: 11 besides the newest.
    expect(kept).toHaveLength(7 + 4 + 11);
    expect(deletedIds(plan)).toHaveLength(history.length - 22);
  });

  it('counts only days that have backups: a missed day pushes keep-daily one day further back', () => {
    // Nightlies 2026-11-01 .. 2026-11-20 (Tokyo), the one of 2026-11-17 missing.
    const history = nightlies('2026-11-01', 20, ['2026-11-17']);
    const plan = planRetention(history, new Date('2026-11-20T12:00:00Z'), dailyOnly({ keepDaily: 14 }));
    const kept = keptReasons(plan);
    expect(Object.keys(kept)).toHaveLength(14);
    // 14 days with backups reach back to 2026-11-06 (Tokyo), i.e. 2026-11-05T17:00Z.
    expect(kept['2026-11-05T17:00:00.000Z-daily']).toEqual(['daily 14/14']);
    expect(kept['2026-11-04T17:00:00.000Z-daily']).toBeUndefined();
    expect(kept['2026-11-19T17:00:00.000Z-daily']).toEqual(['newest', 'daily 1/14']);
    expect(kept['2026-11-17T17:00:00.000Z-daily']).toEqual(['daily 3/14']); // 11-18 Tokyo
    expect(kept['2026-11-15T17:00:00.000Z-daily']).toEqual(['daily 4/14']); // 11-16 Tokyo, after the gap
    expect(deletedIds(plan)).toEqual([
      '2026-11-04T17:00:00.000Z-daily',
      '2026-11-03T17:00:00.000Z-daily',
      '2026-11-02T17:00:00.000Z-daily',
      '2026-11-01T17:00:00.000Z-daily',
      '2026-10-31T17:00:00.000Z-daily',
    ]);
  });

  it('keeps the single backup of a month as that month', () => {
    const history = [
      ...nightlies('2026-09-01', 30),
      backup('daily', '2026-10-10T05:00:00Z'),
      ...nightlies('2026-11-01', 10),
    ];
    const plan = planRetention(history, new Date('2026-11-10T12:00:00Z'), dailyOnly({ keepMonthly: 3 }));
    expect(keptReasons(plan)).toEqual({
      '2026-11-09T17:00:00.000Z-daily': ['newest', 'monthly 2026-11'],
      '2026-10-10T05:00:00Z-daily': ['monthly 2026-10'],
      '2026-09-29T17:00:00.000Z-daily': ['monthly 2026-09'], // 2026-09-30 02:00 Tokyo
    });
  });

  it('keeps the oldest backup while a tier has fewer buckets than it may keep (restic)', () => {
    const history = nightlies('2026-10-20', 20);
    const plan = planRetention(history, new Date('2026-11-09T00:00:00Z'), dailyOnly({ keepDaily: 3, keepMonthly: 12 }));
    expect(keptReasons(plan)).toEqual({
      '2026-11-07T17:00:00.000Z-daily': ['newest', 'daily 1/3', 'monthly 2026-11'],
      '2026-11-06T17:00:00.000Z-daily': ['daily 2/3'],
      '2026-11-05T17:00:00.000Z-daily': ['daily 3/3'],
      '2026-10-30T17:00:00.000Z-daily': ['monthly 2026-10'],
      '2026-10-19T17:00:00.000Z-daily': ['oldest monthly'],
    });
    // A tier that takes the oldest backup anyway adds no second reason.
    const all = planRetention(history, new Date('2026-11-09T00:00:00Z'), dailyOnly({ keepDaily: 30 }));
    expect(keptReasons(all)['2026-10-19T17:00:00.000Z-daily']).toEqual(['daily 20/30']);
  });

  it('uses ISO week-years at the 2026/2027 boundary, in the configured zone', () => {
    // 2026-12-28 (Mon) .. 2027-01-03 (Sun) is 2026-W53; 2027-01-04 starts 2027-W01.
    const history = [
      backup('daily', '2026-12-27T03:00:00Z'), // Sun 12:00 Tokyo: 2026-W52
      backup('daily', '2026-12-31T03:00:00Z'), // Thu: 2026-W53, month 2026-12
      backup('daily', '2027-01-01T03:00:00Z'), // Fri: still 2026-W53, month 2027-01
      backup('daily', '2027-01-03T14:00:00Z'), // Sun 23:00 Tokyo: 2026-W53
      backup('daily', '2027-01-03T16:00:00Z'), // Mon 01:00 Tokyo: 2027-W01 (still Sunday in UTC)
    ];
    const now = new Date('2027-01-05T00:00:00Z');
    const tokyo = planRetention(history, now, dailyOnly({ keepWeekly: 3, keepMonthly: 2 }));
    expect(keptReasons(tokyo)).toEqual({
      '2027-01-03T16:00:00Z-daily': ['newest', 'weekly 2027-W01', 'monthly 2027-01'],
      '2027-01-03T14:00:00Z-daily': ['weekly 2026-W53'],
      '2026-12-31T03:00:00Z-daily': ['monthly 2026-12'],
      '2026-12-27T03:00:00Z-daily': ['weekly 2026-W52'],
    });
    const utc = planRetention(history, now, dailyOnly({ keepWeekly: 3, keepMonthly: 2 }, 'UTC'));
    expect(keptReasons(utc)).toEqual({
      '2027-01-03T16:00:00Z-daily': ['newest', 'weekly 2026-W53', 'monthly 2027-01'],
      '2026-12-31T03:00:00Z-daily': ['monthly 2026-12'],
      '2026-12-27T03:00:00Z-daily': ['weekly 2026-W52'],
    });
  });
});

describe('daylight-saving weekends (Europe/Berlin)', () => {
  // keepWeekly 2 is used up by the two weeks, so no `oldest weekly` joins in.
  const policy = dailyOnly({ keepDaily: 10, keepWeekly: 2 }, 'Europe/Berlin');

  it('autumn: the repeated 02:30 is one day, and late Sunday evening still belongs to that week', () => {
    // 2026-10-25 (Sunday): 03:00 CEST -> 02:00 CET.
    const history = [
      backup('daily', '2026-10-24T21:45:00Z'), // Sat 23:45 CEST
      backup('daily', '2026-10-24T22:30:00Z'), // Sun 00:30 CEST
      backup('daily', '2026-10-25T00:30:00Z'), // Sun 02:30 CEST
      backup('daily', '2026-10-25T01:30:00Z'), // Sun 02:30 CET (the repeated hour)
      backup('daily', '2026-10-25T22:30:00Z'), // Sun 23:30 CET (a fixed +02:00 would say Monday)
      backup('daily', '2026-10-25T23:30:00Z'), // Mon 00:30 CET
    ];
    const plan = planRetention(history, new Date('2026-10-26T12:00:00Z'), policy);
    expect(keptReasons(plan)).toEqual({
      '2026-10-25T23:30:00Z-daily': ['newest', 'daily 1/10', 'weekly 2026-W44'],
      '2026-10-25T22:30:00Z-daily': ['daily 2/10', 'weekly 2026-W43'],
      '2026-10-24T21:45:00Z-daily': ['daily 3/10'],
    });
  });

  it('spring: 02:30 does not exist, and days still break at local midnight', () => {
    // 2026-03-29 (Sunday): 02:00 CET -> 03:00 CEST.
    const history = [
      backup('daily', '2026-03-28T22:30:00Z'), // Sat 23:30 CET
      backup('daily', '2026-03-28T23:30:00Z'), // Sun 00:30 CET
      backup('daily', '2026-03-29T01:30:00Z'), // Sun 03:30 CEST: a 02:30 job runs here
      backup('daily', '2026-03-29T21:30:00Z'), // Sun 23:30 CEST (a fixed +01:00 would say 22:30)
      backup('daily', '2026-03-29T22:30:00Z'), // Mon 00:30 CEST (a fixed +01:00 would say Sunday)
    ];
    const plan = planRetention(history, new Date('2026-03-30T12:00:00Z'), policy);
    expect(keptReasons(plan)).toEqual({
      '2026-03-29T22:30:00Z-daily': ['newest', 'daily 1/10', 'weekly 2026-W14'],
      '2026-03-29T21:30:00Z-daily': ['daily 2/10', 'weekly 2026-W13'],
      '2026-03-28T22:30:00Z-daily': ['daily 3/10'],
    });
  });
});

describe('keep-within', () => {
  // Critical backups every 6 hours that stopped on 2026-11-20 18:00Z.
  const criticals = Array.from({ length: 20 }, (_, i) =>
    backup('critical', new Date(Date.parse('2026-11-20T18:00:00Z') - i * 6 * HOUR_MS).toISOString()),
  );

  it('keeps the critical backups of the 48 h before the newest one, even when backups stopped days ago', () => {
    const plan = planRetention(criticals, new Date('2026-11-25T00:00:00Z'), defaultProductionPolicy);
    const kept = keptReasons(plan);
    expect(Object.keys(kept)).toHaveLength(8); // 0, 6, ..., 42 h before the newest; 48 h is outside
    expect(kept['2026-11-20T18:00:00.000Z-critical']).toEqual(['newest', 'within 48h']);
    expect(kept['2026-11-19T00:00:00.000Z-critical']).toEqual(['within 48h']);
    expect(kept['2026-11-18T18:00:00.000Z-critical']).toBeUndefined();
  });

  it('local PoC: 7 days of every kind, manual snapshots never pruned', () => {
    const history = [
      ...nightlies('2026-11-01', 20),
      backup('weekly-full', '2026-11-01T03:00:00Z'),
      backup('weekly-full', '2026-11-15T03:00:00Z'),
      backup('manual', '2026-01-01T00:00:00Z'),
    ];
    const plan = planRetention(history, new Date('2026-11-20T12:00:00Z'), pocLocalPolicy);
    const kept = keptReasons(plan);
    expect(Object.keys(kept).filter((id) => id.endsWith('-daily'))).toHaveLength(7);
    expect(kept['2026-11-13T17:00:00.000Z-daily']).toEqual(['within 7d']);
    expect(kept['2026-11-12T17:00:00.000Z-daily']).toBeUndefined();
    expect(kept['2026-11-15T03:00:00Z-weekly-full']).toEqual(['newest', 'within 7d']);
    expect(kept['2026-11-01T03:00:00Z-weekly-full']).toBeUndefined();
    expect(kept['2026-01-01T00:00:00Z-manual']).toEqual(['newest', 'manual snapshot']);
  });
});

describe('remote policy (REMOTE_KEEP_DAYS)', () => {
  const history = [
    ...nightlies('2026-11-01', 10),
    backup('critical', '2026-11-01T00:00:00Z'),
    backup('critical', '2026-11-09T00:00:00Z'),
  ];
  const now = new Date('2026-11-10T12:00:00Z');

  it('unset: the remote is never pruned', () => {
    const plan = planRetention(history, now, remotePolicy(undefined));
    expect(deletedIds(plan)).toEqual([]);
    for (const decision of plan.decisions) expect(decision.reasons).toContain('remote not pruned (REMOTE_KEEP_DAYS unset)');
  });

  it('set: keeps that many days of each kind', () => {
    const plan = planRetention(history, now, remotePolicy(3));
    expect(Object.keys(keptReasons(plan)).sort()).toEqual([
      '2026-11-07T17:00:00.000Z-daily',
      '2026-11-08T17:00:00.000Z-daily',
      '2026-11-09T00:00:00Z-critical',
      '2026-11-09T17:00:00.000Z-daily',
    ]);
  });

  it.each([0, -1, 1.5, Number.NaN])('rejects REMOTE_KEEP_DAYS=%s', (days) => {
    expect(() => remotePolicy(days)).toThrow(/REMOTE_KEEP_DAYS must be a whole number of days >= 1/);
  });
});

describe('invariants', () => {
  it('keeps a pinned backup the rules would delete', () => {
    const history = nightlies('2026-11-01', 10).map((b, i) => (i === 4 ? { ...b, pinned: true, label: 'quarter close' } : b));
    const plan = planRetention(history, new Date('2026-11-10T12:00:00Z'), dailyOnly({ keepDaily: 3 }));
    expect(keptReasons(plan)).toEqual({
      '2026-11-09T17:00:00.000Z-daily': ['newest', 'daily 1/3'],
      '2026-11-08T17:00:00.000Z-daily': ['daily 2/3'],
      '2026-11-07T17:00:00.000Z-daily': ['daily 3/3'],
      '2026-11-04T17:00:00.000Z-daily': ['pinned'],
    });
    expect(deletedIds(plan)).toHaveLength(6);
  });

  it('never prunes manual snapshots, pinned or not, under any shipped policy', () => {
    const history = [
      ...nightlies('2026-11-01', 20),
      backup('manual', '2025-06-01T05:00:00Z', { pinned: true, label: 'before release 4.0' }),
      backup('manual', '2025-07-01T05:00:00Z', { label: 'ad-hoc' }),
    ];
    for (const policy of [defaultProductionPolicy, pocLocalPolicy, remotePolicy(1)]) {
      const kept = keptReasons(planRetention(history, new Date('2026-11-20T12:00:00Z'), policy));
      expect(kept['2025-06-01T05:00:00Z-manual']).toEqual(['pinned', 'manual snapshot']);
      expect(kept['2025-07-01T05:00:00Z-manual']).toEqual(['newest', 'manual snapshot']);
    }
  });

  it('keeps future-dated backups, warns with their id, and does not let them take a slot', () => {
    const history = [...nightlies('2026-11-01', 5), backup('daily', '2030-01-01T00:00:00Z')];
    const plan = planRetention(history, new Date('2026-11-06T00:00:00Z'), dailyOnly({ keepDaily: 2 }));
    expect(keptReasons(plan)).toEqual({
      '2030-01-01T00:00:00Z-daily': ['future generated_at'],
      '2026-11-04T17:00:00.000Z-daily': ['newest', 'daily 1/2'],
      '2026-11-03T17:00:00.000Z-daily': ['daily 2/2'],
    });
    expect(plan.warnings).toHaveLength(1);
    expect(plan.warnings[0]).toContain('backup 2030-01-01T00:00:00Z-daily has generated_at 2030-01-01T00:00:00Z, after now');
  });

  it('refuses a policy that keeps none of the backups of a kind, and deletes nothing', () => {
    const history = [...nightlies('2026-11-01', 5), backup('critical', '2026-11-05T00:00:00Z')];
    const policy: RetentionPolicy = {
      ...defaultProductionPolicy,
      rules: { ...defaultProductionPolicy.rules, critical: { keepDaily: 0 } },
    };
    expect(() => planRetention(history, new Date('2026-11-06T00:00:00Z'), policy)).toThrow(RetentionRefusedError);
    expect(() => planRetention(history, new Date('2026-11-06T00:00:00Z'), policy)).toThrow(
      'retention refused: the policy keeps none of the 1 critical backup(s); fix rules.critical before pruning',
    );
    const everything: RetentionPolicy = { timeZone: 'UTC', rules: { daily: {}, critical: {}, 'weekly-full': {}, manual: {} } };
    expect(() => planRetention(history, new Date('2026-11-06T00:00:00Z'), everything)).toThrow(
      /keeps none of the 5 daily backup\(s\), 1 critical backup\(s\)/,
    );
    // An empty rule for a kind without (present) backups is harmless.
    const onlyDaily = planRetention(nightlies('2026-11-01', 5), new Date('2026-11-06T00:00:00Z'), policy);
    expect(deletedIds(onlyDaily)).toEqual([]);
  });
});

describe('input and output', () => {
  const now = new Date('2026-11-06T00:00:00Z');

  it.each([
    [
      'a time without offset',
      [{ id: 'a', kind: 'daily', generatedAt: '2026-11-01T02:00:00', pinned: false }],
      /backups\[0\]\.generatedAt/,
    ],
    [
      'an impossible date',
      [{ id: 'a', kind: 'daily', generatedAt: '2026-02-30T02:00:00Z', pinned: false }],
      /backups\[0\]\.generatedAt/,
    ],
    ['an unknown kind', [{ id: 'a', kind: 'hourly', generatedAt: '2026-11-01T02:00:00Z', pinned: false }], /backups\[0\]\.kind/],
    ['a missing pinned flag', [{ id: 'a', kind: 'daily', generatedAt: '2026-11-01T02:00:00Z' }], /backups\[0\]\.pinned/],
    [
      'a duplicate id',
      [backup('daily', '2026-11-01T02:00:00Z', { id: 'x' }), backup('daily', '2026-11-02T02:00:00Z', { id: 'x' })],
      /backups\[1\]\.id: duplicate id "x"/,
    ],
  ])('rejects %s, naming the field', (_, backups, message) => {
    expect(() => planRetention(backups as BackupRecord[], now, defaultProductionPolicy)).toThrow(message);
    expect(() => planRetention(backups as BackupRecord[], now, defaultProductionPolicy)).toThrow(RetentionInputError);
  });

  it('rejects a bad policy or clock, naming the field', () => {
    const history = nightlies('2026-11-01', 3);
    expect(() => planRetention(history, now, { ...defaultProductionPolicy, timeZone: 'Mars/Olympus' })).toThrow(
      /policy\.timeZone: not an IANA time zone/,
    );
    expect(() => planRetention(history, now, dailyOnly({ keepDaily: -1 }))).toThrow(/policy\.rules\.daily/);
    expect(() => planRetention(history, now, dailyOnly({ keepWithin: { hours: 0 } }))).toThrow(/policy\.rules\.daily/);
    expect(() => planRetention(history, new Date('nonsense'), defaultProductionPolicy)).toThrow(/now must be a valid Date/);
  });

  it('returns the caller objects newest first, extra fields included', () => {
    const history = [
      { ...backup('daily', '2026-11-01T17:00:00Z'), key: 'prod/meta/a.json' },
      { ...backup('daily', '2026-11-03T17:00:00Z'), key: 'prod/meta/c.json' },
      { ...backup('daily', '2026-11-02T17:00:00Z'), key: 'prod/meta/b.json' },
    ];
    const plan = planRetention(history, now, defaultProductionPolicy);
    expect(plan.decisions.map((d) => d.backup.key)).toEqual(['prod/meta/c.json', 'prod/meta/b.json', 'prod/meta/a.json']);
    expect(plan.decisions[0]?.backup).toBe(history[1]);
  });

  it("does not depend on the process's own time zone", () => {
    const history = [
      ...nightlies('2026-10-20', 20),
      backup('daily', '2026-10-25T01:30:00Z'),
      backup('critical', '2026-11-08T15:00:00Z'),
      backup('weekly-full', '2026-11-01T15:30:00Z'),
    ];
    const original = process.env.TZ;
    const offsets: number[] = [];
    const plans: RetentionPlan[] = [];
    try {
      for (const zone of ['America/Los_Angeles', 'Pacific/Kiritimati', 'Europe/Berlin']) {
        process.env.TZ = zone;
        offsets.push(new Date('2026-01-15T00:00:00Z').getTimezoneOffset());
        plans.push(planRetention(history, new Date('2026-11-09T00:00:00Z'), defaultProductionPolicy));
      }
    } finally {
      if (original === undefined) delete process.env.TZ;
      else process.env.TZ = original;
    }
    expect(offsets).toEqual([480, -840, -60]); // the zone change really took effect
    expect(plans[1]).toEqual(plans[0]);
    expect(plans[2]).toEqual(plans[0]);
  });
});

describe('400 simulated days of production backups, pruned every day', () => {
  it('ends with exactly 14 daily, 8 weekly, 12 monthly, the pinned ones and the critical ones of the last 48 h', () => {
    const days = simulateSchedule({
      firstDate: '2025-10-01',
      days: 400,
      pinnedManual: { 30: 'before release 4.1', 31: 'after release 4.1', 390: 'before release 5.0' },
      unpinnedManual: { 200: 'ad-hoc before data fix' },
      pinnedNightly: { 89: 'fiscal quarter close' },
    });
    let repository: BackupRecord[] = [];
    for (const day of days) {
      repository = [...repository, ...day.backups];
      const plan = planRetention(repository, day.pruneAt, defaultProductionPolicy);
      expect(plan.warnings).toEqual([]);
      repository = plan.decisions.filter((d) => d.action === 'keep').map((d) => d.backup);
    }
    const lastPrune = days.at(-1)!.pruneAt;
    const made = days.flatMap((day) => day.backups);

    // The expected survivors, computed independently and plainly (Tokyo is UTC+9 all year).
    const time = (b: BackupRecord) => Date.parse(b.generatedAt);
    const tokyoDay = (b: BackupRecord) => new Date(time(b) + 9 * HOUR_MS).toISOString().slice(0, 10);
    const mondayOfWeek = (b: BackupRecord) => {
      const day = new Date(`${tokyoDay(b)}T00:00:00Z`);
      return new Date(day.getTime() - ((day.getUTCDay() + 6) % 7) * DAY_MS).toISOString().slice(0, 10);
    };
    const tokyoMonth = (b: BackupRecord) => tokyoDay(b).slice(0, 7);
    const newestOfLast = (series: BackupRecord[], bucket: (b: BackupRecord) => string, n: number): string[] => {
      const newestPerBucket = new Map<string, BackupRecord>();
      for (const b of series) {
        const current = newestPerBucket.get(bucket(b));
        if (current === undefined || time(b) > time(current)) newestPerBucket.set(bucket(b), b);
      }
      return [...newestPerBucket.values()].sort((a, b) => time(b) - time(a)).slice(0, n).map((b) => b.id);
    };
    const ofKind = (kind: BackupKind) => made.filter((b) => b.kind === kind);
    const newestCritical = Math.max(...ofKind('critical').map(time));
    const expected = new Set([
      ...newestOfLast(ofKind('daily'), tokyoDay, 14),
      ...newestOfLast(ofKind('daily'), mondayOfWeek, 8),
      ...newestOfLast(ofKind('daily'), tokyoMonth, 12),
      ...newestOfLast(ofKind('weekly-full'), mondayOfWeek, 8),
      ...newestOfLast(ofKind('weekly-full'), tokyoMonth, 12),
      ...ofKind('critical').filter((b) => time(b) > newestCritical - 48 * HOUR_MS).map((b) => b.id),
      ...made.filter((b) => b.pinned || b.kind === 'manual').map((b) => b.id),
    ]);
    expect(repository.map((b) => b.id).sort()).toEqual([...expected].sort());

    // The named tiers, as reasons of the final plan.
    const final = planRetention(repository, lastPrune, defaultProductionPolicy);
    const count = (kind: BackupKind, pattern: RegExp) =>
      final.decisions.filter((d) => d.backup.kind === kind && d.reasons.some((r) => pattern.test(r))).length;
    expect(deletedIds(final)).toEqual([]);
    expect(count('daily', /^daily \d+\/14$/)).toBe(14);
    expect(count('daily', /^weekly \d{4}-W\d\d$/)).toBe(8);
    expect(count('daily', /^monthly \d{4}-\d\d$/)).toBe(12);
    expect(count('weekly-full', /^weekly /)).toBe(8);
    expect(count('weekly-full', /^monthly /)).toBe(12);
    expect(count('critical', /^within 48h$/)).toBe(8);
    expect(count('daily', /^pinned$/)).toBe(1);
    expect(count('manual', /^pinned$/)).toBe(3);
    expect(repository.filter((b) => b.kind === 'manual')).toHaveLength(4);

    // Pruning every day ends where pruning the whole history once would.
    const once = planRetention(made, lastPrune, defaultProductionPolicy);
    expect(Object.keys(keptReasons(once)).sort()).toEqual([...expected].sort());
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BACKUP_KINDS } from '../../src/layout.js';
import {
  defaultProductionPolicy,
  planRetention,
  pocLocalPolicy,
  remotePolicy,
  RetentionRefusedError,
  type BackupRecord,
  type KindRule,
  type PruneRule,
  type RetentionPlan,
  type RetentionPolicy,
} from '../../src/retention.js';

const RUNS = { numRuns: 1000 };
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const START = Date.parse('2025-01-01T00:00:00Z');

// Zones with and without daylight saving, half-hour and 45-minute offsets, southern summers.
const ZONES = [
  'Asia/Tokyo',
  'Europe/Berlin',
  'America/New_York',
  'Australia/Lord_Howe',
  'America/Sao_Paulo',
  'Pacific/Chatham',
  'UTC',
];

/** Histories from an hour to three years long, so both crowded days and sparse years occur. */
const spanMinutesArb = fc.oneof(
  fc.integer({ min: 60, max: 30 * 24 * 60 }),
  fc.integer({ min: 30 * 24 * 60, max: 3 * 365 * 24 * 60 }),
);
const historyArb: fc.Arbitrary<BackupRecord[]> = spanMinutesArb.chain((spanMinutes) =>
  fc
    .uniqueArray(
      fc.record({
        id: fc.string({ minLength: 1, maxLength: 8 }),
        kind: fc.constantFrom(...BACKUP_KINDS),
        minute: fc.integer({ min: 0, max: spanMinutes }),
        pinned: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      }),
      { selector: (raw) => raw.id, maxLength: 80, size: 'medium' },
    )
    .map((raws) =>
      raws.map(({ minute, ...rest }) => ({ ...rest, generatedAt: new Date(START + minute * MINUTE_MS).toISOString() })),
    ),
);

const time = (backup: BackupRecord): number => Date.parse(backup.generatedAt);

/** Mostly after the newest backup; sometimes in the middle of the history (future-dated backups). */
function nowArb(history: BackupRecord[]): fc.Arbitrary<Date> {
  const latest = Math.max(START, ...history.map(time));
  return fc
    .oneof(
      { weight: 3, arbitrary: fc.integer({ min: latest, max: latest + 10 * DAY_MS }) },
      { weight: 1, arbitrary: fc.integer({ min: START - DAY_MS, max: latest }) },
    )
    .map((ms) => new Date(ms));
}

const durationArb = fc.oneof(
  fc.record({ hours: fc.integer({ min: 1, max: 24 * 60 }) }),
  fc.record({ days: fc.integer({ min: 1, max: 60 }) }),
);

const anyPruneRuleArb: fc.Arbitrary<PruneRule> = fc.record(
  {
    keepDaily: fc.integer({ min: 0, max: 20 }),
    keepWeekly: fc.integer({ min: 0, max: 10 }),
    keepMonthly: fc.integer({ min: 0, max: 14 }),
    keepWithin: durationArb,
  },
  { requiredKeys: [] },
);

const isEmptyRule = (rule: KindRule): boolean =>
  !('keepAll' in rule) && !rule.keepDaily && !rule.keepWeekly && !rule.keepMonthly && rule.keepWithin === undefined;

function policyArb(ruleArb: fc.Arbitrary<KindRule>): fc.Arbitrary<RetentionPolicy> {
  return fc.record({
    timeZone: fc.constantFrom(...ZONES),
    rules: fc.record({ daily: ruleArb, critical: ruleArb, 'weekly-full': ruleArb, manual: ruleArb }),
  });
}

const keepAllArb = fc.constant<KindRule>({ keepAll: 'kept whole' });

/** Policies whose every rule keeps something, plus the shipped ones. */
const workingPolicyArb = fc.oneof(
  policyArb(
    fc.oneof(
      { weight: 4, arbitrary: anyPruneRuleArb.filter((rule) => !isEmptyRule(rule)) },
      { weight: 1, arbitrary: keepAllArb },
    ),
  ),
  fc.constantFrom(defaultProductionPolicy, pocLocalPolicy, remotePolicy(3), remotePolicy(undefined)),
);

interface Scenario {
  history: BackupRecord[];
  policy: RetentionPolicy;
  now: Date;
}

function scenarioArb(policies: fc.Arbitrary<RetentionPolicy>): fc.Arbitrary<Scenario> {
  return fc
    .tuple(historyArb, policies)
    .chain(([history, policy]) => nowArb(history).map((now) => ({ history, policy, now })));
}

const scenarios = scenarioArb(workingPolicyArb);

const decisionOf = (plan: RetentionPlan, id: string) => plan.decisions.find((d) => d.backup.id === id);
const keptIds = (plan: RetentionPlan) => plan.decisions.filter((d) => d.action === 'keep').map((d) => d.backup.id);
const byId = (plan: RetentionPlan) =>
  Object.fromEntries(plan.decisions.map((d) => [d.backup.id, { action: d.action, reasons: d.reasons }]));

describe('retention invariants over random histories, clocks, zones and policies', () => {
  it('never deletes a pinned backup', () => {
    fc.assert(
      fc.property(scenarios, ({ history, policy, now }) => {
        const plan = planRetention(history, now, policy);
        for (const backup of history.filter((b) => b.pinned)) {
          expect(decisionOf(plan, backup.id)?.action).toBe('keep');
          expect(decisionOf(plan, backup.id)?.reasons).toContain('pinned');
        }
      }),
      RUNS,
    );
  });

  it('never deletes the newest backup of a kind (overall, and among those not after now)', () => {
    fc.assert(
      fc.property(scenarios, ({ history, policy, now }) => {
        const plan = planRetention(history, now, policy);
        for (const kind of BACKUP_KINDS) {
          const ofKind = plan.decisions.filter((d) => d.backup.kind === kind);
          const present = ofKind.filter((d) => time(d.backup) <= now.getTime());
          // Future-dated ones are all kept (another property); of the rest, the newest is kept
          // (when several share its instant, exactly one of them is "the newest").
          const marked = ofKind.filter((d) => d.reasons.includes('newest'));
          if (present.length === 0) {
            expect(marked).toEqual([]);
            continue;
          }
          expect(marked).toHaveLength(1);
          expect(marked[0]!.action).toBe('keep');
          expect(time(marked[0]!.backup)).toBe(Math.max(...present.map((d) => time(d.backup))));
        }
      }),
      RUNS,
    );
  });

  it('never deletes everything: at least one backup of every kind present is kept', () => {
    fc.assert(
      fc.property(scenarios, ({ history, policy, now }) => {
        const plan = planRetention(history, now, policy);
        for (const kind of BACKUP_KINDS) {
          if (!history.some((b) => b.kind === kind)) continue;
          expect(plan.decisions.some((d) => d.backup.kind === kind && d.action === 'keep')).toBe(true);
        }
      }),
      RUNS,
    );
  });

  it('keeps and reports future-dated backups, and they change no other decision', () => {
    fc.assert(
      fc.property(scenarios, ({ history, policy, now }) => {
        const plan = planRetention(history, now, policy);
        const future = history.filter((b) => time(b) > now.getTime());
        for (const backup of future) {
          expect(decisionOf(plan, backup.id)?.action).toBe('keep');
          expect(decisionOf(plan, backup.id)?.reasons[0]).toBe('future generated_at');
          expect(plan.warnings.filter((w) => w.startsWith(`backup ${backup.id} has generated_at`))).toHaveLength(1);
        }
        expect(plan.warnings).toHaveLength(future.length);
        const withoutFuture = planRetention(history.filter((b) => time(b) <= now.getTime()), now, policy);
        const expected = byId(withoutFuture);
        const actual = byId(plan);
        for (const id of Object.keys(expected)) expect(actual[id]).toEqual(expected[id]);
      }),
      RUNS,
    );
  });

  it('does not depend on the order of the input', () => {
    const shuffled = scenarios.chain((scenario) =>
      fc
        .shuffledSubarray(scenario.history, { minLength: scenario.history.length, maxLength: scenario.history.length })
        .map((permutation) => ({ ...scenario, permutation })),
    );
    fc.assert(
      fc.property(shuffled, ({ history, permutation, policy, now }) => {
        expect(planRetention(permutation, now, policy)).toEqual(planRetention(history, now, policy));
      }),
      RUNS,
    );
  });

  it('is idempotent: planning the kept backups again deletes nothing and gives the same reasons', () => {
    fc.assert(
      fc.property(scenarios, ({ history, policy, now }) => {
        const plan = planRetention(history, now, policy);
        const kept = plan.decisions.filter((d) => d.action === 'keep').map((d) => d.backup);
        const again = planRetention(kept, now, policy);
        expect(again.decisions.every((d) => d.action === 'keep')).toBe(true);
        expect(again.decisions).toEqual(plan.decisions.filter((d) => d.action === 'keep'));
        expect(again.warnings).toEqual(plan.warnings);
      }),
      RUNS,
    );
  });

  it('is stable: with any of the deleted backups put back, the same backups are kept for the same reasons', () => {
    const withMask = scenarios.chain((scenario) =>
      fc
        .array(fc.boolean(), { minLength: scenario.history.length, maxLength: scenario.history.length })
        .map((mask) => ({ ...scenario, mask })),
    );
    fc.assert(
      fc.property(withMask, ({ history, policy, now, mask }) => {
        const plan = planRetention(history, now, policy);
        const putBack = new Set(history.filter((_, i) => mask[i]).map((b) => b.id));
        const subset = plan.decisions.filter((d) => d.action === 'keep' || putBack.has(d.backup.id)).map((d) => d.backup);
        const again = planRetention(subset, now, policy);
        const original = byId(plan);
        for (const decision of again.decisions) expect(decision).toMatchObject(original[decision.backup.id]!);
      }),
      RUNS,
    );
  });

  it('gives every kept backup a reason and every deleted one none, one decision per backup, newest first', () => {
    fc.assert(
      fc.property(scenarios, ({ history, policy, now }) => {
        const plan = planRetention(history, now, policy);
        expect(plan.decisions.map((d) => d.backup.id).sort()).toEqual(history.map((b) => b.id).sort());
        for (const decision of plan.decisions) {
          expect(decision.reasons.length > 0).toBe(decision.action === 'keep');
          expect(new Set(decision.reasons).size).toBe(decision.reasons.length);
        }
        const times = plan.decisions.map((d) => time(d.backup));
        expect(times).toEqual([...times].sort((a, b) => b - a));
      }),
      RUNS,
    );
  });

  it('refuses exactly when a kind with backups has a rule that keeps nothing', () => {
    const maybeEmpty = scenarioArb(
      policyArb(
        fc.oneof(
          { weight: 1, arbitrary: keepAllArb },
          { weight: 1, arbitrary: fc.constant<KindRule>({}) },
          { weight: 2, arbitrary: anyPruneRuleArb },
        ),
      ),
    );
    fc.assert(
      fc.property(maybeEmpty, ({ history, policy, now }) => {
        const emptyKinds = BACKUP_KINDS.filter(
          (kind) => isEmptyRule(policy.rules[kind]) && history.some((b) => b.kind === kind && time(b) <= now.getTime()),
        );
        let refusal: unknown;
        try {
          planRetention(history, now, policy);
        } catch (error) {
          refusal = error;
        }
        if (emptyKinds.length === 0) {
          expect(refusal).toBeUndefined();
        } else {
          expect(refusal).toBeInstanceOf(RetentionRefusedError);
          expect((refusal as RetentionRefusedError).emptyKinds.map((e) => e.kind)).toEqual(emptyKinds);
        }
      }),
      RUNS,
    );
  });
});

// ---- an independent model of the calendar and within rules ----

const sweden = new Map<string, Intl.DateTimeFormat>();
/** The local date as YYYY-MM-DD (the sv-SE format), by a different route than the module's. */
function localDate(ms: number, timeZone: string): string {
  let format = sweden.get(timeZone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat('sv-SE', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    sweden.set(timeZone, format);
  }
  return format.format(ms);
}
/** A week is named by its Monday: the same buckets as ISO week numbers, without computing them. */
function mondayOf(date: string): string {
  const day = new Date(`${date}T00:00:00Z`);
  return new Date(day.getTime() - ((day.getUTCDay() + 6) % 7) * DAY_MS).toISOString().slice(0, 10);
}

/** "For the last n buckets that have backups, the newest backup of each" (ties: the smaller id). */
function newestOfLastBuckets(series: BackupRecord[], bucket: (b: BackupRecord) => string, n: number): string[] {
  const newest = new Map<string, BackupRecord>();
  for (const b of series) {
    const current = newest.get(bucket(b));
    const newer = current === undefined || time(b) > time(current) || (time(b) === time(current) && b.id < current.id);
    if (newer) newest.set(bucket(b), b);
  }
  return [...newest.values()]
    .sort((a, b) => time(b) - time(a) || (a.id < b.id ? -1 : 1))
    .slice(0, n)
    .map((b) => b.id);
}

describe('calendar and within rules against an independent model', () => {
  it('selects exactly the newest backup of each of the last N days, weeks and months, and the within window', () => {
    const pruneOnly = scenarioArb(policyArb(anyPruneRuleArb.filter((rule) => !isEmptyRule(rule))));
    fc.assert(
      fc.property(pruneOnly, ({ history, policy, now }) => {
        const plan = planRetention(history, now, policy);
        const day = (b: BackupRecord) => localDate(time(b), policy.timeZone);
        for (const kind of BACKUP_KINDS) {
          const rule = policy.rules[kind] as PruneRule;
          const series = history.filter((b) => b.kind === kind && time(b) <= now.getTime());
          if (series.length === 0) continue;
          const oldest = [...series].sort((a, b) => time(a) - time(b) || (a.id < b.id ? 1 : -1))[0]!;
          const withReason = (pattern: RegExp) =>
            plan.decisions
              .filter((d) => d.backup.kind === kind && d.reasons.some((r) => pattern.test(r)))
              .map((d) => d.backup.id)
              .sort();

          const tiers: [string, number, (b: BackupRecord) => string][] = [
            ['daily', rule.keepDaily ?? 0, day],
            ['weekly', rule.keepWeekly ?? 0, (b) => mondayOf(day(b))],
            ['monthly', rule.keepMonthly ?? 0, (b) => day(b).slice(0, 7)],
          ];
          for (const [name, n, bucket] of tiers) {
            const chosen = newestOfLastBuckets(series, bucket, n);
            expect(withReason(new RegExp(`^${name} \\d`))).toEqual([...chosen].sort());
            const bucketCount = new Set(series.map(bucket)).size;
            const oldestExtra = n > 0 && bucketCount < n && !chosen.includes(oldest.id);
            expect(withReason(new RegExp(`^oldest ${name}$`))).toEqual(oldestExtra ? [oldest.id] : []);
          }

          const within = rule.keepWithin;
          const windowMs = within === undefined ? 0 : 'hours' in within ? within.hours * HOUR_MS : within.days * DAY_MS;
          const newest = Math.max(...series.map(time));
          const inWindow = within === undefined ? [] : series.filter((b) => time(b) > newest - windowMs).map((b) => b.id);
          expect(withReason(/^within /)).toEqual(inWindow.sort());
        }
      }),
      RUNS,
    );
  });
});

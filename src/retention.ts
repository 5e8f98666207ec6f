/**
 * Retention policy: given the complete backups of one repository and "now", decide which to
 * keep (and why) and which to delete. Pure: no I/O and no clock of its own (the caller passes
 * `now`), and nothing depends on the process's time zone, so the Prune workflow can call it
 * deterministically and an activity can call it with the same result.
 *
 * Decisions (S7, S8, S17; DESIGN.md "Choices already made"):
 * - Series. Every kind is its own series (restic's --group-by): the rules of a kind see only
 *   the backups of that kind, so a 6-hourly `critical` backup never takes a daily slot from a
 *   nightly `daily` one.
 * - Calendar rules (keepDaily/keepWeekly/keepMonthly) follow restic's documented semantics:
 *   walk the series newest first; for the last N days / ISO weeks (Monday-Sunday) / months
 *   that have backups, keep the newest backup of each; the rules are ORed, so one backup may
 *   carry several reasons. Like restic, when a rule's N is not used up the oldest backup of the
 *   series is kept too (`oldest daily`), so the kept history reaches as far back as it can
 *   while it grows. Days, weeks and months are counted in ONE configured IANA time zone
 *   (default Asia/Tokyo, where the nightly runs at 02:00, S29).
 * - keepWithin follows restic's --keep-within: every backup newer than the duration before the
 *   NEWEST backup of the series (not before "now"), so a backup job that stops running never
 *   lets prune eat the last hours of history. `days` are 24 h each.
 * - Production (S8): `daily` keeps 14 daily, 8 weekly, 12 monthly. `weekly-full` (S6) keeps
 *   8 weekly and 12 monthly: it runs once a week, so a daily tier of 14 would silently mean
 *   "14 weeks". `critical` (6-hourly, S9) keeps all of the last 48 h; older points in time are
 *   covered by the `daily` series. `manual` snapshots are never pruned by any policy (S8: "added
 *   and kept"); an operator removes one explicitly.
 * - Local PoC (S7): 7 days of every pruned kind. SFTP host (S17): REMOTE_KEEP_DAYS days, and
 *   when it is unset nothing on the remote is ever pruned. (Inside the S3 bucket retention is
 *   left to Lifecycle rules, S16.)
 * - Invariants: pinned backups are kept; the newest backup of each kind is kept; a backup whose
 *   generated_at lies after `now` is kept, reported in `warnings`, and not counted by any rule
 *   (restic ignores such backups for its duration rules; we also keep them out of the calendar
 *   slots, so one skewed clock cannot push a real backup out of its slot). If the rules of a kind
 *   would keep none of its backups (an empty rule, e.g. every count set to 0), planning refuses
 *   with RetentionRefusedError instead of silently pruning that kind down to its newest backup:
 *   restic likewise refuses to act on an empty policy.
 * - Output order is newest first, ties broken by id, so the plan does not depend on the order of
 *   the input.
 */
import { z } from 'zod';
import { BACKUP_KINDS, type BackupKind } from './layout.js';

export const DEFAULT_TIME_ZONE = 'Asia/Tokyo';

/** What retention needs to know about one complete backup (its manifest exists). */
export interface BackupRecord {
  id: string;
  kind: BackupKind;
  /** ISO 8601 with `Z` or an explicit offset, e.g. `2026-11-25T17:00:00Z`. */
  generatedAt: string;
  pinned: boolean;
  label?: string;
}

export type RetentionDuration = { hours: number } | { days: number };

/** Calendar and age rules of one kind; a count of 0 (or a missing count) turns that tier off. */
export interface PruneRule {
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepWithin?: RetentionDuration;
}

/** Every backup of the kind is kept, with `keepAll` as its reason. */
export interface KeepAllRule {
  keepAll: string;
}

export type KindRule = PruneRule | KeepAllRule;

export interface RetentionPolicy {
  /** IANA zone in which days, ISO weeks and months are counted. */
  timeZone: string;
  rules: Record<BackupKind, KindRule>;
}

export interface RetentionDecision<B extends BackupRecord = BackupRecord> {
  backup: B;
  action: 'keep' | 'delete';
  /** Why the backup is kept, e.g. `daily 3/14`, `weekly 2026-W47`; empty when deleted. */
  reasons: string[];
}

export interface RetentionPlan<B extends BackupRecord = BackupRecord> {
  /** One decision per input backup, newest first. */
  decisions: RetentionDecision<B>[];
  warnings: string[];
}

/** The arguments are malformed; names the argument and the offending field. */
export class RetentionInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RetentionInputError';
  }
}

/** The rules of at least one kind keep none of its backups: nothing is deleted. */
export class RetentionRefusedError extends Error {
  constructor(readonly emptyKinds: { kind: BackupKind; backups: number }[]) {
    const counted = emptyKinds.map(({ kind, backups }) => `${backups} ${kind} backup(s)`).join(', ');
    const rules = emptyKinds.map(({ kind }) => `rules.${kind}`).join(', ');
    super(`retention refused: the policy keeps none of the ${counted}; fix ${rules} before pruning`);
    this.name = 'RetentionRefusedError';
  }
}

const pruneAllButManual = (rule: PruneRule, timeZone: string): RetentionPolicy => ({
  timeZone,
  rules: { daily: rule, critical: rule, 'weekly-full': rule, manual: { keepAll: 'manual snapshot' } },
});

/** S8 production retention; see the decisions above. */
export const defaultProductionPolicy: RetentionPolicy = {
  timeZone: DEFAULT_TIME_ZONE,
  rules: {
    daily: { keepDaily: 14, keepWeekly: 8, keepMonthly: 12 },
    'weekly-full': { keepWeekly: 8, keepMonthly: 12 },
    critical: { keepWithin: { hours: 48 } },
    manual: { keepAll: 'manual snapshot' },
  },
};

/** S7 local PoC: 7 days of generations. */
export const pocLocalPolicy: RetentionPolicy = pruneAllButManual({ keepWithin: { days: 7 } }, DEFAULT_TIME_ZONE);

/** S17 remote host: REMOTE_KEEP_DAYS days; `undefined` (unset) means the remote is never pruned. */
export function remotePolicy(keepDays: number | undefined, timeZone = DEFAULT_TIME_ZONE): RetentionPolicy {
  if (keepDays === undefined) {
    const keepAll = { keepAll: 'remote not pruned (REMOTE_KEEP_DAYS unset)' };
    return { timeZone, rules: { daily: keepAll, critical: keepAll, 'weekly-full': keepAll, manual: keepAll } };
  }
  if (!Number.isSafeInteger(keepDays) || keepDays < 1) {
    throw new RetentionInputError(`REMOTE_KEEP_DAYS must be a whole number of days >= 1, got ${keepDays}`);
  }
  return pruneAllButManual({ keepWithin: { days: keepDays } }, timeZone);
}

// ---- input validation ----

const count = z.number().int().nonnegative();
const positiveWhole = z.number().int().positive();

const kindRuleSchema: z.ZodType<KindRule> = z.union([
  z.strictObject({ keepAll: z.string().min(1) }),
  z.strictObject({
    keepDaily: count.optional(),
    keepWeekly: count.optional(),
    keepMonthly: count.optional(),
    keepWithin: z.union([z.strictObject({ hours: positiveWhole }), z.strictObject({ days: positiveWhole })]).optional(),
  }),
]);

export const retentionPolicySchema: z.ZodType<RetentionPolicy> = z.strictObject({
  timeZone: z.string().refine(isKnownTimeZone, 'not an IANA time zone this runtime knows'),
  rules: z.strictObject({
    daily: kindRuleSchema,
    critical: kindRuleSchema,
    'weekly-full': kindRuleSchema,
    manual: kindRuleSchema,
  }),
});

const backupsSchema = z
  .array(
    z.object({
      id: z.string().min(1),
      kind: z.enum(BACKUP_KINDS),
      // An offset or Z is required: a bare local time would be read in the process's zone.
      generatedAt: z.iso
        .datetime({ offset: true })
        .refine((value) => Date.parse(value) >= 0, 'must be after 1970-01-01T00:00:00Z'),
      pinned: z.boolean(),
      label: z.string().optional(),
    }),
  )
  .superRefine((backups, ctx) => {
    const seen = new Set<string>();
    backups.forEach((backup, index) => {
      if (seen.has(backup.id)) {
        ctx.addIssue({ code: 'custom', path: [index, 'id'], message: `duplicate id ${JSON.stringify(backup.id)}` });
      }
      seen.add(backup.id);
    });
  });

function assertValid(schema: z.ZodType, value: unknown, argument: string): void {
  const result = schema.safeParse(value);
  if (result.success) return;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.map((key) => (typeof key === 'number' ? `[${key}]` : `.${String(key)}`)).join('');
    return `${argument}${path}: ${issue.message}`;
  });
  throw new RetentionInputError(`invalid retention input: ${problems.join('; ')}`);
}

// ---- calendar buckets in the configured zone ----

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

const dateFormatters = new Map<string, Intl.DateTimeFormat>();

function dateFormatter(timeZone: string): Intl.DateTimeFormat {
  let formatter = dateFormatters.get(timeZone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      calendar: 'gregory',
      numberingSystem: 'latn',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
    });
    dateFormatters.set(timeZone, formatter);
  }
  return formatter;
}

function isKnownTimeZone(timeZone: string): boolean {
  try {
    dateFormatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

interface CalendarBuckets {
  /** YYYY-MM-DD */
  day: string;
  /** ISO week-year and week, YYYY-Www */
  week: string;
  /** YYYY-MM */
  month: string;
}

const pad2 = (value: number): string => String(value).padStart(2, '0');

function calendarBuckets(epochMs: number, timeZone: string): CalendarBuckets {
  const parts = dateFormatter(timeZone).formatToParts(epochMs);
  const field = (type: Intl.DateTimeFormatPartTypes): number => Number(parts.find((part) => part.type === type)?.value);
  const year = field('year');
  const month = field('month');
  const day = field('day');
  // ISO week: the week (Monday-Sunday) belongs to the year of its Thursday. Computed on the
  // local calendar date via Date.UTC, which involves no zone at all.
  const date = Date.UTC(year, month - 1, day);
  const mondayBased = (new Date(date).getUTCDay() + 6) % 7;
  const thursday = date + (3 - mondayBased) * DAY_MS;
  const weekYear = new Date(thursday).getUTCFullYear();
  const week = Math.floor((thursday - Date.UTC(weekYear, 0, 1)) / (7 * DAY_MS)) + 1;
  return {
    day: `${year}-${pad2(month)}-${pad2(day)}`,
    week: `${weekYear}-W${pad2(week)}`,
    month: `${year}-${pad2(month)}`,
  };
}

// ---- planning ----

interface Entry<B extends BackupRecord> {
  backup: B;
  time: number;
  future: boolean;
  /** Reasons given by the kind's rule (calendar, within, keep-all). */
  ruleReasons: string[];
  buckets?: CalendarBuckets;
}

interface CalendarTier {
  name: 'daily' | 'weekly' | 'monthly';
  count: number;
  bucket: (buckets: CalendarBuckets) => string;
  reason: (bucket: string, nth: number) => string;
}

function calendarTiers(rule: PruneRule): CalendarTier[] {
  const daily = rule.keepDaily ?? 0;
  return [
    { name: 'daily', count: daily, bucket: (b) => b.day, reason: (_, nth) => `daily ${nth}/${daily}` },
    { name: 'weekly', count: rule.keepWeekly ?? 0, bucket: (b) => b.week, reason: (week) => `weekly ${week}` },
    { name: 'monthly', count: rule.keepMonthly ?? 0, bucket: (b) => b.month, reason: (month) => `monthly ${month}` },
  ];
}

function durationSpan(duration: RetentionDuration): { ms: number; label: string } {
  return 'hours' in duration
    ? { ms: duration.hours * HOUR_MS, label: `${duration.hours}h` }
    : { ms: duration.days * DAY_MS, label: `${duration.days}d` };
}

/** Adds the rule's reasons to `series` (one kind, not in the future, newest first). */
function applyPruneRule<B extends BackupRecord>(series: Entry<B>[], rule: PruneRule, timeZone: string): void {
  const newest = series[0];
  const oldest = series.at(-1);
  if (newest === undefined || oldest === undefined) return;

  if (rule.keepWithin !== undefined) {
    const { ms, label } = durationSpan(rule.keepWithin);
    for (const entry of series) {
      if (entry.time > newest.time - ms) entry.ruleReasons.push(`within ${label}`);
    }
  }

  for (const tier of calendarTiers(rule)) {
    if (tier.count === 0) continue;
    // A set rather than restic's "differs from the previous bucket": identical for the
    // monotonic local dates of today's zones, and still one backup per bucket otherwise.
    const taken = new Set<string>();
    let oldestTaken = false;
    for (const entry of series) {
      if (taken.size === tier.count) break;
      entry.buckets ??= calendarBuckets(entry.time, timeZone);
      const bucket = tier.bucket(entry.buckets);
      if (taken.has(bucket)) continue;
      taken.add(bucket);
      entry.ruleReasons.push(tier.reason(bucket, taken.size));
      oldestTaken = entry === oldest;
    }
    if (taken.size < tier.count && !oldestTaken) oldest.ruleReasons.push(`oldest ${tier.name}`);
  }
}

/**
 * Plans retention for the complete backups of one repository. Returns one decision per backup
 * (the caller's objects, so extra fields such as storage keys ride along) and warnings.
 * Throws RetentionInputError for malformed arguments and RetentionRefusedError when the rules
 * of a kind would keep none of its backups.
 */
export function planRetention<B extends BackupRecord>(
  backups: readonly B[],
  now: Date,
  policy: RetentionPolicy,
): RetentionPlan<B> {
  assertValid(backupsSchema, backups, 'backups');
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
    throw new RetentionInputError(`invalid retention input: now must be a valid Date, got ${String(now)}`);
  }
  assertValid(retentionPolicySchema, policy, 'policy');

  const nowMs = now.getTime();
  const entries: Entry<B>[] = backups
    .map((backup) => {
      const time = Date.parse(backup.generatedAt);
      return { backup, time, future: time > nowMs, ruleReasons: [] };
    })
    .sort((a, b) => b.time - a.time || (a.backup.id < b.backup.id ? -1 : a.backup.id > b.backup.id ? 1 : 0));

  const emptyKinds: { kind: BackupKind; backups: number }[] = [];
  const newestOfKind = new Set<Entry<B>>();
  for (const kind of BACKUP_KINDS) {
    const rule = policy.rules[kind];
    const series = entries.filter((entry) => entry.backup.kind === kind && !entry.future);
    if ('keepAll' in rule) {
      for (const entry of entries) if (entry.backup.kind === kind) entry.ruleReasons.push(rule.keepAll);
    } else {
      applyPruneRule(series, rule, policy.timeZone);
    }
    if (series.length > 0 && series.every((entry) => entry.ruleReasons.length === 0)) {
      emptyKinds.push({ kind, backups: series.length });
    }
    if (series[0] !== undefined) newestOfKind.add(series[0]);
  }
  if (emptyKinds.length > 0) throw new RetentionRefusedError(emptyKinds);

  const warnings: string[] = [];
  const decisions = entries.map((entry): RetentionDecision<B> => {
    const reasons: string[] = [];
    if (entry.future) {
      reasons.push('future generated_at');
      warnings.push(
        `backup ${entry.backup.id} has generated_at ${entry.backup.generatedAt}, after now (${now.toISOString()}): ` +
          'kept and not counted by the policy; check the clock of the host that made it',
      );
    }
    if (entry.backup.pinned) reasons.push('pinned');
    if (newestOfKind.has(entry)) reasons.push('newest');
    reasons.push(...entry.ruleReasons);
    return { backup: entry.backup, action: reasons.length > 0 ? 'keep' : 'delete', reasons };
  });
  return { decisions, warnings };
}

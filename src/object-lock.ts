import { backupObjectOf } from './backup-objects.js';
import type { RetentionSetting } from './config.js';
import { BACKUP_KINDS } from './layout.js';
import { ruleSpanDays } from './lifecycle.js';
import { defaultProductionPolicy, remotePolicy, type RetentionPolicy } from './retention.js';

/**
 * Immutable backups (S3_OBJECT_LOCK_MODE): how long S3 Object Lock keeps each object, decided
 * at put time from the retention policy of the bucket (S3_RETENTION).
 *
 * Decision: an object is locked for the LONGEST span the policy's rule for its kind can keep a
 * backup in a regular history (src/lifecycle.ts ruleSpanDays: days, ISO weeks x 7, months x 31,
 * keep-within), counted from the put. At put time nobody knows whether a daily backup will
 * become the monthly one GFS keeps for 12 months, so every daily is locked that long: the
 * policy can never want a backup that the lock let go, at the cost of storing every daily for
 * the whole span (Prune reports those it would delete as `locked until`; they go once the lock
 * ends). Kinds the policy keeps forever (manual snapshots) and objects outside the backup
 * layout (drill reports) get the longest span of any kind: a lock must end some day.
 *
 * Pure: no I/O.
 */
const DAY_MS = 86_400_000;

export function objectLockPolicy(setting: RetentionSetting): RetentionPolicy {
  // Spans do not depend on the time zone.
  return setting.kind === 'gfs' ? defaultProductionPolicy : remotePolicy(setting.days);
}

/** Days an object put under `key` stays locked. */
export function objectLockDays(policy: RetentionPolicy, key: string): number {
  const longest = Math.max(1, ...BACKUP_KINDS.map((kind) => ruleSpanDays(policy.rules[kind]) ?? 0));
  const kind = backupObjectOf(key)?.kind;
  return (kind === undefined ? undefined : ruleSpanDays(policy.rules[kind])) ?? longest;
}

/** The retain-until date of an object put under `key` at `now`. */
export function objectLockRetainUntil(policy: RetentionPolicy, key: string, now: Date): Date {
  return new Date(now.getTime() + objectLockDays(policy, key) * DAY_MS);
}

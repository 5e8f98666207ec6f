/**
 * S3 Lifecycle rules (S16) derived from the same retention policy Prune applies, so the two
 * can never disagree about a backup the policy keeps.
 *
 * Decisions:
 * - Tiers are object tags, not prefixes: the layout (S14) stays `<env>/{db,globals,assets,meta}/`
 *   and a backup can change tier in place (pin, unpin) without copying its bytes. Every object
 *   of a backup is tagged at put time with `tier=<kind>` and `object=manifest|artifact`
 *   (objectTagsForKey, from the key alone).
 * - Lifecycle filters cannot say NOT, so protection is a tier no rule names: pinned backups get
 *   `tier=pinned` (the `pin` command, and every Prune run re-checks), and `manual` snapshots and
 *   other keep-all kinds get no rule at all.
 * - Expiry per tier = the longest span the policy's rule for that kind keeps in a regular
 *   history (days, ISO weeks x 7, months x 31, keep-within) + LIFECYCLE_SAFETY_DAYS. Lifecycle
 *   is the backstop; Prune does the fine-grained GFS deletion. A history with gaps can make the
 *   policy keep a backup longer (restic semantics count periods that HAVE backups, and the newest
 *   backup is always kept): Prune moves such a kept backup to `tier=retained`, which no rule
 *   names, RETAG_LEAD_DAYS before its rule could reach it, and deletes it itself when the policy
 *   lets it go. So nothing the policy keeps is ever expired, even if Prune misses a few runs.
 * - Manifests expire ARTIFACT_EXPIRY_LAG_DAYS before their artifacts (S3 rounds expiry to the
 *   next midnight UTC, and one backup's uploads may straddle it): like Prune, the lifecycle
 *   removes the manifest first and never leaves a complete-looking backup missing files.
 * - Incomplete multipart uploads are aborted after one day.
 * - `lifecycle apply` owns only the rules whose ID starts with `erp4-backup:<bucket prefix>:`;
 *   rules of other envs, prefixes or tools in the same bucket are kept as they are.
 *
 * Pure: no I/O (src/commands/lifecycle.ts talks to the bucket).
 */
import type { LifecycleRule } from '@aws-sdk/client-s3';
import { backupObjectOf } from './backup-objects.js';
import { BACKUP_KINDS, type BackupKind } from './layout.js';
import type { KindRule, RetentionPolicy } from './retention.js';

export const TIER_TAG = 'tier';
export const OBJECT_TAG = 'object';
export type Tier = BackupKind | 'pinned' | 'retained';
export type TaggedObject = 'manifest' | 'artifact';

export const LIFECYCLE_SAFETY_DAYS = 30;
export const RETAG_LEAD_DAYS = 14;
export const ARTIFACT_EXPIRY_LAG_DAYS = 2;
export const ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS = 1;

const DAY_MS = 86_400_000;
const MAX_RULE_ID_LENGTH = 255;

export function tierTags(tier: Tier, object: TaggedObject): Record<string, string> {
  return { [TIER_TAG]: tier, [OBJECT_TAG]: object };
}

/** The tags an object gets at put time, from its key; undefined for objects outside the backup layout. */
export function objectTagsForKey(key: string): Record<string, string> | undefined {
  const found = backupObjectOf(key);
  return found ? tierTags(found.kind, found.object) : undefined;
}

/** The longest span, in days, that `rule` keeps in a regular history; undefined: keeps everything. */
export function ruleSpanDays(rule: KindRule): number | undefined {
  if ('keepAll' in rule) return undefined;
  const within = rule.keepWithin === undefined ? 0 : 'hours' in rule.keepWithin ? Math.ceil(rule.keepWithin.hours / 24) : rule.keepWithin.days;
  const span = Math.max(within, rule.keepDaily ?? 0, (rule.keepWeekly ?? 0) * 7, (rule.keepMonthly ?? 0) * 31);
  return span > 0 ? span : undefined;
}

/** Days after creation at which the lifecycle expires the manifests of `kind`; undefined: never. */
export function manifestExpiryDays(policy: RetentionPolicy, kind: BackupKind): number | undefined {
  const span = ruleSpanDays(policy.rules[kind]);
  return span === undefined ? undefined : span + LIFECYCLE_SAFETY_DAYS;
}

/** The tier a backup's objects should carry now; Prune applies it to every backup the policy keeps. */
export function desiredTier(backup: { kind: BackupKind; pinned: boolean; generatedAt: string }, now: Date, policy: RetentionPolicy): Tier {
  if (backup.pinned) return 'pinned';
  const expiry = manifestExpiryDays(policy, backup.kind);
  if (expiry === undefined) return backup.kind;
  const ageDays = (now.getTime() - Date.parse(backup.generatedAt)) / DAY_MS;
  return ageDays >= expiry - RETAG_LEAD_DAYS ? 'retained' : backup.kind;
}

/** Rule IDs this product owns for one bucket prefix (`<S3_PREFIX>/<env>/`). */
export function ruleIdPrefix(bucketPrefix: string): string {
  return `erp4-backup:${bucketPrefix}:`;
}

/** The rules the policy wants for the objects under `bucketPrefix` (e.g. `erp4/prod/`). */
export function lifecycleRules(policy: RetentionPolicy, bucketPrefix: string): LifecycleRule[] {
  const idPrefix = ruleIdPrefix(bucketPrefix);
  const rules: LifecycleRule[] = [];
  for (const kind of BACKUP_KINDS) {
    const days = manifestExpiryDays(policy, kind);
    if (days === undefined) continue;
    for (const [object, expiry] of [['manifest', days], ['artifact', days + ARTIFACT_EXPIRY_LAG_DAYS]] as const) {
      rules.push({
        ID: `${idPrefix}${kind}:${object}`,
        Status: 'Enabled',
        Filter: { And: { Prefix: bucketPrefix, Tags: Object.entries(tierTags(kind, object)).map(([Key, Value]) => ({ Key, Value })) } },
        Expiration: { Days: expiry },
      });
    }
  }
  rules.push({
    ID: `${idPrefix}abort-incomplete-uploads`,
    Status: 'Enabled',
    Filter: { Prefix: bucketPrefix },
    AbortIncompleteMultipartUpload: { DaysAfterInitiation: ABORT_INCOMPLETE_UPLOADS_AFTER_DAYS },
  });
  const tooLong = rules.find((rule) => (rule.ID ?? '').length > MAX_RULE_ID_LENGTH);
  if (tooLong) throw new Error(`S3_PREFIX is too long for lifecycle rule IDs (at most ${MAX_RULE_ID_LENGTH} characters): ${tooLong.ID}`);
  return rules;
}

export function isOwnRule(rule: LifecycleRule, bucketPrefix: string): boolean {
  return (rule.ID ?? '').startsWith(ruleIdPrefix(bucketPrefix));
}

/** The bucket's rules with this prefix's own rules replaced by `wanted`; every other rule is kept. */
export function mergedRules(current: readonly LifecycleRule[], wanted: readonly LifecycleRule[], bucketPrefix: string): LifecycleRule[] {
  return [...current.filter((rule) => !isOwnRule(rule, bucketPrefix)), ...wanted];
}

/** One line saying what a rule does, e.g. `erp4/prod/ tier=daily object=manifest: expire after 402 days`. */
export function describeRule(rule: LifecycleRule): string {
  const filter = rule.Filter;
  const prefix = filter?.And?.Prefix ?? filter?.Prefix ?? rule.Prefix ?? '';
  const tags = [...(filter?.And?.Tags ?? []), ...(filter?.Tag ? [filter.Tag] : [])].map((tag) => `${tag.Key}=${tag.Value}`);
  const actions = [
    ...(rule.Expiration?.Days !== undefined ? [`expire after ${rule.Expiration.Days} days`] : []),
    ...(rule.Expiration?.Date !== undefined ? [`expire on ${rule.Expiration.Date.toISOString()}`] : []),
    ...(rule.AbortIncompleteMultipartUpload?.DaysAfterInitiation !== undefined
      ? [`abort incomplete multipart uploads after ${rule.AbortIncompleteMultipartUpload.DaysAfterInitiation} day(s)`]
      : []),
    ...((rule.Transitions ?? []).length > 0 || rule.NoncurrentVersionExpiration ? ['other actions'] : []),
  ];
  const status = rule.Status === 'Enabled' ? '' : ` (${rule.Status ?? 'no status'})`;
  return `${[prefix || '(whole bucket)', ...tags].join(' ')}: ${actions.join(', ') || 'no action'}${status}`;
}

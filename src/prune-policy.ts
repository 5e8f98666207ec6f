import type { Config, RetentionSetting } from './config.js';
import { OFFSITE_COPY_REPOSITORY } from './repositories.js';
import type { Repository } from './storage/repository.js';
import { defaultProductionPolicy, remotePolicy, type KindRule, type RetentionPolicy } from './retention.js';

/**
 * Which retention policy Prune applies to each repository (S7, S8, S16, S17), from the config:
 *
 *   local            LOCAL_RETENTION, default 7 days (the PoC's generations, S7)
 *   s3, s3-copy      S3_RETENTION, default the S8 GFS tiers; `lifecycle apply` derives the
 *                    bucket's rules from the same policy, so `lifecycle: true`
 *   sftp             REMOTE_KEEP_DAYS days; unset: nothing on the remote is ever pruned (S17)
 *
 * Calendars are counted in TIME_ZONE. Pinned backups and `manual` snapshots are kept by every
 * policy (src/retention.ts).
 */
export interface RepositoryRetention {
  policy: RetentionPolicy;
  /** e.g. `gfs (daily: daily 14, weekly 8, monthly 12; ...)`, for plans and the CLI. */
  description: string;
  /** The repository is an S3 bucket whose objects carry lifecycle tiers (src/lifecycle.ts). */
  lifecycle: boolean;
}

export interface PruneSettings {
  retention: Readonly<Record<string, RepositoryRetention>>;
  /** Artifacts without a manifest, and unfinished multipart uploads, older than this are reaped. */
  abandonedAfterMs: number;
  /** S8: Prune never deletes from `primary` a backup newer than the newest one `copy` holds. */
  offsiteCopy: { primary: string; copy: string } | undefined;
}

export function retentionPolicyOf(setting: RetentionSetting, timeZone: string): RetentionPolicy {
  return setting.kind === 'gfs' ? { ...defaultProductionPolicy, timeZone } : remotePolicy(setting.days, timeZone);
}

function describeRule(rule: KindRule): string {
  if ('keepAll' in rule) return `all (${rule.keepAll})`;
  const within = rule.keepWithin && ('hours' in rule.keepWithin ? `within ${rule.keepWithin.hours}h` : `within ${rule.keepWithin.days}d`);
  const tiers = [
    rule.keepDaily ? `daily ${rule.keepDaily}` : undefined,
    rule.keepWeekly ? `weekly ${rule.keepWeekly}` : undefined,
    rule.keepMonthly ? `monthly ${rule.keepMonthly}` : undefined,
    within,
  ];
  return tiers.filter((tier) => tier !== undefined).join(', ');
}

export function describePolicy(name: string, policy: RetentionPolicy): string {
  const rules = Object.entries(policy.rules).map(([kind, rule]) => `${kind}: ${describeRule(rule)}`);
  return `${name} in ${policy.timeZone} (${rules.join('; ')})`;
}

const settingName = (setting: RetentionSetting, variable: string) =>
  `${variable}=${setting.kind === 'gfs' ? 'gfs' : `${setting.days}d`}`;

export function pruneSettings(config: Config): PruneSettings {
  const of = (setting: RetentionSetting, variable: string, lifecycle: boolean): RepositoryRetention => {
    const policy = retentionPolicyOf(setting, config.timeZone);
    return { policy, description: describePolicy(settingName(setting, variable), policy), lifecycle };
  };
  const retention: Record<string, RepositoryRetention> = { local: of(config.prune.localRetention, 'LOCAL_RETENTION', false) };
  if (config.s3) retention.s3 = of(config.prune.s3Retention, 'S3_RETENTION', true);
  if (config.s3Copy) retention[OFFSITE_COPY_REPOSITORY] = of(config.prune.s3Retention, 'S3_RETENTION', true);
  if (config.remote) {
    const keepDays = config.remote.keepDays;
    const policy = remotePolicy(keepDays, config.timeZone);
    retention.sftp = { policy, description: describePolicy(keepDays === undefined ? 'REMOTE_KEEP_DAYS unset' : `REMOTE_KEEP_DAYS=${keepDays}`, policy), lifecycle: false };
  }
  return {
    retention,
    abandonedAfterMs: config.prune.abandonedAfterMs,
    offsiteCopy: config.s3 && config.s3Copy ? { primary: 's3', copy: OFFSITE_COPY_REPOSITORY } : undefined,
  };
}

/** The prune part of the worker's runtime: settings, and the repositories opened with S3_PRUNER_* (S15). */
export interface PruneRuntime extends PruneSettings {
  /** The repositories with a retention policy: every configured one. */
  repositoryNames: readonly string[];
  /** Opens a configured repository with the pruning credentials; undefined for an unknown name. The caller closes it. */
  openRepository(name: string): Repository | undefined;
}

/** `openPruner` opens a configured repository with the pruning credentials (the composition root, src/runtime.ts, hands it in). */
export function createPruneRuntime(config: Config, openPruner: (name: string) => Repository | undefined): PruneRuntime {
  const settings = pruneSettings(config);
  return { ...settings, repositoryNames: Object.keys(settings.retention), openRepository: openPruner };
}

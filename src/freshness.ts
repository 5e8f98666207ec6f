import type { BackupKind } from './layout.js';

/**
 * The freshness watchdog's judgement (S9: detect a problem within 30 minutes), as pure
 * functions of what the repositories hold and the time: the Freshness workflow calls them, so
 * they must stay deterministic (no I/O, no clock).
 *
 * Checks, each an incident with a stable id while it lasts:
 * - `backup-stale:daily`: the newest whole-database backup (daily or manual) anywhere is older
 *   than RPO_DAILY, or there is none;
 * - `backup-stale:critical`: the newest backup holding the important tables (critical,
 *   weekly-full, daily or manual) is older than RPO_CRITICAL (only with CRITICAL_TABLES);
 * - `drill-failed`: the newest restore drill did not pass;
 * - `drill-stale`: the newest drill is older than DRILL_MAX_AGE, or there is none;
 * - `offsite-lag:<repository>`: an off-site repository (s3, sftp) has lacked a backup the local
 *   repository holds for longer than OFFSITE_MAX_LAG;
 * - `repository-unreadable:<repository>`: its catalog could not be read.
 */

export interface FreshnessPolicy {
  rpoDailyMs: number;
  /** Undefined without CRITICAL_TABLES: no data has the 6 h RPO then. */
  rpoCriticalMs?: number;
  drillMaxAgeMs: number;
  offsiteMaxLagMs: number;
}

export interface BackupFact {
  id: string;
  kind: BackupKind;
  generatedAt: string;
}

/** One drill report (meta/drills/<backup>/<report>.json, written by RestoreDrill). */
export interface DrillFact {
  key: string;
  /** The report's `outcome`: passed, failed, not-approved, cancelled. Anything but passed is a failed drill. */
  outcome: string;
  finishedAt: string;
  /** The report's failure cause, when it has one. */
  cause?: string;
  /** The measured recovery time (the report's rto.measuredMs), for the metrics. */
  rtoMs?: number;
}

export interface RepositoryFacts {
  name: string;
  /** For `local`: the host (WORKER_HOST_ID) whose local repository was read; each host has its own. */
  host?: string;
  /** Why the catalog could not be read; the other fields are empty then. */
  error?: string;
  backups: BackupFact[];
  drills: DrillFact[];
}

export interface FreshnessFacts {
  env: string;
  policy: FreshnessPolicy;
  repositories: RepositoryFacts[];
}

export type FindingCheck = 'backup-stale' | 'drill-failed' | 'drill-stale' | 'offsite-lag' | 'repository-unreadable';

export interface Finding {
  /** Stable while the problem lasts: `backup-stale:daily`, `offsite-lag:s3`, ... */
  id: string;
  check: FindingCheck;
  summary: string;
  details: Record<string, string>;
}

/** Kinds whose backups hold the data of each RPO class (a manual backup is a whole-database dump). */
const COVERING_KINDS: Record<'daily' | 'critical', readonly BackupKind[]> = {
  daily: ['daily', 'manual'],
  critical: ['critical', 'weekly-full', 'daily', 'manual'],
};

export const LOCAL_REPOSITORY = 'local';

/** `26h05m`, `3d02h`: ages in alerts. */
export function formatAge(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const rest = minutes % 60;
  if (days > 0) return `${days}d${String(hours).padStart(2, '0')}h`;
  return `${hours}h${String(rest).padStart(2, '0')}m`;
}

const time = (iso: string) => Date.parse(iso);

function newest<T>(items: readonly T[], at: (item: T) => number): T | undefined {
  let best: T | undefined;
  for (const item of items) if (best === undefined || at(item) > at(best)) best = item;
  return best;
}

function staleBackup(rpoClass: 'daily' | 'critical', rpoMs: number, backups: readonly BackupFact[], now: number): Finding | undefined {
  const kinds = COVERING_KINDS[rpoClass];
  const latest = newest(backups.filter((b) => kinds.includes(b.kind)), (b) => time(b.generatedAt));
  const what = rpoClass === 'daily' ? 'whole-database backup' : 'backup of the important tables';
  const base = { rpo: formatAge(rpoMs), covering_kinds: kinds.join(',') };
  if (!latest) {
    return { id: `backup-stale:${rpoClass}`, check: 'backup-stale', summary: `no complete ${what} in any repository (RPO ${base.rpo})`, details: base };
  }
  const age = now - time(latest.generatedAt);
  if (age <= rpoMs) return undefined;
  return {
    id: `backup-stale:${rpoClass}`,
    check: 'backup-stale',
    summary: `newest ${what} ${latest.id} is ${formatAge(age)} old, beyond the RPO of ${base.rpo}`,
    details: { ...base, newest_backup: latest.id, generated_at: latest.generatedAt, age: formatAge(age) },
  };
}

function drillFindings(drills: readonly DrillFact[], maxAgeMs: number, now: number): Finding[] {
  const latest = newest(drills, (d) => time(d.finishedAt));
  if (!latest) {
    return [{ id: 'drill-stale', check: 'drill-stale', summary: `no restore drill recorded (one is due every ${formatAge(maxAgeMs)})`, details: {} }];
  }
  const details = { report: latest.key, outcome: latest.outcome, finished_at: latest.finishedAt };
  // A failed drill is the more urgent problem; a passing drill fixes both.
  if (latest.outcome !== 'passed') {
    return [
      {
        id: 'drill-failed',
        check: 'drill-failed',
        summary: `the newest restore drill did not pass (outcome ${latest.outcome})${latest.cause ? `: ${latest.cause}` : ''}`,
        details: { ...details, ...(latest.cause ? { cause: latest.cause } : {}) },
      },
    ];
  }
  const age = now - time(latest.finishedAt);
  if (age <= maxAgeMs) return [];
  return [
    {
      id: 'drill-stale',
      check: 'drill-stale',
      summary: `the newest restore drill passed ${formatAge(age)} ago, longer than ${formatAge(maxAgeMs)}`,
      details: { ...details, age: formatAge(age) },
    },
  ];
}

/**
 * The local backups the off-site repository lacks: those newer than everything off-site. Older
 * backups the off-site copy never had (added later, or pruned on another schedule) do not
 * count. How long it has lacked them is the age of the oldest.
 */
function missingOffsite(local: RepositoryFacts, offsite: RepositoryFacts): BackupFact[] {
  const offsiteIds = new Set(offsite.backups.map((b) => b.id));
  const newestOffsite = newest(offsite.backups, (b) => time(b.generatedAt));
  return local.backups.filter((b) => !offsiteIds.has(b.id) && (newestOffsite === undefined || time(b.generatedAt) > time(newestOffsite.generatedAt)));
}

/**
 * Since when the off-site repository has lacked a backup the local one holds: the generatedAt
 * of the oldest missing one (missingOffsite), or `now` when nothing is missing.
 */
export function offsiteMissingSince(local: RepositoryFacts, offsite: RepositoryFacts, now: number): number {
  const oldestMissing = newest(missingOffsite(local, offsite), (b) => -time(b.generatedAt));
  return oldestMissing === undefined ? now : time(oldestMissing.generatedAt);
}

function offsiteLag(local: RepositoryFacts, offsite: RepositoryFacts, maxLagMs: number, now: number): Finding | undefined {
  const newestOffsite = newest(offsite.backups, (b) => time(b.generatedAt));
  const missing = missingOffsite(local, offsite);
  const oldestMissing = newest(missing, (b) => -time(b.generatedAt));
  if (!oldestMissing) return undefined;
  const lag = now - time(oldestMissing.generatedAt);
  if (lag <= maxLagMs) return undefined;
  return {
    id: `offsite-lag:${offsite.name}`,
    check: 'offsite-lag',
    summary: `off-site repository ${offsite.name} lacks ${missing.length} backup(s) the local repository${local.host ? ` of host ${local.host}` : ''} holds, the oldest for ${formatAge(lag)}`,
    details: {
      repository: offsite.name,
      ...(local.host ? { local_host: local.host } : {}),
      missing_backups: missing.map((b) => b.id).join(','),
      newest_offsite: newestOffsite?.id ?? 'none',
      lag: formatAge(lag),
      max_lag: formatAge(maxLagMs),
      // Idempotent: copies only what the off-site repository lacks, verified, manifests last.
      remedy: `erp4-backup copy --from local --to ${offsite.name}`,
    },
  };
}

export function evaluateFreshness(facts: FreshnessFacts, now: Date): Finding[] {
  const at = now.getTime();
  const { policy } = facts;
  const findings: Finding[] = [];
  for (const repository of facts.repositories) {
    if (repository.error !== undefined) {
      findings.push({
        id: `repository-unreadable:${repository.name}`,
        check: 'repository-unreadable',
        summary: `the catalog of repository ${repository.name} cannot be read: ${repository.error}`,
        details: { repository: repository.name, error: repository.error },
      });
    }
  }
  const readable = facts.repositories.filter((repository) => repository.error === undefined);
  // Nothing readable: every other judgement would be a guess.
  if (readable.length === 0) return findings;

  const backups = readable.flatMap((repository) => repository.backups);
  const stale = [
    staleBackup('daily', policy.rpoDailyMs, backups, at),
    policy.rpoCriticalMs === undefined ? undefined : staleBackup('critical', policy.rpoCriticalMs, backups, at),
  ];
  findings.push(...stale.filter((finding): finding is Finding => finding !== undefined));
  findings.push(...drillFindings(readable.flatMap((repository) => repository.drills), policy.drillMaxAgeMs, at));

  const local = readable.find((repository) => repository.name === LOCAL_REPOSITORY);
  if (local) {
    for (const offsite of readable.filter((repository) => repository.name !== LOCAL_REPOSITORY)) {
      const lag = offsiteLag(local, offsite, policy.offsiteMaxLagMs, at);
      if (lag) findings.push(lag);
    }
  }
  return findings;
}

/** An incident the watchdog has announced and not yet seen recover. */
export interface OpenIncident {
  id: string;
  check: FindingCheck;
  summary: string;
  openedAt: string;
}

export interface IncidentChanges {
  /** Findings without an open incident: announce each once. */
  opened: Finding[];
  /** Open incidents whose finding is gone: announce the recovery. */
  recovered: OpenIncident[];
}

/** Alert once per incident: a finding that stays open across runs is not announced again. */
export function reconcileIncidents(open: readonly OpenIncident[], findings: readonly Finding[]): IncidentChanges {
  const openIds = new Set(open.map((incident) => incident.id));
  const foundIds = new Set(findings.map((finding) => finding.id));
  return {
    opened: findings.filter((finding) => !openIds.has(finding.id)),
    recovered: open.filter((incident) => !foundIds.has(incident.id)),
  };
}

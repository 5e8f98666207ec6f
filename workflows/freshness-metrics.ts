import type { MetricMeter } from '@temporalio/common';
import { LOCAL_REPOSITORY, offsiteMissingSince, type DrillFact, type FreshnessFacts } from '../src/freshness.js';

/**
 * The gauges of what the repositories' catalogs show, set by every Freshness run (through the
 * workflow metric meter) and once at worker start (src/temporal/freshness-gauges-at-start.ts,
 * through the Runtime's meter with the same tags), so the series exist after a restart too.
 *
 * Several workers export them, each with the values of the last catalog read it made; the
 * alert rules (deploy/prometheus/erp4-backup.rules.yml) take the `max` across workers, so every
 * gauge is a time that only grows as backups and drills happen (or a setting), never a flag or
 * an age that a worker which has not read the catalog lately would hold at an old value.
 * Pure: workflow code calls it.
 */

export const FRESHNESS_METRICS = {
  newestBackup: 'erp4_backup_newest_timestamp_seconds',
  offsiteMissingSince: 'erp4_offsite_missing_since_timestamp_seconds',
  objective: 'erp4_freshness_objective_seconds',
  openIncidents: 'erp4_freshness_open_incidents',
  drillLastFinished: 'erp4_drill_last_finished_timestamp_seconds',
  drillLastPassed: 'erp4_drill_last_passed',
  drillRto: 'erp4_drill_rto_seconds',
} as const;

/** The tags the workflow metric meter gives Freshness's gauges (the Worker adds namespace and taskQueue). */
export function freshnessGaugeTags(namespace: string, taskQueue: string): Record<string, string> {
  return { namespace, taskQueue, workflowType: 'Freshness' };
}

/** `openIncidents` undefined: unknown (the incident file could not be read), the gauge is left as it is. */
export function recordFreshnessGauges(meter: MetricMeter, facts: FreshnessFacts, now: Date, openIncidents: number | undefined): void {
  if (openIncidents !== undefined) {
    meter.createGauge(FRESHNESS_METRICS.openIncidents, 'int', '', 'incidents the freshness watchdog has announced and not yet seen recover').set(openIncidents);
  }
  recordObjectives(meter, facts);
  recordCatalog(meter, facts, now);
  recordDrill(meter, facts.repositories.flatMap((repository) => repository.drills));
}

/** The watchdog's settings, so alert rules compare with what the worker is configured for. */
function recordObjectives(meter: MetricMeter, { policy }: FreshnessFacts): void {
  const objective = meter.createGauge(FRESHNESS_METRICS.objective, 'float', 's', 'the freshness settings: RPO_DAILY, RPO_CRITICAL (with CRITICAL_TABLES), DRILL_MAX_AGE, OFFSITE_MAX_LAG');
  objective.set(policy.rpoDailyMs / 1000, { objective: 'rpo_daily' });
  if (policy.rpoCriticalMs !== undefined) objective.set(policy.rpoCriticalMs / 1000, { objective: 'rpo_critical' });
  objective.set(policy.drillMaxAgeMs / 1000, { objective: 'drill_max_age' });
  objective.set(policy.offsiteMaxLagMs / 1000, { objective: 'offsite_max_lag' });
}

function recordCatalog(meter: MetricMeter, facts: FreshnessFacts, now: Date): void {
  const newestBackup = meter.createGauge(
    FRESHNESS_METRICS.newestBackup,
    'float',
    's',
    'generated_at of the newest complete backup of each kind in each repository, as its catalog shows it',
  );
  for (const repository of facts.repositories) {
    const newestByKind = new Map<string, number>();
    for (const backup of repository.backups) {
      newestByKind.set(backup.kind, Math.max(newestByKind.get(backup.kind) ?? 0, Date.parse(backup.generatedAt) / 1000));
    }
    for (const [kind, seconds] of newestByKind) newestBackup.set(seconds, { kind, repository: repository.name });
  }
  const readable = facts.repositories.filter((repository) => repository.error === undefined);
  const local = readable.find((repository) => repository.name === LOCAL_REPOSITORY);
  if (!local) return;
  const missingSince = meter.createGauge(
    FRESHNESS_METRICS.offsiteMissingSince,
    'float',
    's',
    'generated_at of the oldest local backup each off-site repository lacks; the time of the catalog read when it lacks none',
  );
  for (const offsite of readable.filter((repository) => repository !== local)) {
    missingSince.set(offsiteMissingSince(local, offsite, now.getTime()) / 1000, { repository: offsite.name });
  }
}

/** The newest drill's result and measured RTO, from its report: drills are judged by what they recorded. */
function recordDrill(meter: MetricMeter, drills: readonly DrillFact[]): void {
  const latest = drills.reduce<DrillFact | undefined>((best, drill) => (best === undefined || Date.parse(drill.finishedAt) > Date.parse(best.finishedAt) ? drill : best), undefined);
  if (!latest) return;
  meter.createGauge(FRESHNESS_METRICS.drillLastFinished, 'float', 's', 'when the newest restore drill finished').set(Date.parse(latest.finishedAt) / 1000);
  meter.createGauge(FRESHNESS_METRICS.drillLastPassed, 'int', '', '1 when the newest restore drill passed, 0 otherwise').set(latest.outcome === 'passed' ? 1 : 0);
  if (latest.rtoMs !== undefined) {
    meter.createGauge(FRESHNESS_METRICS.drillRto, 'float', 's', 'recovery time measured by the newest restore drill (S9 RTO)').set(latest.rtoMs / 1000);
  }
}

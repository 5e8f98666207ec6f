import {
  metricMeter,
  workflowInfo,
  type Next,
  type WorkflowExecuteInput,
  type WorkflowInboundCallsInterceptor,
  type WorkflowInterceptorsFactory,
} from '@temporalio/workflow';
import type { PruneResult, RestoreResult } from './messages.js';

/**
 * Our own Prometheus metrics, recorded when a workflow ends: a workflow interceptor registered
 * by the worker (src/temporal/worker.ts), so the workflows stay free of bookkeeping. They go
 * through Temporal's workflow metric meter to the worker's one endpoint, beside the SDK's own
 * metrics, tagged with the namespace, task queue, workflow type and (METRICS_BIND_ADDRESS's
 * runtime) the env; the meter skips replays, so a run is counted once.
 *
 * Per env and kind: the last successful NightlyBackup's completion time, size and duration,
 * and runs by outcome. RestoreDrill: runs by outcome (the newest drill's result and measured
 * RTO come from its report, via the Freshness workflow, so they survive worker restarts).
 * Prune: backups deleted per repository.
 */

export const METRICS = {
  backupLastSuccess: 'erp4_backup_last_success_timestamp_seconds',
  backupSize: 'erp4_backup_size_bytes',
  backupDuration: 'erp4_backup_duration_seconds',
  backupRuns: 'erp4_backup_runs_total',
  drillRuns: 'erp4_drill_runs_total',
  pruneDeleted: 'erp4_prune_deleted_backups_total',
} as const;

function kindOf(args: unknown[]): string {
  const input = args[0] as { kind?: unknown } | undefined;
  return typeof input?.kind === 'string' ? input.kind : 'unknown';
}

function recordBackup(args: unknown[], result: unknown, startedAtMs: number): void {
  const kind = kindOf(args);
  if (result === undefined) {
    metricMeter.createCounter(METRICS.backupRuns, '', 'NightlyBackup runs by kind and outcome').add(1, { kind, outcome: 'failed' });
    return;
  }
  const now = Date.now();
  metricMeter.createCounter(METRICS.backupRuns, '', 'NightlyBackup runs by kind and outcome').add(1, { kind, outcome: 'completed' });
  metricMeter.createGauge(METRICS.backupLastSuccess, 'float', 's', 'completion time of the last successful NightlyBackup of each kind').set(now / 1000, { kind });
  metricMeter.createGauge(METRICS.backupDuration, 'float', 's', 'duration of the last successful NightlyBackup of each kind').set((now - startedAtMs) / 1000, { kind });
  const totalBytes = (result as { totalBytes?: unknown }).totalBytes;
  if (typeof totalBytes === 'number') {
    metricMeter.createGauge(METRICS.backupSize, 'int', 'By', 'bytes stored per repository by the last successful NightlyBackup of each kind').set(totalBytes, { kind });
  }
}

function recordDrill(result: RestoreResult | undefined): void {
  metricMeter.createCounter(METRICS.drillRuns, '', 'RestoreDrill runs by outcome').add(1, { outcome: result?.outcome ?? 'failed' });
}

/** A dry run has no results: nothing was deleted. */
function recordPrune(result: PruneResult): void {
  const deleted = metricMeter.createCounter(METRICS.pruneDeleted, '', 'backups deleted by Prune, per repository');
  for (const repository of result.results) deleted.add(repository.deletedBackups.length, { repository: repository.repository });
}

class OutcomeMetrics implements WorkflowInboundCallsInterceptor {
  async execute(input: WorkflowExecuteInput, next: Next<WorkflowInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const { workflowType, runStartTime } = workflowInfo();
    let result: unknown;
    try {
      result = await next(input);
      return result;
    } finally {
      if (workflowType === 'NightlyBackup') recordBackup(input.args, result, runStartTime.getTime());
      if (workflowType === 'RestoreDrill') recordDrill(result as RestoreResult | undefined);
      if (workflowType === 'Prune' && result !== undefined) recordPrune(result as PruneResult);
    }
  }
}

export const interceptors: WorkflowInterceptorsFactory = () => ({ inbound: [new OutcomeMetrics()] });

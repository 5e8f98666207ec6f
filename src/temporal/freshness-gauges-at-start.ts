import { Runtime } from '@temporalio/worker';
import { createFreshnessActivities } from '../../activities/freshness.js';
import type { BackupRuntime } from '../../activities/runtime.js';
import { freshnessGaugeTags, recordFreshnessGauges } from '../../workflows/freshness-metrics.js';
import type { Config } from '../config.js';

/**
 * At worker start, one catalog read like a Freshness run's (without judging or notifying) sets
 * the freshness gauges (workflows/freshness-metrics.ts) through the Runtime's metric meter,
 * with the tags the Freshness workflow's meter gives them: the same series, present right
 * after a restart instead of up to 15 minutes later, when the next Freshness run lands on this
 * worker (with several workers, perhaps much later). It runs beside the worker: a slow or
 * unreadable repository must not delay polling; a failed read is logged and the next Freshness
 * run sets the gauges. Nothing to do without METRICS_BIND_ADDRESS.
 */
export function publishFreshnessGaugesAtStart(runtime: BackupRuntime, config: Pick<Config, 'metrics' | 'temporal'>): void {
  if (config.metrics.bindAddress === undefined) return;
  const { logger, metricMeter } = Runtime.instance();
  const activities = createFreshnessActivities(runtime);
  const publish = async () => {
    const now = new Date();
    // Only the incident count needs the local repository: when it cannot be read, the other gauges are still set.
    const [facts, open] = await Promise.all([activities.gatherFreshnessFacts(), activities.loadOpenIncidents().catch(() => undefined)]);
    recordFreshnessGauges(metricMeter.withTags(freshnessGaugeTags(config.temporal.namespace, config.temporal.taskQueue)), facts, now, open?.length);
  };
  publish().then(
    () => logger.debug('erp4-backup worker: freshness gauges set from the catalog'),
    (error: unknown) => logger.warn(`erp4-backup worker: freshness gauges not set at start (the next Freshness run sets them): ${(error as Error).message}`),
  );
}

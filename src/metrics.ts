import { Runtime } from '@temporalio/worker';

/**
 * The worker's Prometheus endpoint (METRICS_BIND_ADDRESS, `/metrics`): Temporal's own SDK
 * metrics (task latencies, failures, schedule-to-start, ...) and ours (workflows/outcome-metrics.ts,
 * the Freshness workflow) on one endpoint. Every series carries `env`, so several environments
 * can feed one Prometheus.
 *
 * Temporal's Runtime is a per-process singleton: this must run before the worker's first
 * connection, and at most once per process.
 */
export function installMetrics(bindAddress: string, env: string): void {
  Runtime.install({
    telemetryOptions: {
      metrics: {
        prometheus: { bindAddress, useSecondsForDurations: true },
        globalTags: { env },
      },
    },
  });
}

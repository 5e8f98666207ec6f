import { type NativeConnection, Runtime } from '@temporalio/worker';
import type { BackupRuntime } from '../../activities/index.js';
import type { Config } from '../config.js';
import { installTelemetry, logNow } from '../telemetry.js';
import { createBackupRuntime } from '../runtime.js';
import { openNativeConnection } from '../temporal/connect.js';
import { stopGracefullyOnSignals } from '../temporal/graceful-shutdown.js';
import { createBackupWorkers, runWorkers } from '../temporal/worker.js';
import { publishFreshnessGaugesAtStart } from '../temporal/freshness-gauges-at-start.js';
import { missingLaunchSettings } from '../worker-launch.js';

/**
 * `erp4-backup worker`: reads its configuration (and secrets) from its own environment, polls
 * the task queue, and runs until SIGINT/SIGTERM, letting in-flight work finish within
 * WORKER_SHUTDOWN_GRACE first (src/temporal/graceful-shutdown.ts).
 */
export async function workerCommand(config: Config): Promise<void> {
  // Before the first connection: it creates Temporal's per-process Runtime.
  installTelemetry(config);
  let runtime: BackupRuntime;
  let connection: NativeConnection;
  try {
    runtime = await createBackupRuntime(config);
    connection = await openNativeConnection(config.temporal.connection);
  } catch (error) {
    // No worker ever ran to stop the Runtime (its log forwarding would keep the process alive).
    await Runtime.instance().shutdown();
    throw error;
  }
  try {
    const workers = await createBackupWorkers({ connection, namespace: config.temporal.namespace, runtime, shutdownGraceMs: config.worker.shutdownGraceMs });
    const log = Runtime.instance().logger;
    log.info(
      `erp4-backup worker: env ${config.env}, host ${runtime.host.id}, task queues ${config.temporal.taskQueue} and ${runtime.host.taskQueue} ` +
        `on ${config.temporal.connection.describe()}, repositories ${[...runtime.repositories.keys()].join(', ')}`,
    );
    const missing = missingLaunchSettings(process.execArgv, process.env);
    if (missing.length > 0) {
      log.warn(`erp4-backup worker: started without ${missing.join(' ')}: its memory may exceed 300 MB (docs/MEMORY.md; \`npm run worker\`, the Docker image and deploy/systemd apply them)`);
    }
    publishFreshnessGaugesAtStart(runtime, config);
    const stop = stopGracefullyOnSignals(workers, config.worker.shutdownGraceMs, (line) => logNow(config, 'INFO', `erp4-backup worker: ${line}`));
    try {
      await runWorkers(workers);
    } finally {
      stop.dispose();
    }
    log.info('erp4-backup worker: stopped');
  } finally {
    await Promise.all([...runtime.repositories.values()].map((repository) => repository.close()));
    await connection.close();
  }
}

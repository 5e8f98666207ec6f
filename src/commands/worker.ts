import { NativeConnection } from '@temporalio/worker';
import type { Config } from '../config.js';
import { installMetrics } from '../metrics.js';
import { createBackupRuntime } from '../runtime.js';
import { createBackupWorkers, runWorkers } from '../temporal/worker.js';

/**
 * `erp4-backup worker`: reads its configuration (and secrets) from its own environment, polls
 * the task queue, and runs until SIGINT/SIGTERM, finishing in-flight work first.
 */
export async function workerCommand(config: Config): Promise<void> {
  // Before the first connection: it creates Temporal's per-process Runtime.
  if (config.metrics.bindAddress) installMetrics(config.metrics.bindAddress, config.env);
  const runtime = await createBackupRuntime(config);
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  try {
    const workers = await createBackupWorkers({ connection, namespace: config.temporal.namespace, runtime });
    console.log(
      `erp4-backup worker: env ${config.env}, host ${runtime.host.id}, task queues ${config.temporal.taskQueue} and ${runtime.host.taskQueue} ` +
        `on ${config.temporal.address}, repositories ${[...runtime.repositories.keys()].join(', ')}`,
    );
    await runWorkers(workers);
  } finally {
    await Promise.all([...runtime.repositories.values()].map((repository) => repository.close()));
    await connection.close();
  }
}

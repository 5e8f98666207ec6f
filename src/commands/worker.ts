import { NativeConnection, Runtime } from '@temporalio/worker';
import type { Config } from '../config.js';
import { installTelemetry } from '../telemetry.js';
import { createBackupRuntime } from '../runtime.js';
import { createBackupWorker } from '../temporal/worker.js';
import { publishFreshnessGaugesAtStart } from '../temporal/freshness-gauges-at-start.js';

/**
 * `erp4-backup worker`: reads its configuration (and secrets) from its own environment, polls
 * the task queue, and runs until SIGINT/SIGTERM, finishing in-flight work first.
 */
export async function workerCommand(config: Config): Promise<void> {
  // Before the first connection: it creates Temporal's per-process Runtime.
  installTelemetry(config);
  const runtime = await createBackupRuntime(config);
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  try {
    const worker = await createBackupWorker({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      runtime,
    });
    Runtime.instance().logger.info(
      `erp4-backup worker: env ${config.env}, task queue ${config.temporal.taskQueue} on ${config.temporal.address}, ` +
        `repositories ${[...runtime.repositories.keys()].join(', ')}`,
    );
    publishFreshnessGaugesAtStart(runtime, config);
    await worker.run();
  } finally {
    await Promise.all([...runtime.repositories.values()].map((repository) => repository.close()));
    await connection.close();
  }
}

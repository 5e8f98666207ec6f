import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { loadConfig, type Config } from '../../src/config.js';
import { createBackupRuntime } from '../../src/runtime.js';
import { bundleWorkflows, createBackupWorkers, runWorkers } from '../../src/temporal/worker.js';
import type { BackupRuntime } from '../../activities/index.js';
import type { Services } from '../helpers/services.js';

/**
 * Several differently configured products in one test file (a full disk, a fake pg_dump, a
 * wrong password, ...), each with its own in-process worker, sharing ONE workflow bundle:
 * bundling costs seconds of CPU per worker otherwise. Same shape as helpers/product.ts.
 */
export interface TestProduct {
  config: Config;
  runtime: BackupRuntime;
  client: Client;
  taskQueue: string;
  close(): Promise<void>;
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

export async function startTestProduct(s: Services, env: Record<string, string>): Promise<TestProduct> {
  bundle ??= bundleWorkflows();
  const config = loadConfig(env);
  const runtime = await createBackupRuntime(config);
  const nativeConnection = await NativeConnection.connect({ address: s.temporal.address });
  const workers = await createBackupWorkers({
    connection: nativeConnection,
    namespace: s.temporal.namespace,
    runtime,
    workflowBundle: await bundle,
  });
  const connection = await Connection.connect({ address: s.temporal.address });
  const client = new Client({ connection, namespace: s.temporal.namespace });
  const running = runWorkers(workers);
  return {
    config,
    runtime,
    client,
    taskQueue: config.temporal.taskQueue,
    async close() {
      for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await Promise.all([...runtime.repositories.values()].map((r) => r.close()));
      await connection.close();
      await nativeConnection.close();
    },
  };
}

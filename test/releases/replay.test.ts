import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import type { Configuration } from 'webpack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupWorkers, runWorkers, workflowInterceptorModules, workflowsPath } from '../../src/temporal/worker.js';
import { NightlyBackup, RestoreDrill } from '../../workflows/index.js';
import { approveRestoreSignal } from '../../workflows/messages.js';
import { inPhase, waitForStatus } from '../helpers/drill.js';
import { createSampleDatabase, productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';

/**
 * The versioning policy of docs/DEPLOYS.md shown to work: workflow changes go behind
 * `patched()`. A change made without it fails the replay of a drill waiting for approval (what
 * test/releases/histories.test.ts would catch in a recorded history); the same change behind the
 * guard replays, and a drill started by the old code completes on the new worker.
 */

/** This code's workflows, with `changes` made to workflows/restore-pipeline.ts (test/releases/workflow-change-loader.cjs). */
function bundleWithChange(changes: Array<{ anchor: string; insert: string }>): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({
    workflowsPath: workflowsPath(),
    workflowInterceptorModules: workflowInterceptorModules(),
    webpackConfigHook: (config: Configuration) => {
      config.module!.rules!.push({
        test: /workflows[\\/]restore-pipeline\.ts$/,
        enforce: 'pre',
        use: [{ loader: fileURLToPath(new URL('./workflow-change-loader.cjs', import.meta.url)), options: { changes } }],
      });
      return config;
    },
  });
}

// The change a developer might make: one more step at the start of every restore.
const IMPORTS = { anchor: '', insert: "import { patched as __patched, sleep as __sleep } from '@temporalio/workflow';\n" };
const PIPELINE_START = 'export async function runRestorePipeline(options: PipelineOptions): Promise<RestoreResult> {';
const unguardedChange = [IMPORTS, { anchor: PIPELINE_START, insert: '\n  await __sleep(1);\n' }];
const guardedChange = [IMPORTS, { anchor: PIPELINE_START, insert: "\n  if (__patched('replay-test-step')) await __sleep(1);\n" }];

describe('a workflow change behind patched()', () => {
  const s = services();
  const database = `erp4_replay_${process.pid}`;
  let product: RunningProduct;
  let env: Record<string, string>;
  let drillId: string;
  let waitingHistory: unknown;

  beforeAll(async () => {
    await createSampleDatabase(s, database);
    env = await productEnv(s, 'replay', { assets: false, env: { DB_NAME: database, RESTORE_APPROVERS: 'alice:admin', DRILL_ACCEPT_UNSIGNED_APPROVALS: 'true' } });
    product = await startProduct(s, env);
    const { backupId } = await product.client.workflow.execute(NightlyBackup, { taskQueue: env.TEMPORAL_TASK_QUEUE!, workflowId: `replay-backup-${process.pid}`, args: [{ kind: 'daily' }] });
    drillId = `replay-drill-${process.pid}`;
    const handle = await product.client.workflow.start(RestoreDrill, { taskQueue: env.TEMPORAL_TASK_QUEUE!, workflowId: drillId, args: [{ backupId, repository: 'local' }] });
    await waitForStatus(handle, inPhase('awaiting-approval'));
    waitingHistory = await handle.fetchHistory();
  });
  afterAll(async () => product?.close());

  it('made without the guard fails replay of a drill waiting for approval with a non-determinism error', async () => {
    const workflowBundle = await bundleWithChange(unguardedChange);
    await expect(Worker.runReplayHistory({ workflowBundle }, waitingHistory, drillId)).rejects.toBeInstanceOf(DeterminismViolationError);
  });

  it('made with the guard replays it, and the drill started by the old code completes on the new worker', async () => {
    const workflowBundle = await bundleWithChange(guardedChange);
    await Worker.runReplayHistory({ workflowBundle }, waitingHistory, drillId);

    // The deploy: the old worker stops, the new release's worker takes over the same task queue.
    await product.stopWorkers();
    const connection = await NativeConnection.connect({ address: s.temporal.address });
    const workers = await createBackupWorkers({ connection, namespace: s.temporal.namespace, runtime: product.runtime, workflowBundle });
    const running = runWorkers(workers);
    try {
      const handle = product.client.workflow.getHandle<typeof RestoreDrill>(drillId);
      await handle.signal(approveRestoreSignal, { approver: 'alice', comment: 'after the deploy' });
      expect((await handle.result()).outcome).toBe('passed');
    } finally {
      for (const worker of workers) worker.shutdown();
      await running;
      await connection.close();
    }
  });
});

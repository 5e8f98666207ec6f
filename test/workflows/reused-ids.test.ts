import { WorkflowFailedError } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeError } from '../../src/commands/format.js';
import { pgClientConfig } from '../../src/pg/connection.js';
import { dropDatabase } from '../../src/pg/restore.js';
import { databaseOwnership, ownershipMarker } from '../../src/restore/database.js';
import { startOnce } from '../../src/temporal/start-once.js';
import { NightlyBackup, RestoreDrill } from '../../workflows/index.js';
import type { NightlyBackupResult, RestoreDrillInput } from '../../workflows/messages.js';
import { databasesLike, harnessDb } from '../helpers/drill.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';

// Issue 12 item 6: a workflow id used again. The CLI never starts a second run of a backup,
// drill or restore id; a second run started another way (`temporal workflow start
// --workflow-id drill-1` twice, the Web UI's "start like this one") never drops the database
// an earlier run restored, because the marker names the run, not only the workflow id.
describe('reused workflow ids', () => {
  const s = services();
  let product: RunningProduct;
  let backup: NightlyBackupResult;
  const kept: string[] = [];

  beforeAll(async () => {
    product = await startProduct(s, await productEnv(s, 'reused', { assets: false, env: { DRILL_PREAPPROVED: 'true' } }));
    backup = await product.client.workflow.execute(NightlyBackup, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId: `reused-backup-${process.pid}-${Date.now()}`,
      args: [{ kind: 'daily' }],
    });
  });
  afterAll(async () => {
    for (const database of kept) await dropDatabase(harnessDb(s), database);
    await product?.close();
  });

  it('the CLI start refuses a workflow id that already ran, even after that run closed', async () => {
    const workflowId = `reused-cli-${process.pid}-${Date.now()}`;
    const options = { taskQueue: product.config.temporal.taskQueue, workflowId, args: [{ backupId: 'no-such-backup' }] as [RestoreDrillInput] };
    const first = await startOnce<typeof RestoreDrill>(product.client, 'RestoreDrill', options);
    await expect(first.result()).rejects.toThrow();
    await expect(startOnce<typeof RestoreDrill>(product.client, 'RestoreDrill', options)).rejects.toThrow(
      `workflow id ${workflowId} has been used before (RestoreDrill): a backup or restore id runs once; start a new one`,
    );
    // Temporal's own default, which `temporal workflow start` uses, would have started a second run.
    const again = await product.client.workflow.start('RestoreDrill', options);
    expect(again.firstExecutionRunId).not.toBe(first.firstExecutionRunId);
    await expect(again.result()).rejects.toThrow();
  });

  it("a second drill under the same workflow id neither drops nor reuses the first run's kept scratch database", async () => {
    const workflowId = `reused-drill-${process.pid}-${Date.now()}`;
    const start = () =>
      product.client.workflow.start(RestoreDrill, {
        taskQueue: product.config.temporal.taskQueue,
        workflowId,
        args: [{ backupId: backup.backupId, repository: 'local', keepScratch: true }],
      });
    const first = await start();
    const result = await first.result();
    expect(result.outcome).toBe('passed');
    const scratch = result.database!;
    kept.push(scratch);
    const firstRun = { workflowId, runId: first.firstExecutionRunId };
    expect(await databaseOwnership(harnessDb(s), scratch, ownershipMarker(firstRun))).toBe('ours');
    // What an operator did in the first run's scratch database, which must survive.
    const client = new pg.Client(pgClientConfig(harnessDb(s), scratch));
    await client.connect();
    await client.query('CREATE TABLE inspected_by_operator (note text)').finally(() => client.end());

    const second = await start();
    expect(second.firstExecutionRunId).not.toBe(first.firstExecutionRunId);
    const error = await second.result().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(describeError(error)).toContain(`RestoreDrill failed at selecting: database "${scratch}" already exists and was not created by this restore`);
    expect(await databasesLike(s, scratch)).toEqual([scratch]);
    expect(await databaseOwnership(harnessDb(s), scratch, ownershipMarker(firstRun))).toBe('ours');
    const check = new pg.Client(pgClientConfig(harnessDb(s), scratch));
    await check.connect();
    const survived = await check.query("SELECT to_regclass('inspected_by_operator') IS NOT NULL AS kept").finally(() => check.end());
    expect(survived.rows).toEqual([{ kept: true }]);
  });
});

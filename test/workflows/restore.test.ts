import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgClientConfig } from '../../src/pg/connection.js';
import { dropDatabase } from '../../src/pg/restore.js';
import { databaseOwnership, ownershipMarker } from '../../src/restore/database.js';
import type { RestoreReport } from '../../src/restore/report.js';
import { NightlyBackup, Restore, RestoreDrill } from '../../workflows/index.js';
import { approveRestoreSignal, type NightlyBackupResult } from '../../workflows/messages.js';
import { createApprovers, type TestApprovers } from '../helpers/approvers.js';
import { databasesLike, harnessDb, inPhase, startNoticeReceiver, waitForStatus } from '../helpers/drill.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';

// The production Restore (the old RESTORE_CONFIRM=1) with dual control (S13): it proceeds only
// on approvals from two different people of two different roles, into a target it creates empty.
describe('Restore', () => {
  const s = services();
  /** The run of the approved Restore: its marker is on the target it restored. */
  let approvedRun: { workflowId: string; runId: string } | undefined;
  const target = `erp4_restored_${process.pid}`;
  const role = `restore_test_role_${process.pid}`;
  let assetDir: string;
  let receiver: Awaited<ReturnType<typeof startNoticeReceiver>>;
  let product: RunningProduct;
  let backup: NightlyBackupResult;
  let approvers: TestApprovers;

  const admin = async <T>(work: (client: pg.Client) => Promise<T>, database = 'postgres'): Promise<T> => {
    const client = new pg.Client(pgClientConfig(harnessDb(s), database));
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  const roleExists = () => admin(async (c) => (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1);
  const startRestore = (workflowId: string, input: Parameters<typeof Restore>[0]) =>
    product.client.workflow.start(Restore, { taskQueue: product.config.temporal.taskQueue, workflowId, args: [input] });

  beforeAll(async () => {
    receiver = await startNoticeReceiver();
    approvers = await createApprovers(['alice', 'carol', 'bob']);
    const env = await productEnv(s, 'restore', {
      env: {
        RESTORE_APPROVERS: 'alice:admin,carol:admin,bob:management',
        RESTORE_ALLOWED_SIGNERS_FILE: approvers.allowedSignersFile,
        RESTORE_TARGET_DB: target,
        RESTORE_SMOKE_URLS: `${receiver.url}/health`,
        // Scheduled drills need no approval; a production Restore always does (first test).
        DRILL_PREAPPROVED: 'true',
      },
    });
    assetDir = join(env.BACKUP_DIR!, '..', `restored-assets-${process.pid}`);
    env.RESTORE_ASSET_DIR = assetDir;
    product = await startProduct(s, env);
    // A role that exists when the backup is taken and is gone when it is restored.
    await admin((c) => c.query(`CREATE ROLE ${pg.escapeIdentifier(role)} NOLOGIN`));
    try {
      backup = await product.client.workflow.execute(NightlyBackup, {
        taskQueue: product.config.temporal.taskQueue,
        workflowId: `restore-backup-${process.pid}-${Date.now()}`,
        args: [{ kind: 'daily' }],
      });
    } finally {
      await admin((c) => c.query(`DROP ROLE ${pg.escapeIdentifier(role)}`));
    }
  });

  afterAll(async () => {
    await product?.close();
    await receiver?.close();
    await dropDatabase(harnessDb(s), target);
    await admin((c) => c.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`));
    await rm(assetDir, { recursive: true, force: true });
    if (product) await rm(product.config.local.backupDir, { recursive: true, force: true });
    await approvers?.close();
  });

  it('refuses to proceed on one signed approval, on one person approving twice, and on two approvers of the same role; not-approved at the deadline', async () => {
    const handle = await startRestore(`restore-refused-${process.pid}`, { backupId: backup.backupId, approvalTimeoutSeconds: 6 });
    const waiting = await waitForStatus(handle, inPhase('awaiting-approval'));
    expect(waiting).toMatchObject({ mode: 'restore', database: target, assetDir, approvals: { rule: 'dual-control', satisfied: false } });

    await handle.signal(approveRestoreSignal, await approvers.signedFor(handle, 'alice'));
    let status = await waitForStatus(handle, (st) => st.approvals.accepted.length === 1);
    expect(status).toMatchObject({ phase: 'awaiting-approval', approvals: { satisfied: false, missing: 'an approval from a role other than admin' } });

    await handle.signal(approveRestoreSignal, await approvers.signedFor(handle, 'alice', { comment: 'me again' }));
    status = await waitForStatus(handle, (st) => st.approvals.ignored.length === 1);
    expect(status).toMatchObject({ phase: 'awaiting-approval', approvals: { satisfied: false, ignored: [{ approver: 'alice', ignoredBecause: 'alice already approved: one person counts once' }] } });

    await handle.signal(approveRestoreSignal, await approvers.signedFor(handle, 'carol'));
    status = await waitForStatus(handle, (st) => st.approvals.accepted.length === 2);
    expect(status).toMatchObject({ phase: 'awaiting-approval', approvals: { satisfied: false, missing: 'an approval from a role other than admin' } });
    expect(await databasesLike(s, target)).toEqual([]);

    const result = await handle.result();
    expect(result.outcome).toBe('not-approved');
    expect(await databasesLike(s, target)).toEqual([]);
    expect(existsSync(assetDir)).toBe(false);
  });

  it('proceeds on two approvers of two roles: shows the roles first, applies them, creates the target empty and restores into it', async () => {
    const workflowId = `restore-approved-${process.pid}`;
    const handle = await startRestore(workflowId, { backupId: backup.backupId, applyGlobals: true });
    approvedRun = { workflowId, runId: handle.firstExecutionRunId };
    const waiting = await waitForStatus(handle, inPhase('awaiting-approval'));
    expect(waiting.globals).toMatchObject({ apply: true, skipped: [s.postgres.user] });
    // Roles other test files create meanwhile may show up too: the cluster is shared.
    expect(waiting.globals?.create).toContain(role);
    expect(waiting.globals?.change).toEqual(expect.arrayContaining(['erp4_app', 'erp4_readonly']));
    expect(await roleExists()).toBe(false);

    await handle.signal(approveRestoreSignal, await approvers.signedFor(handle, 'alice', { comment: 'incident 42' }));
    await handle.signal(approveRestoreSignal, await approvers.signedFor(handle, 'bob'));
    const result = await handle.result();

    expect(result).toMatchObject({ outcome: 'passed', backupId: backup.backupId, database: target });
    expect(result.checks.filter((c) => !c.passed)).toEqual([]);
    expect(result.checks.map((c) => c.kind)).toEqual(expect.arrayContaining(['fingerprint', 'assets', 'http']));
    // The restore created the target itself (its marker), and the roles of the backup exist again.
    expect(await databaseOwnership(harnessDb(s), target, ownershipMarker(approvedRun!))).toBe('ours');
    expect(await roleExists()).toBe(true);
    const files = (await readdir(assetDir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
    expect(files.length).toBeGreaterThan(0);
    const invoices = await admin(async (c) => (await c.query<{ n: string }>('SELECT count(*)::text AS n FROM invoices')).rows[0]!.n, target);
    expect(result.checks.find((c) => c.name === 'public.invoices')?.expected).toContain(`rows ${invoices}`);

    const key = result.reportKeys.find((k) => k.startsWith('local:') && k.endsWith('.json'))!;
    expect(key).toContain(`test/meta/restores/${backup.backupId}/`);
    const report = JSON.parse((await product.runtime.repositories.get('local')!.getBytes(key.slice('local:'.length))).toString('utf8')) as RestoreReport;
    expect(report).toMatchObject({ mode: 'restore', outcome: 'passed', target: { database: target, assetDir, kept: true }, globals: { applied: true } });
    expect(report.approvals.accepted.map((a) => [a.approver, a.role, a.comment, a.key])).toEqual([
      ['alice', 'admin', 'incident 42', await approvers.fingerprint('alice')],
      ['bob', 'management', undefined, await approvers.fingerprint('bob')],
    ]);
    expect(report.phases.map((p) => p.phase)).toEqual([
      'selecting', 'downloading', 'awaiting-approval', 'decrypting', 'applying-globals', 'restoring-database', 'restoring-assets', 'checking', 'cleaning-up',
    ]);
  });

  it('refuses a target database it did not create, before anything is fetched', async () => {
    // The previous test's restore left the target: a second restore must not touch it.
    const handle = await startRestore(`restore-existing-${process.pid}`, { backupId: backup.backupId });
    const failure = await handle.result().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const message = ((failure as WorkflowFailedError).cause as Error).message;
    expect(message).toContain(`Restore failed at selecting: RESTORE_TARGET_DB: database "${target}" already exists and was not created by this restore`);
    expect(await databaseOwnership(harnessDb(s), target, ownershipMarker(approvedRun!))).toBe('ours');
  });

  it('DRILL_PREAPPROVED lets a drill restore into its scratch database without waiting (and never a Restore: see the first test)', async () => {
    const result = await product.client.workflow.execute(RestoreDrill, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId: `restore-preapproved-drill-${process.pid}`,
      args: [{ backupId: backup.backupId }],
    });
    expect(result).toMatchObject({ outcome: 'passed', backupId: backup.backupId });
    const key = result.reportKeys.find((k) => k.startsWith('local:') && k.endsWith('.json'))!;
    const report = JSON.parse((await product.runtime.repositories.get('local')!.getBytes(key.slice('local:'.length))).toString('utf8')) as RestoreReport;
    expect(report.approvals).toMatchObject({ preApproved: true, accepted: [] });
    expect(await databasesLike(s, result.database!)).toEqual([]);
  });
});

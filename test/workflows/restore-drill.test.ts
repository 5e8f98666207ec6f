import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RestoreReport } from '../../src/restore/report.js';
import { artifactKey, backupIdFor, manifestKey } from '../../src/layout.js';
import { parseManifest, serializeManifest } from '../../src/manifest.js';
import { dropDatabase } from '../../src/pg/restore.js';
import { databaseOwnership, ownershipMarker, scratchDatabaseName } from '../../src/restore/database.js';
import { createRepositories } from '../../src/repositories.js';
import type { Repository } from '../../src/storage/repository.js';
import { listBackupsInUse } from '../../src/temporal/backups-in-use.js';
import { NightlyBackup, RestoreDrill } from '../../workflows/index.js';
import { approveRestoreSignal, cancelRestoreSignal, type NightlyBackupResult, type RestoreDrillInput } from '../../workflows/messages.js';
import { databasesLike, harnessDb, inPhase, startInvoiceWriter, startNoticeReceiver, waitForStatus } from '../helpers/drill.js';
import { createSampleDatabase, productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';

const CHECKS_FILE = fileURLToPath(new URL('../fixtures/drill-checks.sql', import.meta.url));

// RestoreDrill end to end on the real services: one OpenPGP-encrypted backup in local, S3 and
// SFTP, taken while invoices were being written, is drilled from each side.
describe('RestoreDrill', () => {
  const s = services();
  const database = `erp4_drill_${process.pid}`;
  let receiver: Awaited<ReturnType<typeof startNoticeReceiver>>;
  let pgRestoreArgs: string;
  let product: RunningProduct;
  let backup: NightlyBackupResult;
  let invoicesWrittenDuringBackup: number;

  // As the product does: read with the reader role, write with the writer role (S15).
  let readers: Map<string, Repository>;
  const reader = (name: string): Repository => readers.get(name)!;
  const writer = (name: string): Repository => product.runtime.repositories.get(name)!;
  /** The scratch database a drill of the shared backup would create. */
  const scratchOf = (workflowId: string) => scratchDatabaseName(backup.backupId, workflowId);
  const startDrill = (workflowId: string, input: RestoreDrillInput) =>
    product.client.workflow.start(RestoreDrill, { taskQueue: product.config.temporal.taskQueue, workflowId, args: [input] });
  const readReport = async (keys: string[], repository: string): Promise<RestoreReport> => {
    const key = keys.find((k) => k.startsWith(`${repository}:`) && k.endsWith('.json'));
    expect(key, `a JSON report in ${repository} among ${keys.join(', ')}`).toBeDefined();
    return JSON.parse((await reader(repository).getBytes(key!.slice(repository.length + 1))).toString('utf8')) as RestoreReport;
  };
  /** The report of a run that ended without a result (failed): found by its workflow id. */
  const findReport = async (repository: string, workflowId: string): Promise<RestoreReport> => {
    const objects = await reader(repository).list(`test/meta/drills/${backup.backupId}/`);
    const key = objects.map((o) => o.key).find((k) => k.endsWith(`-${workflowId}.json`));
    expect(key, `report of ${workflowId}`).toBeDefined();
    return JSON.parse((await reader(repository).getBytes(key!)).toString('utf8')) as RestoreReport;
  };

  beforeAll(async () => {
    receiver = await startNoticeReceiver();
    await createSampleDatabase(s, database);
    // PG_BIN_DIR: the real tools, but a pg_restore that records its arguments before it runs.
    const pgBinDir = await mkdtemp(join(tmpdir(), 'drill-pg-bin-'));
    for (const tool of await readdir(s.postgres.binDir)) if (tool !== 'pg_restore') await symlink(join(s.postgres.binDir, tool), join(pgBinDir, tool));
    pgRestoreArgs = join(pgBinDir, 'pg_restore.args');
    await writeFile(join(pgBinDir, 'pg_restore'), `#!/bin/sh\necho "$*" >> '${pgRestoreArgs}'\nexec '${join(s.postgres.binDir, 'pg_restore')}' "$@"\n`, { mode: 0o755 });
    const env = await productEnv(s, 'drill', {
      s3: true,
      sftp: true,
      gpg: true,
      env: {
        DB_NAME: database,
        PG_BIN_DIR: pgBinDir,
        RESTORE_APPROVERS: 'alice:admin,bob:management',
        // This file is about the drill itself: unsigned approvals keep it short (signed ones: test/chaos/approvals.test.ts).
        DRILL_ACCEPT_UNSIGNED_APPROVALS: 'true',
        NOTIFY_WEBHOOK_URL: `${receiver.url}/notify`,
        DRILL_LATEST_DATA_QUERY: 'SELECT max(issued_at) FROM invoices',
        DRILL_CHECKS_FILE: CHECKS_FILE,
        DRILL_SMOKE_URLS: `${receiver.url}/health`,
        // Not the default (the cores): pg_restore's arguments show it reached pg_restore.
        RESTORE_JOBS: '1',
        DRILL_BATCH_RESUME_QUERY: `SELECT name AS job, status <> 'running' AND cursor <= (SELECT coalesce(max(id), 0) FROM invoices) AS resumable FROM batch_jobs`,
      },
    });
    product = await startProduct(s, env);
    readers = createRepositories(product.config, 'reader');

    const writer = startInvoiceWriter(harnessDb(s, database));
    try {
      backup = await product.client.workflow.execute(NightlyBackup, {
        taskQueue: product.config.temporal.taskQueue,
        workflowId: `drill-backup-${process.pid}-${Date.now()}`,
        args: [{ kind: 'daily' }],
      });
    } finally {
      invoicesWrittenDuringBackup = await writer.stop();
    }
  });

  afterAll(async () => {
    await Promise.all([...(readers?.values() ?? [])].map((r) => r.close()));
    await product?.close();
    await receiver?.close();
    await dropDatabase(harnessDb(s), database);
    if (product) await rm(product.config.local.backupDir, { recursive: true, force: true });
  });

  it('passes for a backup taken while invoices were being written: fingerprint equal, files complete, report in S3 and locally', async () => {
    expect(invoicesWrittenDuringBackup).toBeGreaterThan(0);
    const workflowId = `drill-s3-${process.pid}`;
    const handle = await startDrill(workflowId, { backupId: backup.backupId, repository: 's3' });
    const waiting = await waitForStatus(handle, inPhase('awaiting-approval'));
    expect(waiting.backup?.id).toBe(backup.backupId);
    expect(waiting.database).toBe(scratchOf(workflowId));
    expect(waiting.database).toMatch(/^drill_\d{8}t\d{6}z_daily_[0-9a-f]{6}$/);
    // One streaming pass per artifact: download, sha256, decrypt (no separate decrypting phase).
    expect(waiting.phases.map((p) => p.phase)).toEqual(['selecting', 'downloading']);
    // DRILL_DECRYPT_BEFORE_APPROVAL defaults to true: a drill decrypts while it waits, and says so.
    expect(waiting.decryption).toMatchObject({ beforeApproval: true });
    expect(await databasesLike(s, scratchOf(workflowId))).toEqual([]);
    // Prune sees the backup in use (BackupId search attribute) and keeps it while the drill runs.
    await expect.poll(async () => (await listBackupsInUse(product.client, 'test')).restoreDrills[backup.backupId] ?? [], { timeout: 15_000 }).toContain(workflowId);

    await handle.signal(approveRestoreSignal, { approver: 'alice', comment: 'monthly drill' });
    const result = await handle.result();

    expect(result.outcome).toBe('passed');
    const failed = result.checks.filter((c) => !c.passed);
    expect(failed).toEqual([]);
    const kinds = new Set(result.checks.map((c) => c.kind));
    expect([...kinds].sort()).toEqual(['assets', 'batch-resume', 'fingerprint', 'http', 'latest-data', 'sql']);
    const invoices = result.checks.find((c) => c.kind === 'fingerprint' && c.name === 'public.invoices');
    expect(Number(/rows (\d+)/.exec(invoices!.actual)?.[1])).toBeGreaterThan(1000);
    expect(result.checks.filter((c) => c.kind === 'sql').map((c) => c.name)).toEqual([
      'invoice_totals_match_lines',
      'invoices_without_lines',
      'invoice_number_sequence_restored',
    ]);

    for (const repository of ['s3', 'local']) {
      const report = await readReport(result.reportKeys, repository);
      expect(report).toMatchObject({ mode: 'drill', outcome: 'passed', workflowId, repository: 's3', backup: { id: backup.backupId } });
      expect(report.generation).toMatchObject({ backupId: backup.backupId, generatedAt: backup.generatedAt });
      expect(report.approvals.accepted).toMatchObject([{ approver: 'alice', role: 'admin', comment: 'monthly drill' }]);
      expect(report.phases.map((p) => p.phase)).toEqual([
        'selecting', 'downloading', 'awaiting-approval', 'restoring-database', 'restoring-assets', 'checking', 'cleaning-up',
      ]);
      expect(report.rto.measuredMs).toBeGreaterThan(0);
      // The phases partition the wall time (each starts where the previous ended), so the
      // measured RTO is their sum although the files were unpacked alongside pg_restore.
      for (let i = 1; i < report.phases.length; i++) {
        const previous = report.phases[i - 1]!;
        expect(Date.parse(report.phases[i]!.startedAt)).toBe(Date.parse(previous.startedAt) + previous.durationMs);
      }
      const excluded = ['awaiting-approval', 'cleaning-up', 'reporting'];
      expect(report.phases.filter((p) => !excluded.includes(p.phase)).reduce((sum, p) => sum + p.durationMs, 0)).toBe(report.rto.measuredMs);
      expect(report.rto.measuredMs).toBe(result.rtoMs);
      expect(report.decryption).toMatchObject({ beforeApproval: true });
      expect(report.checks).toEqual(result.checks);
      expect(report.target).toMatchObject({ kept: false });
    }
    const markdownKey = result.reportKeys.find((k) => k.startsWith('s3:') && k.endsWith('.md'))!;
    expect((await reader('s3').getBytes(markdownKey.slice(3))).toString('utf8')).toContain(`: PASSED`);
    expect(await databasesLike(s, scratchOf(workflowId))).toEqual([]);
    expect(existsSync(`${product.runtime.stagingRoot}/restore-${(await handle.describe()).runId}`)).toBe(false);

    // The PDF files were unpacked while the database was restored: restoreAssets was scheduled
    // before restoreDatabase completed.
    const scheduled = new Map<string, { name: string; eventId: number }>();
    let assetsScheduledAt: number | undefined;
    let databaseCompletedAt: number | undefined;
    for (const event of (await handle.fetchHistory()).events ?? []) {
      const eventId = Number(event.eventId);
      const schedule = event.activityTaskScheduledEventAttributes;
      if (schedule) {
        scheduled.set(String(eventId), { name: schedule.activityType?.name ?? '?', eventId });
        if (schedule.activityType?.name === 'restoreAssets') assetsScheduledAt = eventId;
      }
      const completed = event.activityTaskCompletedEventAttributes;
      if (completed && scheduled.get(String(completed.scheduledEventId))?.name === 'restoreDatabase') databaseCompletedAt = eventId;
    }
    expect(assetsScheduledAt).toBeDefined();
    expect(databaseCompletedAt).toBeDefined();
    expect(assetsScheduledAt!).toBeLessThan(databaseCompletedAt!);

    // RESTORE_JOBS reached pg_restore: its arguments, and the worker's log line.
    const restores = (await readFile(pgRestoreArgs, 'utf8')).split('\n').filter((line) => line.includes(scratchOf(workflowId)));
    expect(restores.length).toBeGreaterThan(0);
    for (const args of restores) expect(args.split(' ')).toContain('--jobs=1');
    const log = await readFile(join(inject('services').workDir, 'logs', `workers-restore-drill-${process.pid}.log`), 'utf8');
    expect(log).toMatch(new RegExp(`pg_restore starts \\{[^\\n]*"database":"${scratchOf(workflowId)}"[^\\n]*"jobs":1[,}]`));
  });

  it('from the SFTP repository with "latest" restores the newest COMPLETE backup there', async () => {
    // An older complete backup, and a newer one whose manifest never arrived: latest is neither.
    const sftp = writer('sftp');
    const layout = product.runtime.layout;
    const manifest = parseManifest(await reader('sftp').getBytes(manifestKey(layout, backup.backupId)), 'sftp');
    const generated = Date.parse(backup.generatedAt);
    const olderId = backupIdFor('daily', new Date(generated - 86_400_000));
    const newerId = backupIdFor('daily', new Date(generated + 3_600_000));
    await sftp.putBytes(manifestKey(layout, olderId), serializeManifest({ ...manifest, id: olderId }));
    await sftp.putBytes(artifactKey(layout, 'db', newerId, true), Buffer.from('an upload cut short'));

    const workflowId = `drill-sftp-${process.pid}`;
    const handle = await startDrill(workflowId, { repository: 'sftp', keepScratch: true });
    const waiting = await waitForStatus(handle, inPhase('awaiting-approval'));
    expect(waiting).toMatchObject({ repository: 'sftp', backup: { id: backup.backupId } });
    await handle.signal(approveRestoreSignal, { approver: 'bob' });
    const result = await handle.result();

    expect(result).toMatchObject({ outcome: 'passed', backupId: backup.backupId });
    // keepScratch: the scratch database stays, still marked as this drill's.
    expect(await databaseOwnership(harnessDb(s), result.database!, ownershipMarker({ workflowId, runId: handle.firstExecutionRunId }))).toBe('ours');
    await dropDatabase(harnessDb(s), result.database!);
    expect((await readReport(result.reportKeys, 'sftp')).target).toMatchObject({ database: result.database, kept: true });
  });

  it('fails at verification on a flipped byte in the S3 db object, naming it, with no database created', async () => {
    const s3 = writer('s3');
    const key = artifactKey(product.runtime.layout, 'db', backup.backupId, true);
    const original = await reader('s3').getBytes(key);
    const flipped = Buffer.from(original);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
    await s3.putBytes(key, flipped);
    try {
      const workflowId = `drill-flipped-${process.pid}`;
      // Files kept: the staging directory shows what the streaming pass left behind.
      const handle = await startDrill(workflowId, { backupId: backup.backupId, repository: 's3', keepScratch: true });
      const failure = await handle.result().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      const message = ((failure as WorkflowFailedError).cause as Error).message;
      expect(message).toContain(`RestoreDrill failed at downloading: artifact db (s3:${key}) does not match its manifest`);
      expect(message).toContain(`expected sha256 ${parseManifest(await reader('s3').getBytes(manifestKey(product.runtime.layout, backup.backupId)), 's3').artifacts.db!.sha256}`);
      expect(message).toMatch(/got sha256 [0-9a-f]{64}/);
      expect(await databasesLike(s, scratchOf(workflowId))).toEqual([]);

      const report = await findReport('local', workflowId);
      expect(report).toMatchObject({ outcome: 'failed', failure: { step: 'downloading' }, target: { kept: false } });
      expect(report.failure?.cause).toContain(key);
      expect(report.target.database).toBeUndefined();
      expect(receiver.notices.some((n) => n.event === 'drill-failed' && n.workflow_id === workflowId && n.failed_step === 'downloading')).toBe(true);
      // Not retried (non-retryable), and no plaintext of the altered artifact, final or temporary.
      const events = (await handle.fetchHistory()).events ?? [];
      expect(events.filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1)).toEqual([]);
      const activityFailure = events.find((e) => e.activityTaskFailedEventAttributes)?.activityTaskFailedEventAttributes?.failure;
      expect(activityFailure?.applicationFailureInfo).toMatchObject({ type: 'ArtifactChecksumMismatch', nonRetryable: true });
      const staging = join(product.runtime.stagingRoot, `restore-${(await handle.describe()).runId}`);
      const left = await readdir(staging);
      expect(left.filter((name) => name.includes('db.') || name.includes('.tmp-'))).toEqual([]);
      await rm(staging, { recursive: true, force: true });
    } finally {
      await s3.putBytes(key, original);
    }
  });

  it('ends not-approved after the timeout with nothing restored; an unknown approver is recorded and ignored; a reminder went out at half time', async () => {
    const workflowId = `drill-unapproved-${process.pid}`;
    const handle = await startDrill(workflowId, { backupId: backup.backupId, repository: 'local', approvalTimeoutSeconds: 4 });
    await waitForStatus(handle, inPhase('awaiting-approval'));
    await handle.signal(approveRestoreSignal, { approver: 'mallory', comment: 'let me in' });
    const status = await waitForStatus(handle, (st) => st.approvals.ignored.length === 1);
    expect(status.approvals).toMatchObject({ satisfied: false, accepted: [], ignored: [{ approver: 'mallory', ignoredBecause: '"mallory" is not a configured approver (RESTORE_APPROVERS)' }] });

    const result = await handle.result();
    expect(result).toMatchObject({ outcome: 'not-approved', checks: [] });
    expect(await databasesLike(s, scratchOf(workflowId))).toEqual([]);
    const report = await readReport(result.reportKeys, 'local');
    expect(report).toMatchObject({ outcome: 'not-approved', target: { kept: false }, approvals: { ignored: [{ approver: 'mallory' }] } });
    expect(report.target.database).toBeUndefined();
    expect(report.phases.map((p) => p.phase)).not.toContain('restoring-database');
    const events = receiver.notices.filter((n) => n.workflow_id === workflowId).map((n) => n.event);
    expect(events).toEqual(['approval-reminder', 'alert']);
  });

  it('stops cleanly on cancel-restore while waiting for approval', async () => {
    const workflowId = `drill-cancelled-${process.pid}`;
    const handle = await startDrill(workflowId, { backupId: backup.backupId, repository: 'local' });
    await waitForStatus(handle, inPhase('awaiting-approval'));
    await handle.signal(cancelRestoreSignal, { by: 'alice', reason: 'wrong week' });
    const result = await handle.result();
    expect(result.outcome).toBe('cancelled');
    const report = await readReport(result.reportKeys, 'local');
    expect(report).toMatchObject({ outcome: 'cancelled', cancellation: { by: 'alice', reason: 'wrong week' } });
    expect(await databasesLike(s, scratchOf(workflowId))).toEqual([]);
  });
});

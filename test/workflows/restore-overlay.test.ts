import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCatalog } from '../../src/catalog.js';
import type { Manifest } from '../../src/manifest.js';
import { pgClientConfig } from '../../src/pg/connection.js';
import { createEmptyDatabase, dropDatabase } from '../../src/pg/restore.js';
import type { RestoreReport } from '../../src/restore/report.js';
import { NightlyBackup, Restore, RestoreDrill } from '../../workflows/index.js';
import { approveRestoreSignal, type NightlyBackupResult, type RestoreDrillInput } from '../../workflows/messages.js';
import { createApprovers, type TestApprovers } from '../helpers/approvers.js';
import { runCli } from '../helpers/cli.js';
import { harnessDb, inPhase, waitForStatus } from '../helpers/drill.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';

const SCHEMA = new URL('../fixtures/overlay-erp.sql', import.meta.url);
const WRITES = new URL('../fixtures/overlay-erp-writes.sql', import.meta.url);
const IMPORTANT = ['invoices', 'payments', '"会計"."取引先"'];
const OTHERS = ['customers', 'shipments', 'audit_log'];

// The 6-hour RPO path end to end (S6, S9): an OpenPGP-encrypted daily and critical backup of an
// ERP schema with enum and domain types, a partitioned important table, non-ASCII names and
// foreign keys both ways across CRITICAL_TABLES, with writes between the two backups.
describe('critical backups and the daily + critical overlay', () => {
  const s = services();
  const database = `overlay_erp_${process.pid}`;
  const target = `overlay_restored_${process.pid}`;
  let product: RunningProduct;
  let approvers: TestApprovers;
  let env: Record<string, string>;
  let assetParent: string | undefined;
  let daily: NightlyBackupResult;
  let critical: NightlyBackupResult;
  let atDaily: Record<string, string[]>;
  let atCritical: Record<string, string[]>;

  const query = async <T extends pg.QueryResultRow>(name: string, sql: string): Promise<T[]> => {
    const client = new pg.Client(pgClientConfig(harnessDb(s, name)));
    await client.connect();
    try {
      return (await client.query<T>(sql)).rows;
    } finally {
      await client.end();
    }
  };
  const contents = async (name: string, tables: string[]) =>
    Object.fromEntries(await Promise.all(tables.map(async (t) => [t, (await query<{ r: string }>(name, `SELECT x::text AS r FROM ${t} AS x ORDER BY 1`)).map((row) => row.r)] as const)));
  const backup = (kind: 'daily' | 'critical') =>
    product.client.workflow.execute(NightlyBackup, { taskQueue: product.config.temporal.taskQueue, workflowId: `overlay-${kind}-${process.pid}-${Date.now()}`, args: [{ kind }] });
  const drill = (workflowId: string, input: RestoreDrillInput) =>
    product.client.workflow.execute(RestoreDrill, { taskQueue: product.config.temporal.taskQueue, workflowId, args: [input] });
  const report = async (keys: string[]): Promise<RestoreReport> =>
    JSON.parse((await product.runtime.repositories.get('local')!.getBytes(keys.find((k) => k.endsWith('.json'))!.slice('local:'.length))).toString('utf8')) as RestoreReport;

  beforeAll(async () => {
    await createEmptyDatabase(harnessDb(s), database);
    await query(database, await readFile(SCHEMA, 'utf8'));
    approvers = await createApprovers(['alice', 'bob']);
    env = await productEnv(s, 'overlay', {
      gpg: true,
      env: {
        RESTORE_ASSET_DIR: join((assetParent = await mkdtemp(join(tmpdir(), 'erp4-overlay-assets-'))), 'restored'),
        DB_NAME: database,
        CRITICAL_TABLES: 'invoices,payments,"会計"."取引先"',
        RESTORE_APPROVERS: 'alice:admin,bob:management',
        RESTORE_ALLOWED_SIGNERS_FILE: approvers.allowedSignersFile,
        RESTORE_TARGET_DB: target,
        DRILL_PREAPPROVED: 'true',
      },
    });
    product = await startProduct(s, env);
    daily = await backup('daily');
    atDaily = await contents(database, [...IMPORTANT, ...OTHERS]);
    await query(database, await readFile(WRITES, 'utf8'));
    critical = await backup('critical');
    atCritical = await contents(database, IMPORTANT);
  });
  afterAll(async () => {
    await product?.close();
    await approvers?.close();
    for (const name of [target, database]) await dropDatabase(harnessDb(s), name);
    if (product) await rm(product.config.local.backupDir, { recursive: true, force: true });
    if (assetParent) await rm(assetParent, { recursive: true, force: true });
  });

  it('records the whole schema with the important rows, partitions included, in the manifest', async () => {
    const manifest = (await readCatalog(product.runtime.repositories.get('local')!, 'test')).backups.find((b) => b.id === critical.backupId) as Manifest;
    expect(manifest.database.tables).toEqual(['public.invoices', 'public.payments', '会計.取引先']);
    expect(manifest.database.dataTables).toEqual(['public.invoices', 'public.payments_2026_11', 'public.payments_2026_12', '会計.取引先']);
    expect(manifest.fingerprint.map((f) => f.table)).toEqual(['public.invoices', 'public.payments', '会計.取引先']);
  });

  it('drills a critical backup on its own: it restores into an empty database and its scoped fingerprint passes', async () => {
    const result = await drill(`overlay-drill-critical-${process.pid}`, { backupId: critical.backupId });
    expect(result.outcome).toBe('passed');
    expect(result.checks.filter((c) => c.kind === 'fingerprint').map((c) => [c.name, c.passed])).toEqual([
      ['public.invoices', true],
      ['public.payments', true],
      ['会計.取引先', true],
    ]);
    // Invoices reference customers, which have no rows in a critical backup: that key alone is NOT VALID, and reported.
    expect(result.checks.filter((c) => c.kind === 'foreign-key')).toEqual([
      {
        kind: 'foreign-key',
        name: 'public.invoices.invoices_customer_id_fkey',
        expected: 'NOT VALID only where it references a table without rows in this backup',
        actual: 'NOT VALID, references public.customers (no rows in this backup)',
        passed: true,
      },
    ]);
  });

  it('drills daily + critical overlay: important tables at the critical backup, the rest at the daily, every orphan reported', async () => {
    const started = await runCli(['drill', '--backup', 'latest', '--overlay', 'latest-critical', '--keep-scratch', '--no-follow'], env);
    const workflowId = /workflow id (\S+)/.exec(started.stdout)?.[1];
    expect(workflowId, started.stdout + started.stderr).toBeDefined();
    const result = await product.client.workflow.getHandle<typeof RestoreDrill>(workflowId!).result();
    try {
      expect(result.outcome).toBe('passed');
      expect(result.backupId).toBe(daily.backupId);
      expect(await contents(result.database!, IMPORTANT)).toEqual(atCritical);
      expect(await contents(result.database!, OTHERS)).toEqual(Object.fromEntries(OTHERS.map((t) => [t, atDaily[t]])));
      // Fingerprints: important tables against the critical backup's, the others against the daily's.
      const fingerprints = Object.fromEntries(result.checks.filter((c) => c.kind === 'fingerprint').map((c) => [c.name, c.passed]));
      expect(fingerprints).toMatchObject({ 'public.invoices': true, 'public.payments': true, '会計.取引先': true, 'public.customers': true, 'public.shipments': true });

      const stored = await report(result.reportKeys);
      expect(stored.phases.map((p) => p.phase)).toContain('overlaying');
      expect(stored.overlay).toMatchObject({ backupId: critical.backupId, kind: 'critical' });
      expect(stored.overlay!.result).toEqual({
        dataTables: ['public.invoices', 'public.payments_2026_11', 'public.payments_2026_12', '会計.取引先'],
        notValidConstraints: ['public.invoices.invoices_customer_id_fkey', 'public.shipments.shipments_invoice_id_fkey'],
        orphanCount: 2,
        orphans: [
          { constraint: 'public.invoices.invoices_customer_id_fkey', row: '(id)=(7)', references: '(customer_id)=(100)' },
          { constraint: 'public.shipments.shipments_invoice_id_fkey', row: '(id)=(3)', references: '(invoice_id)=(3)' },
        ],
      });
      const markdown = (await product.runtime.repositories.get('local')!.getBytes(result.reportKeys.find((k) => k.endsWith('.md'))!.slice('local:'.length))).toString('utf8');
      expect(markdown).toContain('| public.invoices.invoices_customer_id_fkey | (id)=(7) | (customer_id)=(100) |');
    } finally {
      await dropDatabase(harnessDb(s), result.database!);
    }
  });

  it('restores daily + overlay into production (the runbook\'s command) only after two approvals of two roles', async () => {
    const started = await runCli(['restore', '--backup', 'latest', '--overlay', 'latest-critical', '--no-follow'], env);
    expect(started.stderr).toBe('');
    const workflowId = /workflow id (\S+)/.exec(started.stdout)?.[1];
    expect(workflowId, started.stdout).toBeDefined();
    const handle = product.client.workflow.getHandle<typeof Restore>(workflowId!);
    const waiting = await waitForStatus(handle, inPhase('awaiting-approval'));
    expect(waiting.backup?.id).toBe(daily.backupId);
    expect(waiting.overlay).toEqual({ backupId: critical.backupId, kind: 'critical', generatedAt: critical.generatedAt });
    // The statement they sign names the critical backup laid over the daily.
    expect(waiting.approvals.statement).toContain(`overlay-backup-id: "${critical.backupId}"`);
    await handle.signal(approveRestoreSignal, await approvers.signedFor(handle, 'alice'));
    await handle.signal(approveRestoreSignal, await approvers.signedFor(handle, 'bob'));
    const result = await handle.result();
    expect(result).toMatchObject({ outcome: 'passed', database: target });
    expect(await contents(target, IMPORTANT)).toEqual(atCritical);
    // The PDF files come from the daily, whose generation the report records (S24).
    expect(result.checks.find((c) => c.kind === 'assets')).toMatchObject({ passed: true });
  });

  it('refuses, at plan time and naming both, an overlay whose critical backup is older than the daily', async () => {
    const newerDaily = await backup('daily');
    const run = drill(`overlay-drill-older-${process.pid}`, { backupId: 'latest', overlay: 'latest-critical' });
    await expect(run).rejects.toBeInstanceOf(WorkflowFailedError);
    const error = (await run.catch((e: unknown) => e)) as WorkflowFailedError;
    expect(error.cause?.message).toContain(
      `selecting: overlay: the critical backup ${critical.backupId} (generated at ${critical.generatedAt}) is not newer than ${newerDaily.backupId}`,
    );
  });

  it('refuses a critical backup when a table of CRITICAL_TABLES does not exist, before anything is dumped, naming it', async () => {
    await query(database, 'ALTER TABLE "会計"."取引先" RENAME TO "取引先_old"');
    const workflowId = `overlay-missing-table-${process.pid}`;
    const error = (await product.client.workflow
      .execute(NightlyBackup, { taskQueue: product.config.temporal.taskQueue, workflowId, args: [{ kind: 'critical' }] })
      .catch((e: unknown) => e)) as WorkflowFailedError;
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const messages: string[] = [];
    for (let e: Error | undefined = error; e; e = e.cause as Error | undefined) messages.push(e.message);
    expect(messages.join('\n')).toContain('CRITICAL_TABLES: table(s) not found in the database: 会計.取引先');
    const history = await product.client.workflow.getHandle(workflowId).fetchHistory();
    const scheduled = (history.events ?? []).flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name] : []));
    expect(scheduled).toContain('planBackup');
    expect(scheduled).not.toContain('dumpDatabase');
    expect(scheduled).not.toContain('dumpGlobals');
  });
});

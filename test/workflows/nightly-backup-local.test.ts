import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCatalog } from '../../src/catalog.js';
import { pgClientConfig } from '../../src/pg/connection.js';
import { computeFingerprint, listUserTables } from '../../src/pg/fingerprint.js';
import { createEmptyDatabase, dropDatabase, restoreDump } from '../../src/pg/restore.js';
import { fingerprintChecks } from '../../src/restore/checks.js';
import { NightlyBackup } from '../../workflows/index.js';
import { backupEnvSearchAttribute, backupIdSearchAttribute, progressQuery } from '../../workflows/messages.js';
import { productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';

// The first thread through every layer (issue 2): a worker on the real dev server runs
// NightlyBackup, whose activities pg_dump the sample database into BACKUP_DIR; the dump
// restores with pg_restore into a new database with equal row counts and money totals.
describe('NightlyBackup to the local repository only', () => {
  const s = services();
  let product: RunningProduct;

  beforeAll(async () => {
    product = await startProduct(s, await productEnv(s, 'local'));
  });
  afterAll(async () => product?.close());

  it('writes a dump that pg_restore restores with equal row counts and money totals', async () => {
    const handle = await product.client.workflow.start(NightlyBackup, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId: `nightly-local-${Date.now()}`,
      args: [{ kind: 'daily' }],
    });
    const result = await handle.result();

    const progress = await handle.query(progressQuery);
    expect(progress).toMatchObject({ backupId: result.backupId, phase: 'completed', repositoriesDone: ['local'] });
    expect(Object.keys(progress.artifacts).sort()).toEqual(['assets', 'db', 'globals']);
    expect(progress.artifacts.db!.bytes).toBeGreaterThan(0);
    const described = await handle.describe();
    expect(described.typedSearchAttributes.get(backupIdSearchAttribute)).toBe(result.backupId);
    expect(described.typedSearchAttributes.get(backupEnvSearchAttribute)).toBe('test');

    expect(result.repositories).toEqual(['local']);
    const { backups } = await readCatalog(product.runtime.repositories.get('local')!, 'test');
    expect(backups.map((b) => b.id)).toEqual([result.backupId]);
    const manifest = backups[0]!;
    expect(manifest.artifacts.db?.format).toBe('pg_dump-custom');
    expect(manifest.artifacts.db?.encryption).toBe('none');

    const db = product.runtime.db;
    const scratch = `restore_local_${process.pid}`;
    await createEmptyDatabase(db, scratch);
    try {
      await restoreDump(db, scratch, join(product.config.local.backupDir, manifest.artifacts.db!.key), { pgBinDir: s.postgres.binDir });
      const restored = new pg.Client(pgClientConfig(db, scratch));
      await restored.connect();
      try {
        const fingerprint = await computeFingerprint(restored, await listUserTables(restored));
        expect(fingerprint).toEqual(manifest.fingerprint);
        expect(fingerprint.find((t) => t.table === 'public.invoices')?.rowCount).toBe('1000');
        expect(fingerprint.find((t) => t.table === 'public.invoice_lines')?.rowCount).toBe('3000');
      } finally {
        await restored.end();
      }
    } finally {
      await dropDatabase(db, scratch);
    }
  });

  it('fingerprints only the configured tables and columns with FINGERPRINT_QUERIES_FILE, and a restore check recomputes exactly those', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fingerprint-spec-'));
    const specFile = join(dir, 'fingerprint.json');
    await writeFile(specFile, JSON.stringify([{ table: 'public.invoices', sums: ['amount'] }, { table: 'customers' }]));
    const configured = await startProduct(s, await productEnv(s, 'fpspec', { env: { FINGERPRINT_QUERIES_FILE: specFile } }));
    try {
      const result = await configured.client.workflow.execute(NightlyBackup, {
        taskQueue: configured.config.temporal.taskQueue,
        workflowId: `nightly-fpspec-${Date.now()}`,
        args: [{ kind: 'daily' }],
      });
      const [manifest] = (await readCatalog(configured.runtime.repositories.get('local')!, 'test')).backups;
      expect(manifest!.id).toBe(result.backupId);
      expect(manifest!.fingerprintScope).toBe('configured');
      expect(manifest!.fingerprint).toEqual([
        { table: 'public.invoices', rowCount: '1000', sums: { amount: expect.stringMatching(/^\d+\.\d{2}$/) } },
        { table: 'public.customers', rowCount: '200', sums: {} },
      ]);

      const db = configured.runtime.db;
      const scratch = `restore_fpspec_${process.pid}`;
      await createEmptyDatabase(db, scratch);
      try {
        await restoreDump(db, scratch, join(configured.config.local.backupDir, manifest!.artifacts.db!.key), { pgBinDir: s.postgres.binDir });
        const restored = new pg.Client(pgClientConfig(db, scratch));
        await restored.connect();
        try {
          const checks = await fingerprintChecks(restored, manifest!);
          expect(checks.map((c) => [c.name, c.passed])).toEqual([['public.invoices', true], ['public.customers', true]]);
          await restored.query('UPDATE invoices SET amount = amount + 0.01 WHERE id = 1');
          const failed = (await fingerprintChecks(restored, manifest!)).filter((c) => !c.passed).map((c) => c.name);
          expect(failed.sort()).toEqual(['public.invoices']);
        } finally {
          await restored.end();
        }
      } finally {
        await dropDatabase(db, scratch);
      }
    } finally {
      await configured.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

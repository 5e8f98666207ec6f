import { readFile, rm } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../../src/child-process.js';
import { pgChildEnv, pgClientConfig, type DbConnection } from '../../src/pg/connection.js';
import { criticalDumpArgs, resolveCriticalScope, type CriticalScope } from '../../src/pg/critical-scope.js';
import { createEmptyDatabase, dropDatabase, restoreDump } from '../../src/pg/restore.js';
import { restoreScopedDump } from '../../src/pg/restore-scoped.js';
import { MAX_LISTED_ORPHANS, overlayCriticalDump, overlayRestoreList, type OverlayResult } from '../../src/restore/overlay.js';
import { harnessDb } from '../helpers/drill.js';
import { services } from '../helpers/services.js';

const SCHEMA = new URL('../fixtures/overlay-erp.sql', import.meta.url);
const WRITES = new URL('../fixtures/overlay-erp-writes.sql', import.meta.url);
const CRITICAL = [
  { schema: 'public', table: 'invoices' },
  { schema: 'public', table: 'payments' },
  { schema: '会計', table: '取引先' },
];
/** Every table's rows, in a stable order, as text: what "equal" means below. */
const TABLES = ['customers', 'invoices', 'shipments', 'payments', '"会計"."取引先"', 'audit_log'];

// The SQL half of the 6-hour RPO path on the real server: a critical-format dump restores on its
// own, and laid over a restored daily it brings the important tables to its own snapshot.
describe('critical backups and the overlay', () => {
  const s = services();
  const pid = process.pid;
  const source = `overlay_src_${pid}`;
  const alone = `overlay_alone_${pid}`;
  const target = `overlay_target_${pid}`;
  const work = mkdtempSync(join(tmpdir(), 'erp4-overlay-'));
  const db = (database: string): DbConnection => harnessDb(s, database);
  let scope: CriticalScope;
  let atDaily: Record<string, string[]>;
  let atCritical: Record<string, string[]>;
  let sequencesAtCritical: Record<string, string>;
  let result: OverlayResult;

  const query = async <T extends pg.QueryResultRow>(database: string, sql: string): Promise<T[]> => {
    const client = new pg.Client(pgClientConfig(db(database)));
    await client.connect();
    try {
      return (await client.query<T>(sql)).rows;
    } finally {
      await client.end();
    }
  };
  const contents = async (database: string) =>
    Object.fromEntries(
      await Promise.all(TABLES.map(async (t) => [t, (await query<{ r: string }>(database, `SELECT x::text AS r FROM ${t} AS x ORDER BY 1`)).map((row) => row.r)] as const)),
    );
  const sequences = async (database: string) =>
    Object.fromEntries(
      (await query<{ name: string; value: string }>(database, `SELECT schemaname || '.' || sequencename AS name, last_value::text AS value FROM pg_sequences ORDER BY 1`)).map((r) => [
        r.name,
        r.value,
      ]),
    );
  const pgDump = (file: string, args: string[]) =>
    runTool(join(s.postgres.binDir, 'pg_dump'), ['--format=custom', `--file=${file}`, ...args], { env: pgChildEnv(db(source)) });

  beforeAll(async () => {
    await createEmptyDatabase(db(source), source);
    await query(source, await readFile(SCHEMA, 'utf8'));
    await pgDump(join(work, 'daily.dump'), []);
    atDaily = await contents(source);
    await query(source, await readFile(WRITES, 'utf8'));
    // The product's scope, computed as the dump activity does (here outside a snapshot: nothing writes).
    const client = new pg.Client(pgClientConfig(db(source)));
    await client.connect();
    try {
      scope = await resolveCriticalScope(client, CRITICAL);
    } finally {
      await client.end();
    }
    await pgDump(join(work, 'critical.dump'), criticalDumpArgs(scope));
    atCritical = await contents(source);
    sequencesAtCritical = await sequences(source);
  });
  afterAll(async () => {
    for (const name of [alone, target, source]) await dropDatabase(db(source), name);
    await rm(work, { recursive: true, force: true });
  });

  it('keeps the rows of the important tables and of a partitioned one\'s partitions, and only those', () => {
    expect(scope.dataTables.map((t) => `${t.schema}.${t.table}`)).toEqual(['public.invoices', 'public.payments_2026_11', 'public.payments_2026_12', '会計.取引先']);
    expect(scope.schemaOnlyTables.map((t) => `${t.schema}.${t.table}`)).toEqual(['public.audit_log', 'public.customers', 'public.shipments']);
  });

  it('restores a critical backup on its own into an empty database: every type and table, the important rows', async () => {
    await createEmptyDatabase(db(source), alone);
    const { notValidConstraints } = await restoreScopedDump(db(source), alone, join(work, 'critical.dump'), { workDir: work, pgBinDir: s.postgres.binDir });
    const restored = await contents(alone);
    for (const t of ['invoices', 'payments', '"会計"."取引先"']) expect(restored[t], t).toEqual(atCritical[t]);
    for (const t of ['customers', 'shipments', 'audit_log']) expect(restored[t], t).toEqual([]);
    // Invoices name customers, whose rows are not in this backup: that key is kept, NOT VALID; the others are valid.
    expect(notValidConstraints).toEqual(['public.invoices invoices_customer_id_fkey']);
    expect(
      await query(alone, `SELECT conname AS name, convalidated AS valid FROM pg_constraint WHERE contype = 'f' AND conparentid = 0 ORDER BY 1`),
    ).toEqual([
      { name: 'invoices_customer_id_fkey', valid: false },
      { name: 'invoices_partner_id_fkey', valid: true },
      { name: 'payments_invoice_id_fkey', valid: true },
      { name: 'shipments_invoice_id_fkey', valid: true },
    ]);
  });

  it('fails a plain pg_restore of it, which is why the scoped restore exists', async () => {
    const name = `${alone}_plain`;
    await createEmptyDatabase(db(source), name);
    try {
      await expect(restoreDump(db(source), name, join(work, 'critical.dump'), { pgBinDir: s.postgres.binDir })).rejects.toThrow('invoices_customer_id_fkey');
    } finally {
      await dropDatabase(db(source), name);
    }
  });

  it('lists only table rows and sequence values for the overlay', async () => {
    const toc = await runTool(join(s.postgres.binDir, 'pg_restore'), ['--list', join(work, 'critical.dump')]);
    const kept = overlayRestoreList(toc);
    expect(kept.split('\n').filter(Boolean).every((line) => / (TABLE DATA|SEQUENCE SET) /.test(line))).toBe(true);
    expect(kept.match(/TABLE DATA/g)).toHaveLength(4);
    expect(kept).toContain('SEQUENCE SET public invoices_id_seq');
  });

  describe('laid over the restored daily', () => {
    beforeAll(async () => {
      await createEmptyDatabase(db(source), target);
      await restoreDump(db(source), target, join(work, 'daily.dump'), { pgBinDir: s.postgres.binDir });
      result = await overlayCriticalDump(db(source), target, join(work, 'critical.dump'), scope.dataTables, { workDir: join(work, 'overlay'), pgBinDir: s.postgres.binDir });
    });

    it('makes the important tables equal to the source at the critical backup, triggers silent, the rest as in the daily', async () => {
      const restored = await contents(target);
      for (const t of ['invoices', 'payments', '"会計"."取引先"']) expect(restored[t], t).toEqual(atCritical[t]);
      for (const t of ['customers', 'shipments', 'audit_log']) expect(restored[t], t).toEqual(atDaily[t]);
    });

    it('lists exactly the orphans there are, in both directions, and keeps their constraints NOT VALID', async () => {
      expect(result.orphanCount).toBe(2);
      expect(result.orphans).toEqual([
        { constraint: 'public.invoices.invoices_customer_id_fkey', row: '(id)=(7)', references: '(customer_id)=(100)' },
        { constraint: 'public.shipments.shipments_invoice_id_fkey', row: '(id)=(3)', references: '(invoice_id)=(3)' },
      ]);
      expect(result.notValidConstraints).toEqual(['public.invoices.invoices_customer_id_fkey', 'public.shipments.shipments_invoice_id_fkey']);
      const constraints = await query<{ name: string; valid: boolean; definition: string }>(
        target,
        `SELECT conname AS name, convalidated AS valid, pg_get_constraintdef(oid) AS definition FROM pg_constraint WHERE contype = 'f' AND conparentid = 0 ORDER BY 1`,
      );
      expect(constraints).toEqual([
        { name: 'invoices_customer_id_fkey', valid: false, definition: 'FOREIGN KEY (customer_id) REFERENCES customers(id) NOT VALID' },
        { name: 'invoices_partner_id_fkey', valid: true, definition: 'FOREIGN KEY (partner_id) REFERENCES "会計"."取引先"(id)' },
        { name: 'payments_invoice_id_fkey', valid: true, definition: 'FOREIGN KEY (invoice_id) REFERENCES invoices(id)' },
        { name: 'shipments_invoice_id_fkey', valid: false, definition: 'FOREIGN KEY (invoice_id) REFERENCES invoices(id) ON DELETE CASCADE NOT VALID' },
      ]);
    });

    it('sets the sequences to the critical backup\'s values, so new rows get new ids, and the foreign keys work again', async () => {
      const now = await sequences(target);
      expect(now['public.invoices_id_seq']).toBe(sequencesAtCritical['public.invoices_id_seq']);
      expect(now['public.payments_id_seq']).toBe(sequencesAtCritical['public.payments_id_seq']);
      expect(now['会計.取引先_id_seq']).toBe(sequencesAtCritical['会計.取引先_id_seq']);
      await query(target, `INSERT INTO invoices (customer_id, amount) VALUES (1, 1); INSERT INTO payments (paid_on, invoice_id, amount) VALUES ('2026-12-24', 1, 1)`);
      await expect(query(target, 'INSERT INTO invoices (customer_id, amount) VALUES (4242, 1)')).rejects.toThrow('invoices_customer_id_fkey');
    });

    it('is idempotent: a retry gives the same rows and the same orphans', async () => {
      const again = await overlayCriticalDump(db(source), target, join(work, 'critical.dump'), scope.dataTables, { workDir: join(work, 'overlay'), pgBinDir: s.postgres.binDir });
      expect(again).toEqual(result);
      const restored = await contents(target);
      for (const t of ['invoices', 'payments', '"会計"."取引先"']) expect(restored[t], t).toEqual(atCritical[t]);
    });

    it('validates the constraints again once the orphans are repaired', async () => {
      await query(target, `INSERT INTO customers (id, name) VALUES (100, 're-entered'); DELETE FROM shipments WHERE invoice_id = 3`);
      await query(target, 'ALTER TABLE invoices VALIDATE CONSTRAINT invoices_customer_id_fkey; ALTER TABLE shipments VALIDATE CONSTRAINT shipments_invoice_id_fkey');
      expect(await query(target, `SELECT count(*)::int AS n FROM pg_constraint WHERE contype = 'f' AND NOT convalidated`)).toEqual([{ n: 0 }]);
    });
  });

  it(`counts every orphan and lists the first ${MAX_LISTED_ORPHANS}`, async () => {
    const name = `${target}_many`;
    await createEmptyDatabase(db(source), name);
    try {
      await restoreDump(db(source), name, join(work, 'daily.dump'), { pgBinDir: s.postgres.binDir });
      // 1,100 more shipments of invoice 3, which the critical backup no longer has.
      await query(name, `INSERT INTO shipments (invoice_id, note) SELECT 3, 'extra ' || g FROM generate_series(1, 1100) AS g`);
      const many = await overlayCriticalDump(db(source), name, join(work, 'critical.dump'), scope.dataTables, { workDir: join(work, 'overlay-many'), pgBinDir: s.postgres.binDir });
      expect(many.orphanCount).toBe(1102);
      expect(many.orphans).toHaveLength(MAX_LISTED_ORPHANS);
      expect(many.notValidConstraints).toEqual(['public.invoices.invoices_customer_id_fkey', 'public.shipments.shipments_invoice_id_fkey']);
    } finally {
      await dropDatabase(db(source), name);
    }
  });

  it('needs a superuser (session_replication_role): any other role is refused at once, nothing changed', async () => {
    const role = `overlay_user_${pid}`;
    await query(source, `CREATE ROLE ${role} LOGIN PASSWORD 'overlay-test-pw' NOSUPERUSER`);
    try {
      const before = await contents(target);
      const error = await overlayCriticalDump({ ...db(source), user: role, password: 'overlay-test-pw' }, target, join(work, 'critical.dump'), scope.dataTables, {
        workDir: join(work, 'overlay-user'),
        pgBinDir: s.postgres.binDir,
      }).catch((e: unknown) => e);
      expect(error).toMatchObject({ name: 'ToolError', permanent: true });
      expect((error as Error).message).toContain('permission denied to set parameter "session_replication_role"');
      expect(await contents(target)).toEqual(before);
    } finally {
      await query(source, `DROP ROLE ${role}`);
    }
  });

  it('refuses, and changes nothing, when an orphan would sit in a partitioned table', async () => {
    const name = `${target}_p`;
    const client = new pg.Client(pgClientConfig(db(source)));
    await client.connect();
    const paymentsOnly = await resolveCriticalScope(client, [{ schema: 'public', table: 'payments' }]).finally(() => client.end());
    await pgDump(join(work, 'payments.dump'), criticalDumpArgs(paymentsOnly));
    await createEmptyDatabase(db(source), name);
    try {
      await restoreDump(db(source), name, join(work, 'daily.dump'), { pgBinDir: s.postgres.binDir });
      // The payment of invoice 5 (in the critical backup) then points at an invoice this database lacks.
      await query(name, `SET session_replication_role = replica; DELETE FROM invoices WHERE id = 5`);
      const before = await contents(name);
      await expect(
        overlayCriticalDump(db(source), name, join(work, 'payments.dump'), paymentsOnly.dataTables, { workDir: join(work, 'overlay-p'), pgBinDir: s.postgres.binDir }),
      ).rejects.toThrow(/overlay refused: 1 row\(s\) of partitioned table public.payments .* foreign key payments_invoice_id_fkey/);
      expect(await contents(name)).toEqual(before);
    } finally {
      await dropDatabase(db(source), name);
    }
  });
});

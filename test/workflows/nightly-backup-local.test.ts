import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { readCatalog } from '../../src/catalog.js';
import { pgClientConfig, type DbConnection } from '../../src/pg/connection.js';
import { computeFingerprint, listUserTables } from '../../src/pg/fingerprint.js';
import { createEmptyDatabase, dropDatabase, restoreDump } from '../../src/pg/restore.js';
import { createBackupRuntime } from '../../src/runtime.js';
import { createBackupWorker } from '../../src/temporal/worker.js';
import { NightlyBackup } from '../../workflows/index.js';
import { services } from '../helpers/services.js';

// The first thread through every layer (issue 2): a worker on the real dev server runs
// NightlyBackup, whose activities pg_dump the sample database into BACKUP_DIR; the dump
// restores with pg_restore into a new database with equal row counts and money totals.
describe('NightlyBackup to the local repository', () => {
  const s = services();
  const taskQueue = `nightly-local-${process.pid}`;
  const db: DbConnection = {
    host: s.postgres.host,
    port: s.postgres.port,
    user: s.postgres.user,
    password: s.postgres.password,
    database: s.postgres.sampleDb,
  };
  let backupDir: string;
  let connection: NativeConnection;
  let clientConnection: Connection;
  let client: Client;

  beforeAll(async () => {
    backupDir = await mkdtemp(join(tmpdir(), 'erp4-local-'));
    connection = await NativeConnection.connect({ address: s.temporal.address });
    clientConnection = await Connection.connect({ address: s.temporal.address });
    client = new Client({ connection: clientConnection, namespace: s.temporal.namespace });
  });
  afterAll(async () => {
    await clientConnection?.close();
    await connection?.close();
    await rm(backupDir, { recursive: true, force: true });
  });

  it('writes a dump that pg_restore restores with equal row counts', async () => {
    const config = loadConfig({
      BACKUP_ENV: 'test',
      DB_HOST: db.host,
      DB_PORT: String(db.port),
      DB_USER: db.user,
      DB_PASSWORD: db.password,
      DB_NAME: db.database,
      PG_BIN_DIR: s.postgres.binDir,
      BACKUP_DIR: backupDir,
      PDF_PROVIDER: 'local',
      ASSET_DIR: s.assetDir,
      TEMPORAL_ADDRESS: s.temporal.address,
      TEMPORAL_TASK_QUEUE: taskQueue,
    });
    const runtime = await createBackupRuntime(config);
    const worker = await createBackupWorker({ connection, namespace: s.temporal.namespace, taskQueue, runtime });

    const result = await worker.runUntil(
      client.workflow.execute(NightlyBackup, { taskQueue, workflowId: `nightly-local-${Date.now()}`, args: [{ kind: 'daily' }] }),
    );

    const local = runtime.repositories.get('local')!;
    const { backups } = await readCatalog(local, 'test');
    expect(backups.map((b) => b.id)).toEqual([result.backupId]);
    const manifest = backups[0]!;
    expect(manifest.artifacts.db?.format).toBe('pg_dump-custom');
    expect(manifest.assets?.fileCount).toBeGreaterThan(0);

    const scratch = `restore_${Date.now()}`;
    await createEmptyDatabase(db, scratch);
    try {
      await restoreDump(db, scratch, join(backupDir, manifest.artifacts.db!.key), { pgBinDir: s.postgres.binDir });
      const restored = new pg.Client(pgClientConfig(db, scratch));
      await restored.connect();
      try {
        const fingerprint = await computeFingerprint(restored, await listUserTables(restored));
        expect(fingerprint).toEqual(manifest.fingerprint);
        expect(fingerprint.find((t) => t.table === 'public.invoices')?.rowCount).not.toBe('0');
      } finally {
        await restored.end();
      }
    } finally {
      await dropDatabase(db, scratch);
    }
  });
});

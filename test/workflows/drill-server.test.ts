import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { WorkflowFailedError } from '@temporalio/client';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/processes.js';
import { startPostgres, type PostgresCluster } from '../../src/dev/postgres.js';
import { pgClientConfig, type DbConnection } from '../../src/pg/connection.js';
import { dropDatabase } from '../../src/pg/restore.js';
import { scratchDatabaseName } from '../../src/restore/database.js';
import { NightlyBackup, RestoreDrill } from '../../workflows/index.js';
import type { NightlyBackupResult } from '../../workflows/messages.js';
import { databasesLike, harnessDb } from '../helpers/drill.js';
import { createSampleDatabase, productEnv, startProduct, type RunningProduct } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { issueCertificate, makeCa } from '../helpers/test-ca.js';

// DRILL_DB_*: drills restore into a separate PostgreSQL, a fresh cluster that has none of the
// production roles, reached over verify-full TLS (it refuses plaintext). The drilling worker's
// production database is unreachable (DB_PORT points at a closed port): a drill that touched
// production in any way would fail. The source has a schema owned by its own role, so owners
// and privileges matter: `skip` restores without them, `apply-roles` creates the roles first.
describe('RestoreDrill on a separate drill server (DRILL_DB_HOST)', () => {
  const s = services();
  const database = `erp4_drill_server_${process.pid}`;
  const ownerRole = `ledger_owner_${process.pid}`;
  let dir: string;
  let cluster: PostgresCluster;
  let caFile: string;
  let otherCaFile: string;
  let backup: NightlyBackupResult;
  let backupEnv: Record<string, string>;
  const products: RunningProduct[] = [];

  const drillDb = (name = 'postgres'): DbConnection => ({
    host: 'localhost',
    port: cluster.port,
    user: cluster.user,
    password: cluster.password,
    database: name,
    tls: { mode: 'verify-full', rootCertFile: caFile },
  });
  const query = async <T extends pg.QueryResultRow>(db: DbConnection, sql: string, values: unknown[] = []): Promise<T[]> => {
    const client = new pg.Client(pgClientConfig(db));
    await client.connect();
    try {
      return (await client.query<T>(sql, values)).rows;
    } finally {
      await client.end();
    }
  };
  /** A worker configured for drills on the drill server, whose production database is down. */
  const startDrillWorker = async (restoreOwners: 'apply-roles' | 'skip', overrides: Record<string, string> = {}) => {
    const product = await startProduct(s, {
      ...backupEnv,
      TEMPORAL_TASK_QUEUE: `${backupEnv.TEMPORAL_TASK_QUEUE}-${restoreOwners}-${products.length}`,
      DB_PORT: String(await freePort()),
      DRILL_DB_HOST: 'localhost',
      DRILL_DB_PORT: String(cluster.port),
      DRILL_DB_USER: cluster.user,
      DRILL_DB_PASSWORD: cluster.password,
      DRILL_DB_SSLMODE: 'verify-full',
      DRILL_DB_SSLROOTCERT: caFile,
      DRILL_RESTORE_OWNERS: restoreOwners,
      ...overrides,
    });
    products.push(product);
    return product;
  };
  const drill = (product: RunningProduct, workflowId: string, keepScratch: boolean) =>
    product.client.workflow.execute(RestoreDrill, {
      taskQueue: product.config.temporal.taskQueue,
      workflowId,
      args: [{ backupId: backup.backupId, repository: 'local', keepScratch }],
    });

  beforeAll(async () => {
    dir = await mkdtemp(join(s.workDir, 'drill-server-'));
    await chmod(dir, 0o755);
    const ca = await makeCa(dir, 'drill-ca');
    caFile = ca.certFile;
    otherCaFile = (await makeCa(dir, 'other-ca')).certFile;
    const serverCert = await issueCertificate(dir, 'drill-server', { ca, commonName: 'localhost', dnsNames: ['localhost'] });
    cluster = await startPostgres({
      dir: join(dir, 'cluster'),
      binDir: s.postgres.binDir,
      logPath: join(s.workDir, 'logs', `postgres-drill-server-${process.pid}.log`),
      ssl: { certFile: serverCert.certFile, keyFile: serverCert.keyFile },
      hbaLines: ['hostnossl all all 127.0.0.1/32 reject'],
    });

    // The drill server already has a role of the backup, with other settings: a drill leaves it as it is.
    await query(drillDb(), 'CREATE ROLE erp4_app LOGIN CONNECTION LIMIT 3');

    await createSampleDatabase(s, database);
    await query(harnessDb(s, 'postgres'), `CREATE ROLE ${ownerRole} NOLOGIN PASSWORD 'ledger-pw' IN ROLE erp4_readonly`);
    await query(
      harnessDb(s, database),
      `CREATE SCHEMA ledger AUTHORIZATION ${ownerRole};
       CREATE TABLE ledger.entries (id int PRIMARY KEY, amount numeric(12,2) NOT NULL);
       INSERT INTO ledger.entries SELECT i, i * 1.25 FROM generate_series(1, 500) AS i;
       ALTER TABLE ledger.entries OWNER TO ${ownerRole};
       GRANT SELECT ON ledger.entries TO erp4_readonly;`,
    );

    backupEnv = await productEnv(s, 'drill-server', { env: { DB_NAME: database, DRILL_PREAPPROVED: 'true' } });
    const backupWorker = await startProduct(s, backupEnv);
    try {
      backup = await backupWorker.client.workflow.execute(NightlyBackup, {
        taskQueue: backupWorker.config.temporal.taskQueue,
        workflowId: `drill-server-backup-${process.pid}-${Date.now()}`,
        args: [{ kind: 'daily' }],
      });
    } finally {
      await backupWorker.close();
    }
  });

  afterAll(async () => {
    for (const product of products) await product.close();
    await cluster?.stop();
    await dropDatabase(harnessDb(s), database);
    await query(harnessDb(s, 'postgres'), `DROP ROLE IF EXISTS ${ownerRole}`).catch(() => undefined);
    if (backupEnv) await rm(backupEnv.BACKUP_DIR!, { recursive: true, force: true });
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('skip: restores without owners and privileges on a cluster lacking the roles, and passes; production is never touched', async () => {
    const product = await startDrillWorker('skip');
    const workflowId = `drill-server-skip-${process.pid}`;
    const scratch = scratchDatabaseName(backup.backupId, workflowId);
    const result = await drill(product, workflowId, true);

    expect(result.outcome).toBe('passed');
    expect(result.database).toBe(scratch);
    expect(result.checks.filter((c) => c.kind === 'fingerprint' && c.name === 'ledger.entries')).toEqual([expect.objectContaining({ passed: true })]);
    expect(result.checks.filter((c) => !c.passed)).toEqual([]);
    // Restored on the drill server, owned by the role the drill connects as, without GRANTs; no role was created.
    const [table] = await query<{ owner: string; acl: string | null }>(
      drillDb(scratch),
      `SELECT pg_get_userbyid(relowner) AS owner, relacl::text AS acl FROM pg_class WHERE oid = 'ledger.entries'::regclass`,
    );
    expect(table).toEqual({ owner: cluster.user, acl: null });
    expect(await query(drillDb(), 'SELECT 1 FROM pg_roles WHERE rolname = $1', [ownerRole])).toEqual([]);
    expect(await databasesLike(s, scratch)).toEqual([]);
    await dropDatabase(drillDb(), scratch);
  });

  it('a drill server whose certificate DRILL_DB_SSLROOTCERT does not trust: the drill fails at once, naming it, without retries', async () => {
    const product = await startDrillWorker('skip', { DRILL_DB_SSLROOTCERT: otherCaFile });
    const workflowId = `drill-server-wrong-ca-${process.pid}`;
    const failure = await drill(product, workflowId, false).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const message = ((failure as WorkflowFailedError).cause as Error).message;
    expect(message).toMatch(/RestoreDrill failed at selecting: the certificate of PostgreSQL at DRILL_DB_HOST localhost is not trusted by DRILL_DB_SSLROOTCERT \(.*other-ca\.crt\)/);
    // One attempt of planRestore, failed as non-retryable.
    const { events } = await product.client.workflow.getHandle(workflowId).fetchHistory();
    const attempts = (events ?? []).flatMap((e) => (e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt] : []));
    expect(attempts[0]).toBe(1);
    const planFailure = (events ?? []).find((e) => e.activityTaskFailedEventAttributes)?.activityTaskFailedEventAttributes?.failure;
    expect(planFailure?.applicationFailureInfo).toMatchObject({ type: 'PgTlsError', nonRetryable: true });
  });

  it("apply-roles: creates the backup's missing roles on the drill server, keeps owners and privileges, and passes again once they exist", async () => {
    const product = await startDrillWorker('apply-roles');
    const workflowId = `drill-server-roles-${process.pid}`;
    const scratch = scratchDatabaseName(backup.backupId, workflowId);
    const result = await drill(product, workflowId, true);

    expect(result.outcome).toBe('passed');
    expect(result.checks.filter((c) => !c.passed)).toEqual([]);
    const [table] = await query<{ owner: string; acl: string }>(
      drillDb(scratch),
      `SELECT pg_get_userbyid(relowner) AS owner, relacl::text AS acl FROM pg_class WHERE oid = 'ledger.entries'::regclass`,
    );
    expect(table?.owner).toBe(ownerRole);
    expect(table?.acl).toContain('erp4_readonly=r/');
    const [schema] = await query<{ owner: string }>(drillDb(scratch), `SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = 'ledger'`);
    expect(schema?.owner).toBe(ownerRole);
    // The drill server's own superuser is left as it was: its password still logs in.
    expect(await query(drillDb(), 'SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
    // Created with its attributes and the membership granted to it; the existing erp4_app untouched.
    expect(await query(drillDb(), `SELECT rolcanlogin, pg_has_role(rolname, 'erp4_readonly', 'MEMBER') AS reader FROM pg_roles WHERE rolname = $1`, [ownerRole])).toEqual([
      { rolcanlogin: false, reader: true },
    ]);
    const passwordHash = (db: DbConnection) => query<{ rolpassword: string }>(db, 'SELECT rolpassword FROM pg_authid WHERE rolname = $1', [ownerRole]);
    expect((await passwordHash(drillDb()))[0]?.rolpassword).toMatch(/^SCRAM-SHA-256\$/);
    expect(await passwordHash(drillDb())).toEqual(await passwordHash(harnessDb(s, 'postgres')));
    expect(await query(drillDb(), `SELECT rolconnlimit, pg_has_role(rolname, 'erp4_readonly', 'MEMBER') AS reader FROM pg_roles WHERE rolname = 'erp4_app'`)).toEqual([
      { rolconnlimit: 3, reader: false },
    ]);
    expect(await databasesLike(s, scratch)).toEqual([]);
    await dropDatabase(drillDb(), scratch);

    // The roles exist now: a second drill creates none and passes (dropping its scratch database).
    const again = await drill(product, `${workflowId}-again`, false);
    expect(again.outcome).toBe('passed');
    expect(await query(drillDb(), `SELECT datname FROM pg_database WHERE datname LIKE 'drill\\_%'`)).toEqual([]);
  });
});

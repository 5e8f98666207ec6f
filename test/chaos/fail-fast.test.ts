import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeError } from '../../src/commands/format.js';
import { runCommand } from '../../src/dev/processes.js';
import { artifactKey, backupIdFor, manifestKey } from '../../src/layout.js';
import { parseManifest, serializeManifest, type Manifest } from '../../src/manifest.js';
import { pgChildEnv, pgClientConfig } from '../../src/pg/connection.js';
import { scratchDatabaseName } from '../../src/restore/database.js';
import type { RestoreReport } from '../../src/restore/report.js';
import { NightlyBackup, RestoreDrill } from '../../workflows/index.js';
import { approveRestoreSignal } from '../../workflows/messages.js';
import { databasesLike, inPhase, waitForStatus } from '../helpers/drill.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { productEnv } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { activityFailures, activityRetries } from './backup-checks.js';
import { superuser } from './chaos-database.js';
import { startTestProduct, type TestProduct } from './products.js';
import { recordResult, trialCount } from './reliability.js';

const TEST_FILE = 'test/chaos/fail-fast.test.ts';

// Issue 13 item 3, end to end: a drill of a backup that cannot restore (an SQL error, a damaged
// archive) fails at its first attempt with the step and the first error lines in its report;
// a connection lost while it restores is retried and the drill passes. The database reaches the
// product through a fault-injecting proxy (passing everything unless a row says otherwise).
describe('RestoreDrill: fail fast on what a retry cannot fix, retry the rest', () => {
  const s = services();
  const source = `failfast_drill_${process.pid}`;
  let proxy: FaultProxy;
  let product: TestProduct;
  let dir: string;
  let good: Manifest;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'failfast-drill-'));
    const admin = new pg.Client(pgClientConfig(superuser(s)));
    await admin.connect();
    await admin.query(`CREATE DATABASE ${source}`).finally(() => admin.end());
    const client = new pg.Client(pgClientConfig(superuser(s), source));
    await client.connect();
    await client
      .query(
        `CREATE TYPE order_status AS ENUM ('open', 'paid');
         CREATE TABLE orders (id int PRIMARY KEY, status order_status NOT NULL, amount numeric(12,2) NOT NULL);
         INSERT INTO orders SELECT g, 'open', g * 1.25 FROM generate_series(1, 500) g;`,
      )
      .finally(() => client.end());
    proxy = await startFaultProxy({ host: s.postgres.host, port: s.postgres.port });
    const env = await productEnv(s, 'failfast', {
      assets: false,
      env: { DB_NAME: source, DB_HOST: '127.0.0.1', DB_PORT: String(proxy.port), RESTORE_APPROVERS: 'alice:admin', DRILL_ACCEPT_UNSIGNED_APPROVALS: 'true' },
    });
    product = await startTestProduct(s, env);
    const backup = await product.client.workflow.execute(NightlyBackup, {
      taskQueue: product.taskQueue,
      workflowId: `failfast-backup-${process.pid}-${Date.now()}`,
      args: [{ kind: 'daily' }],
    });
    good = parseManifest(await local().getBytes(manifestKey(product.runtime.layout, backup.backupId)), 'good');
  });
  afterAll(async () => {
    await product?.close();
    await proxy?.close();
    const admin = new pg.Client(pgClientConfig(superuser(s)));
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${source} WITH (FORCE)`).finally(() => admin.end());
    await rm(dir, { recursive: true, force: true });
  });

  const local = () => product.runtime.repositories.get('local')!;

  /** A backup as NightlyBackup would record it, whose db artifact is `dump` (verified by its sha256 like any other). */
  const craftBackup = async (dump: Buffer, minute: number): Promise<string> => {
    const id = backupIdFor('daily', new Date(Date.UTC(2020, 0, 1, 0, minute)));
    const layout = product.runtime.layout;
    const db = { ...good.artifacts.db!, key: artifactKey(layout, 'db', id, false), size: dump.length, sha256: createHash('sha256').update(dump).digest('hex') };
    const globalsBytes = await local().getBytes(good.artifacts.globals!.key);
    const globals = { ...good.artifacts.globals!, key: artifactKey(layout, 'globals', id, false) };
    const staged = join(dir, `${id}.dump`);
    await writeFile(staged, dump);
    await local().putFile(db.key, staged, { expected: { size: db.size, sha256: db.sha256 } });
    await local().putBytes(globals.key, globalsBytes);
    await local().putBytes(manifestKey(layout, id), serializeManifest({ ...good, id, artifacts: { db, globals } }));
    return id;
  };

  const drill = (backupId: string, trial: number) =>
    product.client.workflow.start(RestoreDrill, {
      taskQueue: product.taskQueue,
      workflowId: `failfast-drill-${backupId}-${trial}-${Date.now()}`,
      args: [{ backupId, repository: 'local', heartbeatTimeoutSeconds: 5 }],
    });

  const report = async (backupId: string, workflowId: string): Promise<RestoreReport> => {
    const keys = (await local().list(`test/meta/drills/${backupId}/`)).map((o) => o.key);
    const key = keys.find((k) => k.endsWith(`-${workflowId}.json`));
    expect(key, `report of ${workflowId}`).toBeDefined();
    return JSON.parse((await local().getBytes(key!)).toString('utf8')) as RestoreReport;
  };

  /** Runs a drill of a backup that cannot restore; returns what the operator reads, or throws. */
  const failsAtOnce = async (backupId: string, trial: number, firstLine: RegExp): Promise<string> => {
    const handle = await drill(backupId, trial);
    await waitForStatus(handle, inPhase('awaiting-approval'));
    await handle.signal(approveRestoreSignal, { approver: 'alice' });
    const error = await handle.result().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const text = describeError(error);
    expect(text).toMatch(/RestoreDrill failed at restoring-database: pg_restore failed \(not retried: the same input fails the same way\)/);
    expect(text).toMatch(firstLine);
    // Attempt 1, non-retryable: no minutes of retries.
    expect(await activityFailures(handle)).toEqual([expect.objectContaining({ activity: 'restoreDatabase', attempt: 1, nonRetryable: true })]);
    const written = await report(backupId, handle.workflowId);
    expect(written.outcome).toBe('failed');
    expect(written.failure?.step).toBe('restoring-database');
    expect(written.failure?.cause).toMatch(firstLine);
    expect(await databasesLike(s, scratchDatabaseName(backupId, handle.workflowId))).toEqual([]);
    return written.failure!.cause.split('\n')[0]!;
  };

  const runRow = async (id: string, fault: string, trials: number, trial: (n: number) => Promise<string>) => {
    const notes: string[] = [];
    let survived = 0;
    try {
      for (let n = 0; n < trials; n++) {
        notes.push(await trial(n));
        survived += 1;
      }
    } finally {
      recordResult({ id, fault, trials, survived, dataLost: 0, notes: [...new Set(notes)].join(' | ').slice(0, 400), test: TEST_FILE });
    }
    expect(survived).toBe(trials);
  };

  it('an SQL error in pg_restore (a table dumped without the type it uses) fails the drill at attempt 1, naming the step and the first error lines', async () => {
    const tableOnly = join(dir, 'orders-only.dump');
    await runCommand(join(s.postgres.binDir, 'pg_dump'), ['--format=custom', '--table=public.orders', `--file=${tableOnly}`], { env: pgChildEnv(superuser(s), source) });
    const id = await craftBackup(await readFile(tableOnly), 1);
    await runRow(
      'fail-fast-sql-error',
      'A deterministic SQL error in pg_restore (a dump lacking a type its table uses): the drill fails at attempt 1, its report names the step and the first error lines',
      trialCount({ ci: 1, chaos: 3 }),
      (n) => failsAtOnce(id, n, /pg_restore: error: could not execute query: ERROR: {2}type "public\.order_status" does not exist/),
    );
  });

  it('a corrupt archive (verified by its sha256, cut short when it was made) fails the drill at attempt 1', async () => {
    const whole = await local().getBytes(good.artifacts.db!.key);
    const id = await craftBackup(whole.subarray(0, Math.floor(whole.length / 2)), 2);
    await runRow(
      'fail-fast-corrupt-archive',
      'A damaged archive (a dump cut short, its sha256 recorded as such): the drill fails at attempt 1, its report names the step and the error',
      trialCount({ ci: 1, chaos: 3 }),
      (n) => failsAtOnce(id, n, /pg_restore: error: could not read from input file: end of file/),
    );
  });

  it('PostgreSQL connections reset while the drill restores are retried, and the drill passes', async () => {
    await runRow(
      'retry-connection-reset-restore',
      'PostgreSQL connections reset as the drill starts restoring (the first 2 connections): retried, the drill passes',
      trialCount({ ci: 1, chaos: 3 }),
      async (n) => {
        const handle: WorkflowHandle<typeof RestoreDrill> = await drill(good.id, n);
        await waitForStatus(handle, inPhase('awaiting-approval'));
        const before = proxy.events.length;
        proxy.setMode({ kind: 'reset', afterBytes: 0, times: 2 });
        try {
          await handle.signal(approveRestoreSignal, { approver: 'alice' });
          const result = await handle.result();
          expect(result.outcome).toBe('passed');
        } finally {
          proxy.setMode({ kind: 'pass' });
        }
        expect(proxy.events.length - before).toBe(2);
        const retried = (await activityRetries(handle)).map((r) => `${r.activity} attempt ${r.attempt}`);
        expect(retried.length).toBeGreaterThan(0);
        return `retried: ${retried.join(', ')}`;
      },
    );
  });
});

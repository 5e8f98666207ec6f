import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import pg from 'pg';
import type { Readable } from 'node:stream';
import { startTool } from '../src/child-process.js';
import { InputError } from '../src/errors.js';
import type { BackupKind } from '../src/layout.js';
import type { FingerprintEntry } from '../src/manifest.js';
import { connectDatabase, explainPgToolFailure, PERMANENT_PG_ERRORS, pgChildEnv, pgClientConfig, type DbConnection } from '../src/pg/connection.js';
import { criticalDumpArgs, recordedScope, resolveCriticalScope } from '../src/pg/critical-scope.js';
import { accessExclusiveHolders, isLockWaitTimeout, LOCK_WAIT_ATTEMPTS, lockWaitMessage } from '../src/pg/lock-wait.js';
import { computeFingerprint, listUserTables, qualifiedName, type FingerprintTable, type TableRef } from '../src/pg/fingerprint.js';
import { checkPgToolVersion, PG_INSTALL_HINT, resolvePgTool } from '../src/pg/tools.js';
import { progressHeartbeat, withHeartbeat } from './heartbeat.js';
import { stageStream, type StagedFile } from './staging.js';

export interface DumpSettings {
  db: DbConnection;
  pgBinDir?: string;
  /** The important tables (CRITICAL_TABLES) dumped by `critical` and `weekly-full` backups (S6, S9). */
  criticalTables: readonly TableRef[];
  /** FINGERPRINT_QUERIES_FILE: the tables and columns of the fingerprint; default: every table, every numeric column. */
  fingerprintTables?: readonly FingerprintTable[];
  /** SCHEMA_VERSION_QUERY: one row, one column; default: the newest Prisma migration. */
  schemaVersionQuery?: string;
  /** DB_LOCK_TIMEOUT: the longest wait for a table lock, for pg_dump and the fingerprint session alike. */
  lockTimeoutMs: number;
  encrypt?: (plaintext: Readable) => Promise<Readable>;
}

export interface DatabaseDump {
  file: StagedFile;
  /** Time of the snapshot that both pg_dump and the fingerprint read (ISO 8601 UTC). */
  generatedAt: string;
  schemaVersion: string;
  serverVersion: string;
  pgDumpVersion: string;
  /** `critical`/`weekly-full`: CRITICAL_TABLES, and the tables whose rows the dump holds (src/pg/critical-scope.ts). */
  tables?: string[];
  dataTables?: string[];
  fingerprint: FingerprintEntry[];
  fingerprintScope: 'every-table' | 'configured';
}

// Two statements: a query naming _prisma_migrations fails at parse time where the table does
// not exist, whatever CASE guards it.
const PRISMA_TABLE_EXISTS = `SELECT to_regclass('_prisma_migrations') IS NOT NULL`;
const PRISMA_SCHEMA_VERSION = `
  SELECT coalesce((SELECT migration_name FROM _prisma_migrations
                    WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL
                    ORDER BY finished_at DESC, migration_name DESC LIMIT 1), 'unknown')`;

/**
 * `pg_dump -Fc` of the database (or of its schema with the important tables' rows) and its fingerprint, read from ONE
 * exported snapshot (REPEATABLE READ + pg_export_snapshot + pg_dump --snapshot): the row counts
 * and money totals in the manifest describe exactly the data in the dump, so a restore drill
 * can demand equality. A retry takes a new snapshot and produces a new, equally consistent pair.
 */
export async function dumpDatabase(settings: DumpSettings, kind: BackupKind, stagingPath: string): Promise<DatabaseDump> {
  const signal = Context.current().cancellationSignal;
  const client = new pg.Client(pgClientConfig(settings.db));
  await connectDatabase(client, settings.db);
  try {
    const versionRow = (await client.query<{ num: string; text: string }>(
      `SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS text`,
    )).rows[0]!;
    const serverVersionNum = Number(versionRow.num);
    const pgDump = await resolvePgTool('pg_dump', { binDir: settings.pgBinDir, serverMajor: Math.floor(serverVersionNum / 10_000) });
    const pgDumpVersion = await checkPgToolVersion(pgDump, serverVersionNum);

    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await client.query(`SET LOCAL lock_timeout = ${Math.round(settings.lockTimeoutMs)}`);
    const snapshotRow = (await client.query<{ snapshot: string; generated_at: Date }>(
      'SELECT pg_export_snapshot() AS snapshot, clock_timestamp() AS generated_at',
    )).rows[0]!;
    const scoped = kind === 'critical' || kind === 'weekly-full';
    if (scoped && settings.criticalTables.length === 0) throw new InputError(`CRITICAL_TABLES is empty: a ${kind} backup dumps only the important tables`);
    const scope = scoped ? await resolveCriticalScope(client, settings.criticalTables) : undefined;
    const tables = scope?.tables;
    const tableArgs = scope ? criticalDumpArgs(scope) : [];
    // zlib level 1 instead of pg_dump's default 6: on the benchmark's 1 GB ERP database (BENCHMARKS.md)
    // the dump takes 7.9 s instead of 22.3 s of CPU for 8% more bytes (314 vs 291 MB), within the
    // 1.1x size budget; the archive stays a plain custom-format dump (pg_restore -j, no extra tool).
    const dump = startTool(pgDump, ['--format=custom', '--compress=1', `--snapshot=${snapshotRow.snapshot}`, '--no-password', `--lock-wait-timeout=${Math.round(settings.lockTimeoutMs)}`, ...tableArgs], {
      env: pgChildEnv(settings.db),
      signal,
      permanentErrors: PERMANENT_PG_ERRORS,
      installHint: PG_INSTALL_HINT,
    });
    dump.stdin.end();
    const staged = stageStream(dump.stdout, stagingPath, {
      encrypt: settings.encrypt,
      onProgress: progressHeartbeat('db'),
      signal,
      producerExited: dump.exited,
    });
    // The fingerprint scans run in the exporting transaction while pg_dump streams.
    const fingerprintWork = (async () => {
      const fingerprint = await computeFingerprint(client, fingerprintTables(tables, settings.fingerprintTables) ?? (await listUserTables(client)));
      const schemaVersion = await readSchemaVersion(client, settings.schemaVersionQuery);
      return { fingerprint, schemaVersion };
    })();
    const [file, { fingerprint, schemaVersion }] = await withHeartbeat('db', Promise.all([staged, fingerprintWork])).catch((error: unknown) =>
      explainLockWait(explainPgToolFailure(error, settings.db.settingPrefix), settings),
    );
    await client.query('COMMIT');
    return {
      file,
      generatedAt: snapshotRow.generated_at.toISOString(),
      schemaVersion,
      serverVersion: versionRow.text,
      pgDumpVersion,
      ...(scope ? recordedScope(scope) : {}),
      fingerprint,
      fingerprintScope: settings.fingerprintTables ? 'configured' : 'every-table',
    };
  } finally {
    await client.end();
  }
}

/**
 * A lock wait that ran out names the sessions holding the lock; it is retried (a migration's
 * lock is usually gone minutes later) until the last of LOCK_WAIT_ATTEMPTS attempts.
 */
async function explainLockWait(error: unknown, settings: DumpSettings): Promise<never> {
  if (!isLockWaitTimeout(error)) throw error;
  const attempt = Context.current().info.attempt;
  // The lock's report must not hide the lock: a failure to read the holders leaves them unnamed.
  const holders = await accessExclusiveHolders(settings.db).catch(() => undefined);
  throw ApplicationFailure.create({
    type: 'LockWaitTimeout',
    message: lockWaitMessage(settings.lockTimeoutMs, holders, attempt),
    nonRetryable: attempt >= LOCK_WAIT_ATTEMPTS,
    cause: error as Error,
  });
}

/**
 * What the fingerprint scans: the configured tables and columns (restricted to the dumped tables
 * for `critical`/`weekly-full`), else the dumped tables, else (undefined) every table.
 */
function fingerprintTables(dumped: readonly TableRef[] | undefined, configured: readonly FingerprintTable[] | undefined): readonly FingerprintTable[] | undefined {
  if (!configured) return dumped;
  if (!dumped) return configured;
  return dumped.map((table) => configured.find((c) => qualifiedName(c) === qualifiedName(table)) ?? table);
}

async function readSchemaVersion(client: pg.Client, query: string | undefined): Promise<string> {
  try {
    if (query === undefined && !(await client.query({ text: PRISMA_TABLE_EXISTS, rowMode: 'array' })).rows[0]?.[0]) return 'unknown';
    const result = await client.query({ text: query ?? PRISMA_SCHEMA_VERSION, rowMode: 'array' });
    const value: unknown = result.rows[0]?.[0];
    return value === null || value === undefined ? 'unknown' : String(value);
  } catch (error) {
    throw new InputError(`SCHEMA_VERSION_QUERY failed: ${(error as Error).message}`);
  }
}

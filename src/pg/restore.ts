import { availableParallelism } from 'node:os';
import pg from 'pg';
import { escapeIdentifier } from 'pg';
import { runTool } from '../child-process.js';
import { InputError } from '../errors.js';
import { explainPgToolFailure, PERMANENT_PG_ERRORS, pgChildEnv, pgClientConfig, type DbConnection } from './connection.js';
import { explainRestoreToolFailure, PERMANENT_RESTORE_ERRORS } from './restore-errors.js';
import { PG_INSTALL_HINT, resolvePgTool } from './tools.js';

/**
 * Creates an EMPTY database `name` (S21) from template0; refuses to reuse one that exists, so a
 * restore never writes over data it did not create.
 */
export async function createEmptyDatabase(db: DbConnection, name: string): Promise<void> {
  const client = new pg.Client(pgClientConfig(db, 'postgres'));
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount) throw new InputError(`database ${JSON.stringify(name)} already exists: restores only go into a new, empty database`);
    await client.query(`CREATE DATABASE ${escapeIdentifier(name)} TEMPLATE template0 ENCODING 'UTF8'`);
  } finally {
    await client.end();
  }
}

export async function dropDatabase(db: DbConnection, name: string): Promise<void> {
  const client = new pg.Client(pgClientConfig(db, 'postgres'));
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

/** pg_restore --jobs when RESTORE_JOBS is not set: the cores, at most 8. */
export function defaultRestoreJobs(): number {
  return Math.max(1, Math.min(availableParallelism(), 8));
}

/**
 * `pg_restore` of a custom-format dump file into database `name`, with parallel jobs
 * (custom format on a seekable file allows -j). `--exit-on-error`: a partial restore is a
 * failed restore, never a quiet success. An SQL error or a damaged archive fails for good
 * (PERMANENT_RESTORE_ERRORS), naming its first error lines.
 */
export async function restoreDump(
  db: DbConnection,
  name: string,
  dumpFile: string,
  options: {
    pgBinDir?: string;
    serverMajor?: number;
    jobs?: number;
    /** Keep object owners (a production restore after the globals were applied); default: no. */
    keepOwners?: boolean;
    /** Leave out GRANTs (a drill server that lacks the backup's roles); default: restore them. */
    noPrivileges?: boolean;
    /** A `pg_restore --list` file naming the entries to restore (default: all). */
    useList?: string;
    signal?: AbortSignal;
  } = {},
): Promise<void> {
  const pgRestore = await resolvePgTool('pg_restore', { binDir: options.pgBinDir, serverMajor: options.serverMajor });
  const jobs = options.jobs ?? defaultRestoreJobs();
  const args = ['--exit-on-error', `--jobs=${jobs}`, `--dbname=${conninfoDatabase(name)}`];
  if (!options.keepOwners) args.push('--no-owner');
  if (options.noPrivileges) args.push('--no-privileges');
  if (options.useList) args.push(`--use-list=${options.useList}`);
  await runTool(pgRestore, [...args, '--', dumpFile], {
    env: pgChildEnv(db, name),
    signal: options.signal,
    permanentErrors: [...PERMANENT_PG_ERRORS, ...PERMANENT_RESTORE_ERRORS],
    installHint: PG_INSTALL_HINT,
  }).catch((error: unknown) => {
    throw explainPgToolFailure(explainRestoreToolFailure(error), db.settingPrefix);
  });
}

/**
 * `--dbname` takes a conninfo string when its value contains `=`: always pass one, with the
 * name quoted, so any database name (quotes, spaces, `=`) means itself.
 */
function conninfoDatabase(name: string): string {
  return `dbname='${name.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

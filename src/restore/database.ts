import { createHash } from 'node:crypto';
import pg from 'pg';
import { escapeIdentifier, escapeLiteral } from 'pg';
import { InputError } from '../errors.js';
import { backupIdTime } from '../layout.js';
import { pgClientConfig, type DbConnection } from '../pg/connection.js';
import { createEmptyDatabase, dropDatabase } from '../pg/restore.js';

/**
 * The databases a restore creates, and the proof that it created them. A restore only ever
 * writes into a database it created empty (S21); it marks it with a COMMENT naming its workflow
 * RUN, so that a retry after a worker crash in the middle of pg_restore can drop its own
 * half-restored database and start clean, while a database anyone else made is never dropped or
 * reused. The run id is part of the marker because a workflow id can be used again (the README's
 * `--workflow-id drill-1` twice, the Web UI's "start like this one"): a later run with the same
 * workflow id must never take an earlier run's restored database for its own and drop it.
 */

export type Ownership = 'absent' | 'ours' | 'foreign';

export function ownershipMarker(run: { workflowId: string; runId: string }): string {
  return `erp4-backup: restored by workflow ${run.workflowId} run ${run.runId}`;
}

/**
 * The scratch database of a drill: derived from the backup id, plus a short hash of the drill's
 * workflow id so that two drills of one backup (or one kept for inspection) never collide.
 * E.g. `drill_20261126t170000z_daily_3f9a1c`. At most 63 bytes; never DB_NAME.
 */
export function scratchDatabaseName(backupId: string, workflowId: string): string {
  backupIdTime(backupId); // throws unless it is a backup id
  const hash = createHash('sha256').update(workflowId).digest('hex').slice(0, 6);
  return `drill_${backupId.toLowerCase().replace(/[^a-z0-9]/g, '_')}_${hash}`;
}

export async function databaseOwnership(db: DbConnection, name: string, marker: string): Promise<Ownership> {
  const client = new pg.Client(pgClientConfig(db, 'postgres'));
  await client.connect();
  try {
    const result = await client.query<{ comment: string | null }>(
      `SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1`,
      [name],
    );
    const row = result.rows[0];
    if (!row) return 'absent';
    return row.comment === marker ? 'ours' : 'foreign';
  } finally {
    await client.end();
  }
}

/**
 * Creates `name` empty and marks it as this run's. A database of the same name left by an earlier
 * attempt of this same run is dropped first; any other database of that name is refused.
 *
 * CREATE DATABASE cannot share a transaction with its COMMENT: the database is made and marked
 * under a name derived from `name` and the marker (so only this run ever uses it), then renamed.
 * A worker killed in between leaves that pending database, which the retry drops, never an
 * unmarked `name` that would look like someone else's.
 */
export async function createOwnedDatabase(db: DbConnection, name: string, marker: string): Promise<void> {
  const ownership = await databaseOwnership(db, name, marker);
  if (ownership === 'foreign') throw foreignDatabaseError(name);
  if (ownership === 'ours') await dropDatabase(db, name);
  const pending = pendingDatabaseName(name, marker);
  await dropDatabase(db, pending);
  await createEmptyDatabase(db, pending);
  const client = new pg.Client(pgClientConfig(db, 'postgres'));
  await client.connect();
  try {
    await client.query(`COMMENT ON DATABASE ${escapeIdentifier(pending)} IS ${escapeLiteral(marker)}`);
    await client.query(`ALTER DATABASE ${escapeIdentifier(pending)} RENAME TO ${escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}

/** `erp4_pending_<16 hex>`: the name `name` has while this run creates and marks it. */
export function pendingDatabaseName(name: string, marker: string): string {
  return `erp4_pending_${createHash('sha256').update(`${marker}\n${name}`).digest('hex').slice(0, 16)}`;
}

/** Drops `name` only when it carries this run's marker; returns whether it did. */
export async function dropOwnedDatabase(db: DbConnection, name: string, marker: string): Promise<boolean> {
  if ((await databaseOwnership(db, name, marker)) !== 'ours') return false;
  await dropDatabase(db, name);
  return true;
}

export function foreignDatabaseError(name: string): InputError {
  return new InputError(
    `database ${JSON.stringify(name)} already exists and was not created by this restore: a restore only goes into a new, empty database it creates (drop or rename it first)`,
  );
}
